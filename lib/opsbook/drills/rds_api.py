"""RDS calls the drills and the sweeper need, as small functions over a boto3 client.

Waiting polls with exponential backoff (first delay, factor 1.5, capped) until a
deadline, so the same code waits seconds on the sandbox and minutes on AWS; the delays
come from the runbook's parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opsbook.errors import OpsbookError


@dataclass(frozen=True)
class Waiting:
    """How long and how often to poll: first delay, growth factor, cap, overall timeout."""

    timeout_s: float = 3600
    delay_s: float = 5
    max_delay_s: float = 60
    factor: float = 1.5

    def until(self, what: str, poll: Callable[[], Any], done: Callable[[Any], bool],
              failed: Callable[[Any], str | None] = lambda _: None) -> Any:
        """Poll until `done(value)`; raise OpsbookError on `failed(value)` or at the deadline."""
        deadline = time.monotonic() + self.timeout_s
        delay = self.delay_s
        while True:
            value = poll()
            if done(value):
                return value
            problem = failed(value)
            if problem:
                raise OpsbookError(f"{what}: {problem}")
            if time.monotonic() + delay > deadline:
                raise OpsbookError(f"{what}: not done after {self.timeout_s:.0f}s (last seen: {_show(value)})",
                                   remedy="raise the timeout parameter, or look at the RDS console for why it stalls")
            time.sleep(delay)
            delay = min(delay * self.factor, self.max_delay_s)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("DBInstanceStatus") or value.get("Status") or "?")
    return "gone" if value is None else str(value)


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagList") or []}


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None


def describe_snapshot(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"][0]
    except rds.exceptions.DBSnapshotNotFoundFault:
        return None


def list_instances(rds: Any) -> list[dict[str, Any]]:
    pages = rds.get_paginator("describe_db_instances").paginate()
    return [i for page in pages for i in page["DBInstances"]]


def list_snapshots(rds: Any, snapshot_type: str = "manual") -> list[dict[str, Any]]:
    pages = rds.get_paginator("describe_db_snapshots").paginate(SnapshotType=snapshot_type)
    return [s for page in pages for s in page["DBSnapshots"]]


def wait_instance(rds: Any, identifier: str, waiting: Waiting, status: str = "available") -> dict[str, Any]:
    bad = {"failed", "incompatible-restore", "incompatible-parameters", "storage-full", "inaccessible-encryption-credentials"}
    return waiting.until(
        f"waiting for DB instance {identifier} to be {status}",
        lambda: describe_instance(rds, identifier),
        lambda d: d is not None and d["DBInstanceStatus"] == status,
        lambda d: "it does not exist" if d is None else (
            f"it is {d['DBInstanceStatus']}" if d["DBInstanceStatus"] in bad else None),
    )


def wait_snapshot(rds: Any, identifier: str, waiting: Waiting) -> dict[str, Any]:
    return waiting.until(
        f"waiting for DB snapshot {identifier} to be available",
        lambda: describe_snapshot(rds, identifier),
        lambda s: s is not None and s["Status"] == "available",
        lambda s: "it does not exist" if s is None else (f"it is {s['Status']}" if s["Status"] == "failed" else None),
    )


def delete_instance(rds: Any, identifier: str) -> bool:
    """Delete without a final snapshot; False if it was already gone."""
    try:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True,
                               DeleteAutomatedBackups=True)
    except rds.exceptions.DBInstanceNotFoundFault:
        return False
    return True


def delete_snapshot(rds: Any, identifier: str) -> bool:
    try:
        rds.delete_db_snapshot(DBSnapshotIdentifier=identifier)
    except rds.exceptions.DBSnapshotNotFoundFault:
        return False
    return True


def restore_window(rds: Any, described: dict[str, Any]) -> tuple[datetime, datetime]:
    """(earliest, latest) restorable time of an instance.

    Latest is the instance's LatestRestorableTime; earliest the automated backup's
    RestoreWindow, or, when AWS gives none, the later of its creation time and now minus
    the backup retention period.
    """
    identifier = described["DBInstanceIdentifier"]
    latest = described.get("LatestRestorableTime")
    if latest is None or not described.get("BackupRetentionPeriod"):
        raise OpsbookError(f"{identifier} has no restorable time: automated backups are off "
                           "(BackupRetentionPeriod 0); point-in-time restore is impossible",
                           remedy="turn automated backups on (a backup retention period of 1 day or more, set in "
                                  "Terraform) and run the drill once a restorable time exists")
    earliest = None
    backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=identifier)
    for backup in backups.get("DBInstanceAutomatedBackups", []):
        window = backup.get("RestoreWindow") or {}
        if window.get("EarliestTime"):
            earliest = window["EarliestTime"]
    if earliest is None:
        created = described["InstanceCreateTime"]
        earliest = max(created, datetime.now(UTC) - timedelta(days=described["BackupRetentionPeriod"]))
    return _aware(earliest), _aware(latest)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
