"""The Velero backup audit: read-only checks that the stateful namespaces are protected.

- every BackupStorageLocation is Available (the default one must be);
- every namespace with stateful workloads in params is covered by an enabled, unpaused
  Schedule whose runs are at most the RPO target apart (`velero.rpo_minutes`);
- each such namespace's last successful backup (Completed, of the whole namespace) is
  younger than the RPO target; a newer PartiallyFailed or Failed one is reported.

Each row is `pass`, `warn` or `fail` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from opsbook.drills.velero_api import VeleroApi, parse_time
from opsbook.errors import OpsbookError, UsageError
from opsbook.formats.velero import parse

COLUMNS = ["area", "item", "status", "detail"]


@dataclass
class AuditReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    backups: pd.DataFrame = field(default_factory=pd.DataFrame)

    def add(self, area: str, item: str, status: str, detail: str) -> None:
        self.rows.append({"area": area, "item": item, "status": status, "detail": detail})

    def table(self, area: str | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=COLUMNS)
        return frame if area is None else frame[frame["area"] == area].reset_index(drop=True)

    def by_status(self) -> dict[str, int]:
        counts = {"pass": 0, "warn": 0, "fail": 0}
        for r in self.rows:
            counts[r["status"]] += 1
        return counts

    @property
    def ok(self) -> bool:
        return not any(r["status"] == "fail" for r in self.rows)

    def failures(self) -> list[str]:
        return [f"{r['item']}: {r['detail']}" for r in self.rows if r["status"] == "fail"]

    def raise_if_failed(self, strict: bool) -> str:
        """The verdict; with `strict`, an OpsbookError when any check failed."""
        if strict and not self.ok:
            raise OpsbookError(f"Velero backup audit: {self.verdict()}")
        return self.verdict()

    def verdict(self) -> str:
        counts = self.by_status()
        if self.ok:
            return f"pass: {counts['pass']} checks passed, {counts['warn']} warnings"
        return f"fail: {counts['fail']} failed: " + "; ".join(self.failures())


def _covers(spec: dict[str, Any], namespace: str) -> bool:
    included = spec.get("includedNamespaces") or ["*"]
    return (namespace in included or "*" in included) and namespace not in (spec.get("excludedNamespaces") or [])


def _span(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 60:g}h" if minutes >= 60 else f"{minutes:g}m"


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    return f"{seconds / 3600:.1f}h" if seconds >= 3600 else f"{seconds / 60:.0f}m"


def audit(env: Any, now: datetime | None = None) -> AuditReport:
    """Read the Velero objects of the environment's cluster and judge them (see the module docstring)."""
    now = now or datetime.now(UTC)
    params = env.params
    rpo = timedelta(minutes=params.velero.rpo_minutes)
    velero = VeleroApi(env.kube, params.velero.namespace)
    report = AuditReport()
    _locations(report, velero, params.velero.storage_location)
    schedules = velero.list("schedules")
    backups = velero.list("backups")
    report.backups = backups_table(backups, now)
    for ns in [n.name for n in params.namespaces if n.stateful]:
        _schedule_coverage(report, schedules, ns, rpo, now)
        _last_backup(report, backups, ns, rpo, now)
    return report


def _locations(report: AuditReport, velero: VeleroApi, default: str) -> None:
    locations = velero.list("backupstoragelocations")
    if not any(loc["metadata"]["name"] == default for loc in locations):
        report.add("storage", default, "fail", f"the storage location {default} of params does not exist")
    for loc in locations:
        name = loc["metadata"]["name"]
        status = loc.get("status") or {}
        bucket = ((loc.get("spec") or {}).get("objectStorage") or {}).get("bucket")
        phase = status.get("phase") or "unknown"
        validated = status.get("lastValidationTime") or "never"
        if phase == "Available":
            report.add("storage", name, "pass", f"Available (bucket {bucket}, validated {validated})")
        else:
            level = "fail" if name == default or (loc.get("spec") or {}).get("default") else "warn"
            report.add("storage", name, level, f"{phase}: {status.get('message') or 'no message'} (bucket {bucket})")


