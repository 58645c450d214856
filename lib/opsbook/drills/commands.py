"""`opsbook cleanup --env ENV [--older-than 2h] [--apply]` and `opsbook history [--drill NAME] [--env ENV]`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from opsbook.commands import COMMANDS
from opsbook.commands.common import ENV_OPTION, console, handles_errors

if TYPE_CHECKING:
    import pandas as pd


def _table(frame: pd.DataFrame, title: str) -> Table:
    import pandas as pd  # on use: `opsbook --help` starts without pandas

    table = Table(*[str(c) for c in frame.columns], title=title)
    for row in frame.itertuples(index=False):
        table.add_row(*["" if pd.isna(v) else str(v) for v in row])
    return table


@COMMANDS.register("cleanup")
@handles_errors
def cleanup(
    env: str = ENV_OPTION,
    older_than: str = typer.Option("2h", "--older-than", help="Only resources older than this (2h, 30m, 0s)."),
    apply: bool = typer.Option(False, "--apply", help="Delete (default: show the plan only)."),
    confirm: str = typer.Option("", "--confirm", help="Every resource name to delete, comma-separated."),
    approval: str = typer.Option("", "--approval", help="Change ticket; required in production."),
) -> None:
    """Find drill resources left behind (by their ownership tags only) and delete them on --apply."""
    from opsbook.clients import open_env
    from opsbook.drills.sweeper import UNREADABLE, parse_age, sweep
    from opsbook.errors import OpsbookError

    parse_age(older_than)  # bad input fails before any call
    ctx = open_env(env)
    table = sweep(ctx, older_than, apply=apply, confirm=confirm, approval=approval)
    if table.empty:
        console.print(f"no drill resources in {ctx.name}")
        return
    console.print(_table(table, f"drill resources in {ctx.name}"))
    doomed = table[table["action"] == "delete"]["resource"].tolist()
    if doomed and not apply:
        console.print(f"plan only: add --apply --confirm {','.join(doomed)} to delete", soft_wrap=True)
    unreadable = table[table["current"].str.startswith(UNREADABLE)]
    if not unreadable.empty:
        raise OpsbookError(f"could not list {', '.join(unreadable['attribute'])}, so drill leftovers there are unknown",
                           remedy="fix the access named in the table above and run cleanup again")


@COMMANDS.register("history")
@handles_errors
def history(
    drill: str = typer.Option(None, "--drill", help="Only this drill (e.g. rds-pitr) or notebook name."),
    env: str = typer.Option(None, "--env", "-e", help="Only this environment (needed for --s3)."),
    runs_dir: Path = typer.Option(None, "--runs-dir", help="Run folders (default: runs/)."),
    s3: str = typer.Option(None, "--s3", help="Also read the S3 mirror, s3://bucket/prefix."),
) -> None:
    """Every drill run's verdict, RTO and RPO against targets, oldest first."""
    from opsbook.drills.history import read_history

    client = None
    if s3:
        from opsbook.clients import open_env

        if not env:
            from opsbook.errors import UsageError

            raise UsageError("--s3 needs --env: the S3 mirror is read with that environment's credentials",
                             remedy="add --env with the environment that owns the mirror")
        client = open_env(env).aws("s3")
    frame = read_history(runs_dir, env=env, drill=drill, s3_uri=s3, s3_client=client)
    if frame.empty:
        console.print("no drill runs found")
        return
    shown = frame.drop(columns=["source", "notebook"]).copy()
    shown["started_at"] = shown["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    console.print(_table(shown, "drill history"))

