"""The runs, as the portal and `opsbook runs` see them: one `Run` per run folder.

A run folder is `<env>/<name>/<UTC timestamp>-<run-id>/` under a runs root (local, or an
S3 mirror's prefix) holding the evidence the runner wrote: `results.json`, `output.ipynb`,
`report.html`, and whatever else a run leaves (`report.xlsx`). A folder whose
`results.json` is missing or unreadable (a run still going, a runner that died) is a run
with status `incomplete`, not an omission.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from opsbook.errors import UsageError
from opsbook.mirror import parse_s3_url

# Records shown as a run's headline, in this order, when a notebook recorded them.
HEADLINE_KEYS = ("headline", "drill", "summary", "totals", "backtest")
RESULTS = "results.json"
INCOMPLETE = "incomplete"
_FOLDER = re.compile(r"(?P<stamp>\d{8}T\d{6}Z)-(?P<run_id>[^/]+)")  # the runner's run folder name
_KINDS = {"runbooks": "runbook", "notebooks": "notebook"}  # the folder a notebook lives in


def headline(records: dict[str, Any], width: int = 160) -> str:
    """A one-line summary of a run's records."""
    for key in HEADLINE_KEYS:
        value = records.get(key)
        if isinstance(value, dict):
            if key == "drill":
                rto, rpo = value.get("rto_s"), value.get("rpo_s")
                text = f"{value.get('verdict')}: RTO {_num(rto)} s, RPO {_num(rpo)} s"
                if value.get("reason"):
                    text += f" ({value['reason']})"
                return text[:width]
            return ", ".join(f"{k} {_num(v)}" for k, v in value.items() if not isinstance(v, dict | list))[:width]
    scalars = [f"{k} {_num(v)}" for k, v in records.items() if isinstance(v, int | float | str)]
    return ", ".join(scalars[:4])[:width]


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


@dataclass(frozen=True)
class Run:
    """One run folder: who ran what where, how it went, and which evidence files it holds."""

    env: str
    name: str
    run_id: str
    status: str  # passed, failed, or incomplete
    started_at: datetime | None
    folder: str  # <env>/<name>/<timestamp>-<run-id>, relative to the runs root
    files: tuple[str, ...] = ()
    kind: str = ""  # runbook or notebook (the folder of the notebook that ran)
    duration_s: float | None = None
    headline: str = ""
    drill: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def has(self, file: str) -> bool:
        return file in self.files

    def row(self) -> dict[str, Any]:
        """The run as `opsbook runs` lists it (the portal shows the same fields)."""
        return {"started_at": self.started_at, "env": self.env, "name": self.name, "kind": self.kind,
                "run_id": self.run_id, "status": self.status, "duration_s": self.duration_s,
                "headline": self.headline, "folder": self.folder, "evidence": list(self.files)}


def _failure(results: dict[str, Any]) -> str:
    error = results.get("error") or {}
    return f"{error.get('ename')}: {error.get('evalue')}" if error else ""


def _started(results: dict[str, Any], stamp: str | None) -> datetime | None:
    text = results.get("started_at")
    try:
        if text:
            moment = datetime.fromisoformat(str(text))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if stamp else None
    except ValueError:
        return None


def make_run(folder: str, files: Iterable[str], results: dict[str, Any] | None) -> Run:
    """A Run from its folder, the files in it, and its parsed results.json (None: unreadable)."""
    env, name, leaf = PurePosixPath(folder).parts[-3:]
    match = _FOLDER.fullmatch(leaf)
    stamp, folder_run_id = (match["stamp"], match["run_id"]) if match else (None, leaf)
    if results is None:
        return Run(env, name, folder_run_id, INCOMPLETE, _started({}, stamp), folder, tuple(sorted(files)),
                   headline="no readable results.json: the run is still going, or its runner died")
    records = results.get("records") or {}
    drill = records.get("drill") if isinstance(records.get("drill"), dict) else None
    notebook_folder = PurePosixPath(str(results.get("notebook") or "")).parent.name
    return Run(
        env=str(results.get("env") or env), name=str(results.get("name") or name),
        run_id=str(results.get("run_id") or folder_run_id), status=str(results.get("status") or INCOMPLETE),
        started_at=_started(results, stamp), folder=folder, files=tuple(sorted(files)),
        kind=_KINDS.get(notebook_folder, ""), duration_s=results.get("duration_s"),
        # a failed step's own error says more than the records, except for a drill's verdict
        headline=_failure(results) if results.get("error") and not drill else headline(records),
        drill=drill,
    )


def _newest_first(runs: Iterable[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (r.started_at or datetime.min.replace(tzinfo=UTC), r.run_id), reverse=True)


def local_runs(runs_root: Path) -> list[Run]:
    """Every run folder under a local runs root, newest first."""
    runs = []
    for folder in runs_root.glob("*/*/*"):
        if not (folder.is_dir() and _FOLDER.fullmatch(folder.name)):
            continue
        try:
            results = json.loads((folder / RESULTS).read_text())
        except (OSError, json.JSONDecodeError):
            results = None
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        runs.append(make_run(folder.relative_to(runs_root).as_posix(), files, results))
    return _newest_first(runs)


def _s3_folders(s3: Any, bucket: str, prefix: str) -> dict[str, list[str]]:
    """{run folder (relative to prefix): [files]} for every object three levels under prefix."""
    start = f"{prefix}/" if prefix else ""
    folders: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        for obj in page.get("Contents", []):
            parts = obj["Key"][len(start):].split("/")
            if len(parts) >= 4 and _FOLDER.fullmatch(parts[2]):
                folders.setdefault("/".join(parts[:3]), []).append("/".join(parts[3:]))
    return folders


def s3_runs(s3: Any, uri: str) -> list[Run]:
    """Every run folder under an S3 mirror (`opsbook run --mirror`), newest first."""
    bucket, prefix = parse_s3_url(uri)
    runs = []
    for folder, files in _s3_folders(s3, bucket, prefix).items():
        results = None
        if RESULTS in files:
            key = "/".join(filter(None, [prefix, folder, RESULTS]))
            try:
                results = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            except json.JSONDecodeError:
                results = None
        runs.append(make_run(folder, files, results))
    return _newest_first(runs)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`--since`: an age (30m, 12h, 7d) or an ISO date or time (2025-03-01, 2025-03-01T12:00Z)."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*", value or "")
    if match:
        return now - timedelta(seconds=float(match[1]) * {"m": 60, "h": 3600, "d": 86400}[match[2]])
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: expected an age such as 30m, 12h or 7d, or a date such as 2025-03-01, "
                         f"got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select(runs: Iterable[Run], env: str | None = None, name: str | None = None, status: str | None = None,
           since: datetime | None = None) -> list[Run]:
    """The runs matching every filter given (a run with no known start never matches `since`)."""
    return [r for r in runs
            if (not env or r.env == env) and (not name or r.name == name) and (not status or r.status == status)
            and (since is None or (r.started_at is not None and r.started_at >= since))]


def by_runbook(runs: Iterable[Run]) -> Iterator[tuple[tuple[str, str, str], list[Run]]]:
    """((kind, name, env), its runs newest first), sorted by kind, name and env."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.kind, run.name, run.env), []).append(run)
    for key in sorted(groups):
        yield key, _newest_first(groups[key])
