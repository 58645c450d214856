"""`opsbook params check ENV`."""

from __future__ import annotations

import typer

from opsbook.commands import COMMANDS
from opsbook.commands.common import console, handles_errors, say, styled
from opsbook.params import load_params, read_merged, resolve_file

params_app = COMMANDS.register("params")(typer.Typer(help="Validate environment params.", no_args_is_help=True))


@params_app.command("check")
@handles_errors
def check(env: str = typer.Argument(..., help="Environment name or params file.")) -> None:
    """Validate params/<ENV>.yaml (with its extends chain); exit 2 naming the field when invalid.

    Example: opsbook params check prod-pl
    """
    params = load_params(env)
    _, chain = read_merged(resolve_file(env))
    console.print(styled("ok", "green", f"{params.env}: {' <- '.join(str(p.name) for p in chain)}"), soft_wrap=True)
    say(
        f"  region {params.region}, account {params.account_id}, production={params.production}, "
        f"{len(params.network.azs)} AZs, {len(params.rds)} RDS instance(s), {len(params.namespaces)} namespaces"
    )

