"""Schedules and BackupStorageLocations: Velero v1.18's schedule and storage-location controllers.

A Schedule (pkg/controller/schedule_controller.go) is reconciled unless paused:

- `skipImmediately: true` is turned back to false and `status.lastSkipped` set to now;
- its cron expression is parsed as robfig/cron does (`opsbook.formats.velero_schedule`,
  `CRON_TZ=`/`TZ=` included): phase Enabled, or FailedValidation with
  "invalid schedule: <robfig's error>" (or "Schedule must be a non-empty valid Cron
  expression");
- it is due when now is after the first cron time following its last backup, or its
  creation when it never ran, or its last skip if later (`getNextRunTime`). So a new
  Schedule's first backup comes at its first cron time, not at once. A cron that never
  matches (robfig's zero time) is always due, as in Velero;
- when due, and no backup of it is New or InProgress, it makes a Backup named
  `<schedule>-<yyyyMMddHHmmss>` (the time of submission, UTC) from its template
  (pkg/builder/backup_builder.go `FromSchedule`: the template's labels if it has any, else
  the Schedule's, plus `velero.io/schedule-name`; the Schedule's annotations) and sets
  `status.lastBackup`.

A BackupStorageLocation is Available while its bucket answers, else Unavailable with
the error, checked when it changes and every few seconds.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime
from typing import Any

from opsbook.formats.velero_schedule import Cron, CronError, parse
from opsbook.sandbox.velero.context import Ctx, now, parse_stamp, stamp

log = logging.getLogger(__name__)
SCHEDULE_LABEL = "velero.io/schedule-name"
EMPTY_SCHEDULE = "Schedule must be a non-empty valid Cron expression"


def run_schedules(ctx: Ctx) -> list[str]:
    """Reconcile every unpaused Schedule; the backups made."""
    moment = now()
    backups = ctx.list("backups")
    made = []
    for schedule in ctx.list("schedules"):
        if (schedule.get("spec") or {}).get("paused"):
            continue  # the controller's predicate leaves paused schedules alone
        name = reconcile(ctx, schedule, moment, backups)
        if name:
            made.append(name)
    return made


def _validate(spec: dict[str, Any]) -> tuple[Cron | None, list[str] | None]:
    if not spec.get("schedule"):
        return None, [EMPTY_SCHEDULE]
    try:
        return parse(spec["schedule"]), None
    except CronError as exc:
        return None, [f"invalid schedule: {exc.reason}"]


def next_run(schedule: dict[str, Any], cron: Cron) -> datetime | None:
    """Velero's getNextRunTime: the first cron time after the last backup, creation or skip (None: never)."""
    status = schedule.get("status") or {}
    last = parse_stamp(status.get("lastBackup")) or parse_stamp(schedule["metadata"].get("creationTimestamp"))
    skipped = parse_stamp(status.get("lastSkipped"))
    if skipped is not None and (last is None or skipped > last):
        last = skipped
    return cron.next_after(last or now())


def reconcile(ctx: Ctx, schedule: dict[str, Any], moment: datetime, backups: list[dict[str, Any]]) -> str | None:
    """One reconcile of a Schedule; the name of the backup it made, if it was due."""
    name = schedule["metadata"]["name"]
    spec, status = schedule.get("spec") or {}, dict(schedule.get("status") or {})
    patch: dict[str, Any] = {}
    if spec.get("skipImmediately"):
        patch["spec"] = {"skipImmediately": False}
        status["lastSkipped"] = stamp(moment)
        patch["status"] = {"lastSkipped": status["lastSkipped"]}
    cron, errors = _validate(spec)
    phase = "FailedValidation" if errors else "Enabled"
    if status.get("phase") != phase or status.get("validationErrors") != errors:
        patch.setdefault("status", {}).update(phase=phase, validationErrors=errors)
    if patch:
        ctx.patch("schedules", name, patch)
    if cron is None:
        return None
    nxt = next_run({**schedule, "status": status}, cron)
    if nxt is not None and moment <= nxt:
        return None
    if _backup_running(backups, name):
        return None
    return _submit(ctx, schedule, moment)


def _backup_running(backups: list[dict[str, Any]], schedule: str) -> bool:
    """checkIfBackupInNewOrProgress: a backup of this schedule still New or InProgress."""
    return any((b["metadata"].get("labels") or {}).get(SCHEDULE_LABEL) == schedule
               and (b.get("status") or {}).get("phase", "") in ("", "New", "InProgress") for b in backups)


def _submit(ctx: Ctx, schedule: dict[str, Any], moment: datetime) -> str:
    meta = schedule["metadata"]
    template = copy.deepcopy((schedule.get("spec") or {}).get("template") or {})
    template_labels = (template.get("metadata") or {}).get("labels")
    labels = {**(template_labels if template_labels is not None else meta.get("labels") or {}),
              SCHEDULE_LABEL: meta["name"]}
    name = f"{meta['name']}-{moment.strftime('%Y%m%d%H%M%S')}"
    body: dict[str, Any] = {"apiVersion": "velero.io/v1", "kind": "Backup", "spec": template,
                            "metadata": {"name": name, "labels": labels}}
    if meta.get("annotations"):
        body["metadata"]["annotations"] = dict(meta["annotations"])
    if (schedule.get("spec") or {}).get("useOwnerReferencesInBackup"):
        body["metadata"]["ownerReferences"] = [{"apiVersion": "velero.io/v1", "kind": "Schedule",
                                                "name": meta["name"], "uid": meta.get("uid", ""),
                                                "controller": True}]
    ctx.create("backups", body)
    ctx.status("schedules", meta["name"], lastBackup=stamp(moment))
    return name


def submit_missed_runs(ctx: Ctx) -> list[str]:
    """The sandbox's history: its seeded Schedules predate it, so each that never ran makes its missed backup now.

    An estate's Schedule was created long before today's sandbox started; when Velero
    starts and finds one whose last cron time has passed since it last ran, it submits
    one backup (and does not catch up on more). The seed cannot backdate a Schedule's
    creation (the API server sets it), so this stands in for that one missed run.
    """
    moment = now()
    made = []
    for schedule in ctx.list("schedules"):
        spec, status = schedule.get("spec") or {}, schedule.get("status") or {}
        if spec.get("paused") or status.get("lastBackup") or _validate(spec)[0] is None:
            continue
        made.append(_submit(ctx, schedule, moment))
    return made


def validate_locations(ctx: Ctx) -> None:
    for location in ctx.list("backupstoragelocations"):
        name = location["metadata"]["name"]
        bucket = ((location.get("spec") or {}).get("objectStorage") or {}).get("bucket", "")
        try:
            ctx.s3.head_bucket(Bucket=bucket)
            phase, message = "Available", None
        except Exception as exc:  # noqa: BLE001 - any failure makes the location unavailable
            phase = "Unavailable"
            message = (f"BackupStorageLocation \"{name}\" is unavailable: rpc error: code = Unknown desc = "
                       f"bucket {bucket!r}: {exc}")
        status = location.get("status") or {}
        if status.get("phase") != phase or status.get("message") != message or not status.get("lastValidationTime"):
            ctx.status("backupstoragelocations", name, phase=phase, message=message,
                       lastValidationTime=stamp())
