"""Parse an `opsbook` command line with the real CLI, without running it.

typer builds the CLI as click commands (its own copy of click); `make_context` parses a
command line exactly as a run would, raising click's UsageError for an unknown option, a
bad value or a missing argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer.main
from opsbook.cli import app


def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def parse_cli(args: Sequence[str]) -> Any:
    """The click context `opsbook ARGS` would run with (its `.command` and `.params`)."""
    command = typer.main.get_command(app)
    names, rest = ["opsbook"], list(args)
    parent = None
    while is_group(command):
        parent = command.context_class(command, info_name=names[-1], parent=parent)
        sub = command.get_command(parent, rest[0]) if rest else None
        if sub is None:
            raise ValueError(f"{' '.join(names)}: no command {rest[:1]}; known: {command.list_commands(parent)}")
        command, names, rest = sub, [*names, rest[0]], rest[1:]
    return command.make_context(names[-1], rest, parent=parent)
