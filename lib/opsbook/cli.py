"""The `opsbook` command (typer + rich), built from the registry in `opsbook.commands`."""

from __future__ import annotations

import typer

from opsbook.commands import COMMANDS
from opsbook.commands.common import exit_codes_help

# A crash (a bug, not an OpsbookError) shows its traceback but never the local variables,
# which may hold credentials or secret values.
app = typer.Typer(help="Executable runbooks and cost notebooks for the SMSAPI platform.", no_args_is_help=True,
                  epilog=exit_codes_help(), pretty_exceptions_show_locals=False)

for _name, _command in COMMANDS.items():
    if isinstance(_command, typer.Typer):
        app.add_typer(_command, name=_name)
    else:
        app.command(_name)(_command)
