"""`opsbook cleanup --env ENV [--older-than 2h] [--apply]` and `opsbook history [--drill NAME] [--env ENV]`."""

from __future__ import annotations

from pathlib import Path

import typer

from opsbook.commands import COMMANDS
from opsbook.commands.common import (
    ENV_OPTION,
    handles_errors,
    mirror_client,
    require_access,
    warn_without_kube,
)
from opsbook.commands.output import FORMAT_OPTION, Format, emit, note


@COMMANDS.register("cleanup")
@handles_errors
def cleanup(
    env: str = ENV_OPTION,
    older_than: str = typer.Option("2h", "--older-than", help="Only resources older than this (2h, 30m, 0s)."),
    apply: bool = typer.Option(False, "--apply", help="Delete (default: show the plan only)."),
    confirm: str = typer.Option("", "--confirm", help="Every resource name to delete, comma-separated."),
    approval: str = typer.Option("", "--approval", help="Change ticket; required in production."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Find drill resources left behind (by their ownership tags only) and delete them on --apply.

    Columns: resource, attribute (its kind), current, desired, action.

    Example: opsbook cleanup --env dev-pl --older-than 2h
    """
    from opsbook.clients import open_env
    from opsbook.drills.sweeper import UNREADABLE, parse_age, sweep
    from opsbook.errors import OpsbookError

    parse_age(older_than)  # bad input fails before any call
    ctx = open_env(env)
    require_access(ctx)  # no AWS credentials: said once here, nothing listed
    no_kube = warn_without_kube(ctx)  # said once here; the AWS kinds are still listed
    table = sweep(ctx, older_than, apply=apply, confirm=confirm, approval=approval)
    emit(table, fmt, f"drill resources in {ctx.name}", f"no drill resources in {ctx.name}")
    doomed = table[table["action"] == "delete"]["resource"].tolist()
    if doomed and not apply:
        note(f"plan only: add --apply --confirm {','.join(doomed)} to delete", fmt)
    unreadable = table[table["current"].str.startswith(UNREADABLE)]
    if not unreadable.empty:
        error = type(no_kube) if no_kube else OpsbookError
        raise error(f"could not list {', '.join(unreadable['attribute'])}, so drill leftovers there are unknown",
                    remedy="fix the access named above and run cleanup again")


@COMMANDS.register("history")
@handles_errors
def history(
    drill: str = typer.Option(None, "--drill", help="Only this drill (e.g. rds-pitr) or notebook name."),
    env: str = typer.Option(None, "--env", "-e", help="Only this environment (needed for --s3)."),
    runs_dir: Path = typer.Option(None, "--runs-dir", help="Run folders (default: runs/)."),
    s3: str = typer.Option(None, "--s3", help="Also read the S3 mirror, s3://bucket/prefix."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Every drill run's verdict, RTO and RPO against targets, oldest first.

    json and csv add the columns notebook and source (the results.json each row came from).

    Example: opsbook history --env prod-pl --drill rds-pitr --format csv
    """
    from opsbook.drills.history import read_history

    client = mirror_client(s3, env, "--s3") if s3 else None
    frame = read_history(runs_dir, env=env, drill=drill, s3_uri=s3, s3_client=client)
    if fmt is Format.table and not frame.empty:
        frame = frame.drop(columns=["source", "notebook"])
        frame["started_at"] = frame["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    emit(frame, fmt, "drill history", "no drill runs found")
