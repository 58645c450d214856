"""`opsbook runs` (the runs, filtered) and `opsbook portal` (write runs/index.html and its pages)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import pandas as pd
import typer

from opsbook.commands import COMMANDS
from opsbook.commands.common import handles_errors, mirror_client, say
from opsbook.commands.output import FORMAT_OPTION, Format, emit
from opsbook.report.catalog import INCOMPLETE

RUNS_DIR_OPTION = typer.Option(None, "--runs-dir", help="Run folders (default: runs/ of the checkout).")
S3_OPTION = typer.Option(None, "--s3", help="Read the S3 mirror s3://bucket/prefix instead (needs --env).")


class Status(StrEnum):
    passed = "passed"
    failed = "failed"
    incomplete = INCOMPLETE


COLUMNS = ["started_at", "env", "name", "kind", "run_id", "status", "duration_s", "headline", "folder", "evidence"]


def _runs_root(runs_dir: Path | None) -> Path:
    from opsbook.params import project_root

    return Path(runs_dir) if runs_dir else project_root() / "runs"


@COMMANDS.register("runs")
@handles_errors
def runs(
    env: str = typer.Option(None, "--env", "-e", help="Only this environment (with --s3: whose credentials read it)."),
    name: str = typer.Option(None, "--name", "-n", help="Only this runbook or notebook, e.g. health-check."),
    status: Status = typer.Option(None, "--status", help="Only runs with this status."),
    since: str = typer.Option(None, "--since", help="Only runs started since: an age (30m, 12h, 7d) or a date."),
    runs_dir: Path = RUNS_DIR_OPTION,
    s3: str = S3_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Every run, newest first: the same runs and fields as runs/index.html.

    Columns: started_at, env, name, kind, run_id, status, duration_s, headline, folder, evidence.

    Example: opsbook runs --env prod-pl --status failed --since 7d
    """
    from opsbook.report.catalog import local_runs, parse_since, s3_runs, select

    cutoff = parse_since(since) if since else None
    found = s3_runs(mirror_client(s3, env, "--s3"), s3) if s3 else local_runs(_runs_root(runs_dir))
    chosen = select(found, env=env, name=name, status=status, since=cutoff)
    frame = pd.DataFrame([r.row() for r in chosen], columns=COLUMNS)
    if fmt is Format.table and not frame.empty:
        frame["started_at"] = [f"{t:%Y-%m-%d %H:%M:%S}" if t else "" for t in frame["started_at"]]
        frame = frame.drop(columns=["evidence"])
    emit(frame, fmt, f"runs in {s3 or _runs_root(runs_dir)}", "no runs match")


@COMMANDS.register("portal")
@handles_errors
def portal(
    runs_dir: Path = RUNS_DIR_OPTION,
    mirror: str = typer.Option(None, "--mirror", help="Write the portal into this S3 mirror, s3://bucket/prefix, "
                                                      "from the runs mirrored there (needs --env)."),
    env: str = typer.Option(None, "--env", "-e", help="With --mirror: the environment whose credentials write it."),
) -> None:
    """Write runs/index.html (the dashboard) and a page per runbook and env, from the run folders.

    `opsbook run` refreshes the local portal after each run; --mirror refreshes the one in S3.

    Example: opsbook portal --mirror s3://ops-evidence/opsbook --env prod-pl
    """
    from opsbook.report.index import publish_portal, write_index

    if mirror:
        keys = publish_portal(mirror_client(mirror, env, "--mirror"), mirror)
        say(f"wrote {len(keys)} page(s) to {mirror.rstrip('/')}/index.html")
        return
    say(f"wrote {write_index(_runs_root(runs_dir))}")
