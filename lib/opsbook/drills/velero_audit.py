"""The Velero backup audit: read-only checks that the stateful namespaces are protected.

- every BackupStorageLocation is Available (the default one must be);
- every namespace with stateful workloads in params is covered by an enabled, unpaused
  Schedule whose runs are at most the RPO target apart (`velero.rpo_minutes`), computed in
  the Schedule's own time zone (`CRON_TZ=`/`TZ=`, robfig/cron as Velero reads it: a daily
  run is 23 or 25 hours from the last one across a DST change); a Schedule that includes a
  namespace that does not exist is reported, since each of its backups then ends
  PartiallyFailed (pkg/backup/item_collector.go logs that as an error);
- each such namespace's last usable backup of the whole namespace is younger than the RPO
  target. Usable: Completed, or PartiallyFailed when none of its errors (its `-results.gz`
  in the storage location) concerns this namespace, e.g. only another namespace was
  missing. A namespace whose Schedule has not reached its first run yet (Velero runs a new
  Schedule at its first cron time after creation, not at once) is "not run yet": a warning
  while the Schedule is younger than the RPO target, a failure after. A newer backup that
  is not usable is a warning, with its errors.

Each row is `pass`, `warn` or `fail` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from kubernetes import client

from opsbook.drills.velero_api import VeleroApi, parse_time
from opsbook.errors import OpsbookError
from opsbook.formats.velero import MISSING_NAMESPACE, Layout, gunzip_json
from opsbook.formats.velero_schedule import CronError, parse

COLUMNS = ["area", "item", "status", "detail"]
MISSING_NAMESPACE_RE = re.compile(re.escape(MISSING_NAMESPACE).replace(re.escape("{}"), r"(\S+)"))


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


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Cluster:
    """What the audit read: Velero's objects, the namespaces, and a reader of backup results."""

    velero: VeleroApi
    s3: Any
    schedules: list[dict[str, Any]]
    backups: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    namespaces: set[str]
    results: dict[str, dict[str, Any] | str] = field(default_factory=dict)  # backup -> results, or why not

    def backup_results(self, backup: dict[str, Any]) -> dict[str, Any] | str:
        """The backup's `-results.gz` from its storage location, or the reason it could not be read."""
        name = backup["metadata"]["name"]
        if name not in self.results:
            self.results[name] = self._read_results(backup)
        return self.results[name]

    def _read_results(self, backup: dict[str, Any]) -> dict[str, Any] | str:
        location_name = (backup.get("spec") or {}).get("storageLocation")
        location = next((loc for loc in self.locations if loc["metadata"]["name"] == location_name), None)
        if location is None:
            return f"its storage location {location_name} does not exist"
        storage = (location.get("spec") or {}).get("objectStorage") or {}
        key = Layout(storage.get("prefix") or "").backup_results(backup["metadata"]["name"])
        try:
            return gunzip_json(self.s3.get_object(Bucket=storage.get("bucket"), Key=key)["Body"].read()) or {}
        except Exception as exc:  # noqa: BLE001 - an unreadable result is reported, never taken as clean
            return f"its results s3://{storage.get('bucket')}/{key} cannot be read: {exc}"


def audit(env: Any, now: datetime | None = None) -> AuditReport:
    """Read the Velero objects of the environment's cluster and judge them (see the module docstring)."""
    now = now or datetime.now(UTC)
    params = env.params
    rpo = timedelta(minutes=params.velero.rpo_minutes)
    velero = VeleroApi(env.kube, params.velero.namespace)
    cluster = _Cluster(velero, env.aws("s3"), velero.list("schedules"), velero.list("backups"),
                       velero.list("backupstoragelocations"),
                       {n.metadata.name for n in client.CoreV1Api(env.kube).list_namespace().items})
    report = AuditReport()
    _locations(report, cluster.locations, params.velero.storage_location)
    _missing_namespaces(report, cluster)
    report.backups = backups_table(cluster.backups, now)
    for ns in [n.name for n in params.namespaces if n.stateful]:
        _schedule_coverage(report, cluster.schedules, ns, rpo, now)
        _last_backup(report, cluster, ns, rpo, now)
    return report


def _locations(report: AuditReport, locations: list[dict[str, Any]], default: str) -> None:
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


def _missing_namespaces(report: AuditReport, cluster: _Cluster) -> None:
    """A Schedule naming a namespace that does not exist: each of its backups ends PartiallyFailed."""
    for schedule in cluster.schedules:
        included = ((schedule.get("spec") or {}).get("template") or {}).get("includedNamespaces") or []
        missing = sorted(ns for ns in included if ns != "*" and ns not in cluster.namespaces)
        if missing:
            report.add("schedules", schedule["metadata"]["name"], "warn",
                       f"includes {', '.join(missing)}, which does not exist: each of its backups ends "
                       "PartiallyFailed (the namespaces that exist are still backed up)")


