"""What every command shares: the consoles, verbatim messages, exit codes, and access checks.

Messages carry values from params, exceptions and API answers (an RDS identifier pattern
such as `^[a-zA-Z][a-zA-Z0-9-]*$`), so the consoles never read rich markup: a word is
styled by passing a `rich.text.Text`, never by `[red]...[/]` inside a string.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from opsbook import errors
from opsbook.errors import CredentialsError, OpsbookError, UsageError

console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)


def styled(label: str, style: str, message: str = "") -> Text:
    """`label` in `style`, then `message` as it is (never markup)."""
    text = Text(label, style=style)
    if message:
        text.append(f" {message}")
    return text


def say(message: str, *, stderr: bool = False) -> None:
    """Print a message verbatim, never cut or wrapped into a table cell."""
    (err_console if stderr else console).print(Text(message), soft_wrap=True)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print an OpsbookError as a short message (no traceback) and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OpsbookError as exc:
            err_console.print(styled("error:", "bold red", str(exc)), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


# What each exit code means; the error classes of `opsbook.errors` that exit with it are
# listed beside it, read from the classes themselves.
EXIT_MEANINGS = {
    0: "success",
    1: "a run failed, or the command did",
    2: "bad input: params, options or notebook parameters",
    3: "no usable AWS credentials or kubeconfig",
    4: "refused by the guard: apply, confirm or approval missing",
}


def exit_codes() -> list[tuple[int, str]]:
    """(code, meaning and the error classes exiting with it) for `opsbook --help`."""
    classes: dict[int, list[str]] = {}
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, OpsbookError):
            classes.setdefault(cls.exit_code, []).append(name)
    out = []
    for code in sorted(EXIT_MEANINGS.keys() | classes.keys()):
        named = f" ({', '.join(classes[code])})" if code in classes else ""
        out.append((code, EXIT_MEANINGS.get(code, "an error") + named))
    return out


def exit_codes_help() -> str:
    """The exit codes as the epilog of `opsbook --help` (typer's rich help reads it as markup)."""
    return escape("Exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in exit_codes()))


def require_access(env: Any) -> None:
    """Say missing AWS credentials once, before anything is listed (commands that read several
    kinds of resource would otherwise report the same missing access once per kind)."""
    env.session  # noqa: B018 - raises CredentialsError (missing keys, role not assumable)


def warn_without_kube(env: Any) -> CredentialsError | None:
    """Without a usable kubeconfig, say so once on stderr (before any listing) and return it:
    the AWS side can still be read, and the caller exits as for credentials (3) at the end."""
    try:
        env.kube  # noqa: B018 - raises when there is no usable kubeconfig
    except OpsbookError as exc:
        err_console.print(styled("warning:", "bold yellow", str(exc)), soft_wrap=True)
        return CredentialsError(exc.message, remedy=exc.remedy)
    return None


def mirror_client(url: str, env: str | None, option: str) -> Any:
    """The S3 client that reads or writes the mirror `url` (`option` names it): the mirror
    belongs to an environment, whose credentials are checked once, before any listing."""
    from opsbook.clients import open_env
    from opsbook.mirror import parse_s3_url

    if not env:
        raise UsageError(f"{option} needs --env: the S3 mirror is reached with that environment's credentials",
                         remedy="add --env with the environment that owns the mirror")
    parse_s3_url(url)
    ctx = open_env(env)
    require_access(ctx)
    return ctx.aws("s3")


ENV_OPTION = typer.Option(..., "--env", "-e", help="Environment: a name in params/ or a params YAML file.")
