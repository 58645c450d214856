"""`opsbook estates write|check`: generated estates (params of other shapes) and the demo on them."""

from __future__ import annotations

from pathlib import Path

import typer

from opsbook.commands import COMMANDS
from opsbook.commands.common import console, handles_errors
from opsbook.params import project_root

estates_app = COMMANDS.register("estates")(typer.Typer(
    help="Generated estates: valid sandbox params of other shapes than params/sandbox.yaml.", no_args_is_help=True))
SEED = typer.Option(None, "--seed", envvar="OPSBOOK_ESTATE_SEED", help="First seed (default: a new one, printed).")


def _base(seed: int | None) -> int:
    from opsbook.sandbox.estates import new_seed

    base = seed if seed is not None else new_seed()
    console.print(f"estate seed {base} (replay with OPSBOOK_ESTATE_SEED={base})", highlight=False)
    return base


@estates_app.command("write")
@handles_errors
def write(seed: int = SEED, count: int = typer.Option(1, "--count", min=1),
          out: Path = typer.Option(None, "--out", help="Folder (default: .opsbook/estates/).")) -> None:
    """Write generated params files (checked by the params loader).

    Example: opsbook estates write --seed 7 --count 3 --out /tmp/estates
    """
    from opsbook.sandbox.estates import seeds, write_estate

    folder = out or project_root() / ".opsbook" / "estates"
    for one in seeds(_base(seed), count):
        console.print(str(write_estate(one, folder)), highlight=False)


@estates_app.command("check")
@handles_errors
def check(seed: int = SEED, count: int = typer.Option(20, "--count", min=1),
          runs_dir: Path = typer.Option(None, "--runs-dir", help="Where runs go (default: runs/estates/).")) -> None:
    """The demo on generated estates, one sandbox each: every runbook and notebook must pass.

    Example: opsbook estates check --seed 7 --count 3
    """
    from opsbook.estate_check import check_estates

    results = check_estates(_base(seed), count, runs_dir or project_root() / "runs" / "estates", console)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