def _schedule_note(schedule: dict[str, Any], rpo: timedelta, now: datetime) -> tuple[bool, str]:
    """(usable, what to say) for one Schedule covering a namespace."""
    name, spec = schedule["metadata"]["name"], schedule.get("spec") or {}
    status = schedule.get("status") or {}
    try:
        cron = parse(spec.get("schedule", ""))
        interval = cron.interval(now)
    except CronError as exc:
        return False, f"{name}: {exc.message}"
    zone = "" if cron.zone_name == "UTC" else f" in {cron.zone_name}"
    if spec.get("paused"):
        return False, f"{name} is paused"
    if status.get("phase") not in (None, "", "Enabled"):
        return False, f"{name} is {status.get('phase')}: {'; '.join(status.get('validationErrors') or [])}"
    if interval > rpo:
        return False, (f"{name} runs every {_span(interval)}{zone} ({spec.get('schedule')}), longer than the RPO "
                       f"target {_span(rpo)}")
    return True, f"{name} ({spec.get('schedule')}, every {_span(interval)}{zone})"


def _schedule_coverage(report: AuditReport, schedules: list[dict[str, Any]], namespace: str, rpo: timedelta,
                       now: datetime) -> None:
    covering = [s for s in schedules if _covers((s.get("spec") or {}).get("template") or {}, namespace)]
    notes = [_schedule_note(s, rpo, now) for s in covering]
    good = [text for usable, text in notes if usable]
    if good:
        report.add("schedules", namespace, "pass", "covered by " + ", ".join(good))
    elif covering:
        report.add("schedules", namespace, "fail", "no usable Schedule: " + "; ".join(text for _, text in notes))
    else:
        report.add("schedules", namespace, "fail", "no Schedule includes this namespace")


# --- backups ------------------------------------------------------------------------------------


def _finished(backup: dict[str, Any]) -> datetime | None:
    status = backup.get("status") or {}
    return parse_time(status.get("completionTimestamp") or status.get("startTimestamp"))


def _errors_for(results: dict[str, Any] | str, namespace: str) -> list[str]:
    """The backup's errors that may concern the namespace: its own, cluster-wide ones, and Velero's own
    unless one only says that another included namespace does not exist."""
    if isinstance(results, str):
        return [results]
    errors = results.get("errors") or {}
    own = list((errors.get("namespaces") or {}).get(namespace) or []) + list(errors.get("cluster") or [])
    for text in errors.get("velero") or []:
        missing = MISSING_NAMESPACE_RE.search(text)
        if missing is None or missing.group(1) == namespace:
            own.append(text)
    return own


def _usable(cluster: _Cluster, backup: dict[str, Any], namespace: str) -> tuple[bool, list[str]]:
    phase = (backup.get("status") or {}).get("phase")
    if phase == "Completed":
        return True, []
    if phase != "PartiallyFailed":
        return False, [f"ended {phase}"]
    concerns = _errors_for(cluster.backup_results(backup), namespace)
    return not concerns, concerns


def _not_run_yet(report: AuditReport, schedules: list[dict[str, Any]], namespace: str, rpo: timedelta,
                 now: datetime) -> bool:
    """A row for a namespace whose covering Schedules have not reached their first run; False if none is so."""
    firsts = []
    for schedule in schedules:
        spec = schedule.get("spec") or {}
        if not _covers(spec.get("template") or {}, namespace) or (schedule.get("status") or {}).get("lastBackup"):
            continue
        created = parse_time(schedule["metadata"].get("creationTimestamp")) or now
        try:
            first = parse(spec.get("schedule", "")).next_after(created)
        except CronError:
            continue  # reported with the schedules
        if first is not None and first >= now:
            firsts.append((first, created, schedule["metadata"]["name"]))
    if not firsts:
        return False
    first, created, name = min(firsts)
    young = now - created <= rpo
    report.add("backups", namespace, "warn" if young else "fail",
               f"not run yet: Schedule {name} was created {_age(created, now)} ago and first runs at {_stamp(first)}"
               + ("" if young else f", so the namespace has had no backup for longer than the RPO target {_span(rpo)}"))
    return True


def _last_backup(report: AuditReport, cluster: _Cluster, namespace: str, rpo: timedelta, now: datetime) -> None:
    whole = [b for b in cluster.backups if _covers(b.get("spec") or {}, namespace)
             and not (b.get("spec") or {}).get("labelSelector")]
    done = sorted((b for b in whole if _finished(b)), key=lambda b: _finished(b) or now)
    if not done and _not_run_yet(report, cluster.schedules, namespace, rpo, now):
        return
    judged = [(b, *_usable(cluster, b, namespace)) for b in done]
    good = [(b, concerns) for b, usable, concerns in judged if usable]
    if not good:
        last = f"; the last, {done[-1]['metadata']['name']}, {'; '.join(judged[-1][2])}" if done else ""
        report.add("backups", namespace, "fail", f"no usable backup of the namespace ({len(whole)} in all){last}")
        return
    last = good[-1][0]
    at = _finished(last)
    ok = at is not None and now - at <= rpo
    partly = " (PartiallyFailed, for other namespaces)" if (last.get("status") or {}).get("phase") != "Completed" else ""
    report.add("backups", namespace, "pass" if ok else "fail",
               f"last usable backup {last['metadata']['name']}{partly} finished {_age(at, now)} ago "
               f"({'within' if ok else 'older than'} the RPO target {_span(rpo)})")
    newer = [(b, concerns) for b, usable, concerns in judged if not usable and at and (_finished(b) or at) > at]
    if newer:
        b, concerns = newer[-1]
        report.add("backups", f"{namespace} (latest)", "warn",
                   f"a newer backup {b['metadata']['name']} is not usable: {'; '.join(concerns)}")


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
