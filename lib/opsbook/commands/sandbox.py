"""`opsbook sandbox up|status|down`: keep the sandbox running between commands."""

from __future__ import annotations

import typer

from opsbook.commands import COMMANDS
from opsbook.commands.common import console, handles_errors, say, styled
from opsbook.params import load_params
from opsbook.sandbox import attach

sandbox_app = COMMANDS.register("sandbox")(typer.Typer(help="The local twin of the estate.", no_args_is_help=True))
ENV = typer.Option("sandbox", "--env", "-e", help="A params file with a sandbox: section.")


@sandbox_app.command("up")
@handles_errors
def up(env: str = ENV) -> None:
    """Start the sandbox in the background; `--env sandbox` commands then reuse it.

    Example: opsbook sandbox up
    """
    state = attach.up(load_params(env))
    console.print(styled("sandbox up", "green", f"(pid {state['pid']})"))
    for key, value in sorted(state["env"].items()):
        if key.startswith(("AWS_ENDPOINT", "KUBECONFIG", "DD_", "OPSBOOK")):
            say(f"  {key}={value}")


@sandbox_app.command("status")
@handles_errors
def status(env: str = ENV) -> None:
    """Say whether a sandbox is kept running, and where.

    Example: opsbook sandbox status
    """
    name = load_params(env).env
    state = attach.running_daemon(name)
    if state is None:
        say(f"sandbox {name}: not running (commands start one in-process when needed)")
        raise typer.Exit(1)
    say(f"sandbox {name}: running, pid {state['pid']}, AWS at {state['env'].get('AWS_ENDPOINT_URL')}")


@sandbox_app.command("down")
@handles_errors
def down(env: str = ENV) -> None:
    """Stop a sandbox started by `opsbook sandbox up`.

    Example: opsbook sandbox down
    """
    name = load_params(env).env
    say(f"sandbox {name}: {'stopped' if attach.down(name) else 'was not running'}")

