"""What every command shares: the console, and turning opsbook errors into exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from opsbook.errors import OpsbookError

console = Console()
err_console = Console(stderr=True)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print an OpsbookError as a short message (no traceback) and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OpsbookError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


ENV_OPTION = typer.Option(..., "--env", "-e", help="Environment: a name in params/ or a params YAML file.")
