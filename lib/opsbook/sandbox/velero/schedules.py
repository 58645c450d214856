"""Schedules and BackupStorageLocations: Velero's schedule and storage-location controllers.

A Schedule is validated (its cron expression) and Enabled; it makes a Backup from its
template, named `<schedule>-<yyyyMMddHHmmss>` and labelled `velero.io/schedule-name`,
when a run is due: at once when it never ran and `skipImmediately` is not set, then at
every cron time. A BackupStorageLocation is Available while its bucket answers, else
Unavailable with the error, checked when it changes and every few seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from opsbook.errors import UsageError
from opsbook.formats.velero import parse
from opsbook.sandbox.velero.context import Ctx, now, parse_stamp, stamp

log = logging.getLogger(__name__)
SCHEDULE_LABEL = "velero.io/schedule-name"


def run_schedules(ctx: Ctx) -> list[str]:
    made = []
    moment = now()
    for schedule in ctx.list("schedules"):
        name = schedule["metadata"]["name"]
        spec, status = schedule.get("spec") or {}, schedule.get("status") or {}
        try:
            cron = parse(spec.get("schedule", ""))
        except UsageError as exc:
            if status.get("phase") != "FailedValidation":
                ctx.status("schedules", name, phase="FailedValidation", validationErrors=[str(exc)])
            continue
        if status.get("phase") != "Enabled":
            ctx.status("schedules", name, phase="Enabled", validationErrors=None)
        if spec.get("paused"):
            continue
        last = parse_stamp(status.get("lastBackup"))
        if last is None:
            due = not spec.get("skipImmediately")
            if not due:
                created = parse_stamp(schedule["metadata"].get("creationTimestamp")) or moment
                due = cron.next_after(created) <= moment
        else:
            due = cron.next_after(last) <= moment
        if not due:
            continue
        made.append(_backup_from(ctx, schedule, moment))
    return made


def _backup_from(ctx: Ctx, schedule: dict[str, Any], moment: Any) -> str:
    name = f"{schedule['metadata']['name']}-{moment.strftime('%Y%m%d%H%M%S')}"
    template = dict((schedule.get("spec") or {}).get("template") or {})
    labels = {**((template.pop("metadata", None) or {}).get("labels") or {}),
              **(schedule["metadata"].get("labels") or {}), SCHEDULE_LABEL: schedule["metadata"]["name"]}
    body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "labels": labels},
            "spec": template}
    ctx.create("backups", body)
    ctx.status("schedules", schedule["metadata"]["name"], lastBackup=stamp(moment), phase="Enabled")
    return name


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