def _schedule_coverage(report: AuditReport, schedules: list[dict[str, Any]], namespace: str, rpo: timedelta,
                       now: datetime) -> None:
    covering = [s for s in schedules if _covers((s.get("spec") or {}).get("template") or {}, namespace)]
    good, notes = [], []
    for schedule in covering:
        name, spec = schedule["metadata"]["name"], schedule.get("spec") or {}
        phase = (schedule.get("status") or {}).get("phase")
        try:
            interval = parse(spec.get("schedule", "")).interval(now)
        except UsageError as exc:
            notes.append(f"{name}: {exc}")
            continue
        if spec.get("paused"):
            notes.append(f"{name} is paused")
        elif phase not in (None, "Enabled"):
            notes.append(f"{name} is {phase}")
        elif interval > rpo:
            notes.append(f"{name} runs every {_span(interval)} ({spec.get('schedule')}), longer than the RPO target "
                         f"{_span(rpo)}")
        else:
            good.append(f"{name} ({spec.get('schedule')}, every {_span(interval)})")
    if good:
        report.add("schedules", namespace, "pass", "covered by " + ", ".join(good))
    elif covering:
        report.add("schedules", namespace, "fail", "no usable Schedule: " + "; ".join(notes))
    else:
        report.add("schedules", namespace, "fail", "no Schedule includes this namespace")


def _last_backup(report: AuditReport, backups: list[dict[str, Any]], namespace: str, rpo: timedelta,
                 now: datetime) -> None:
    whole = [b for b in backups if _covers(b.get("spec") or {}, namespace) and not (b.get("spec") or {}).get("labelSelector")]

    def finished(b: dict[str, Any]) -> datetime | None:
        status = b.get("status") or {}
        return parse_time(status.get("completionTimestamp") or status.get("startTimestamp"))

    done = sorted((b for b in whole if finished(b)), key=lambda b: finished(b) or now)
    good = [b for b in done if (b.get("status") or {}).get("phase") == "Completed"]
    if not good:
        report.add("backups", namespace, "fail", f"no Completed backup of the namespace ({len(whole)} backups in all)")
        return
    last = good[-1]
    at = finished(last)
    age = now - at if at else None
    ok = age is not None and age <= rpo
    report.add("backups", namespace, "pass" if ok else "fail",
               f"last Completed backup {last['metadata']['name']} finished {_age(at, now)} ago "
               f"({'within' if ok else 'older than'} the RPO target {_span(rpo)})")
    newer = [b for b in done if finished(b) and at and (finished(b) or at) > at]
    if newer:
        b = newer[-1]
        report.add("backups", f"{namespace} (latest)", "warn",
                   f"a newer backup {b['metadata']['name']} ended {(b.get('status') or {}).get('phase')}")


def backups_table(backups: list[dict[str, Any]], now: datetime) -> pd.DataFrame:
    rows = []
    for b in sorted(backups, key=lambda b: (b.get("status") or {}).get("startTimestamp") or ""):
        status, spec = b.get("status") or {}, b.get("spec") or {}
        rows.append({
            "backup": b["metadata"]["name"], "schedule": (b["metadata"].get("labels") or {}).get("velero.io/schedule-name", ""),
            "namespaces": ", ".join(spec.get("includedNamespaces") or ["*"]), "phase": status.get("phase"),
            "started": status.get("startTimestamp"),
            "age": _age(parse_time(status.get("completionTimestamp") or status.get("startTimestamp")), now),
            "snapshots": f"{status.get('volumeSnapshotsCompleted', 0)}/{status.get('volumeSnapshotsAttempted', 0)}",
            "errors": status.get("errors", 0), "expires": status.get("expiration"),
        })
    return pd.DataFrame(rows, columns=["backup", "schedule", "namespaces", "phase", "started", "age", "snapshots",
                                       "errors", "expires"])
