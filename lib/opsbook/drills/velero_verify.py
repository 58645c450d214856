"""Checks of a Velero backup where it lives: its files, its volume data, its EBS snapshots.

- `read_backup_store`: the backup's files in the BackupStorageLocation's bucket (Velero's
  layout, `opsbook.formats.velero`), parsed: its own record, the tarball's items, the
  resource list, the volume snapshot list and the per-PV volume info.
- `volume_data_rows`: every PV of the namespace's claims has a completed native snapshot.
  A Backup can be Completed without one: with the EnableCSI feature a CSI PV is left to
  the CSI plugin, and a PV no volume snapshotter takes (not EBS), or every PV of a backup
  with `snapshotVolumes: false`, is skipped (pkg/backup/item_backupper.go `takePVSnapshot`);
  the volume info says why. CSI snapshot counts are reported when there are any.
- `wait_snapshots`: Velero records a snapshot Completed as soon as EBS accepted it
  (`takePVSnapshot`; the AWS plugin does not wait), so each EBS snapshot is waited for,
  with backoff, until `completed`; `error` or the timeout fails, naming the snapshot.
  Each must also carry the tags Velero gave it (`velero.io/backup`, `velero.io/pv`).

Each returns rows `{check, ok, detail}` (a drill turns them into checks) and the data
the next step needs. What a restore brought back is checked in `velero_restored`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from opsbook.errors import OpsbookError
from opsbook.formats.velero import (
    CSI_SNAPSHOT,
    SNAPSHOT_COMPLETED,
    Layout,
    TarItem,
    VolumeInfo,
    gunzip_json,
    read_tarball,
    snapshot_pv_name,
)

# the files a drill insists on: without them the backup cannot be restored or judged
REQUIRED_FILES = ("metadata", "contents", "log", "resource list", "volume snapshots")
MAX_POLL_SECONDS = 30.0  # backoff ceiling while waiting for EBS snapshots


def row(check: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": check, "ok": bool(ok), "detail": detail}


@dataclass
class StoredBackup:
    """A backup as read back from its object store."""

    name: str
    bucket: str
    layout: Layout
    keys: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)  # velero-backup.json
    format_version: str = ""
    items: list[TarItem] = field(default_factory=list)
    resource_list: dict[str, list[str]] = field(default_factory=dict)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    volume_info: list[VolumeInfo] = field(default_factory=list)

    def completed_snapshots(self) -> dict[str, str]:
        """PV name -> EBS snapshot id, for the snapshots Velero recorded Completed."""
        return {snapshot_pv_name(s): s["status"]["providerSnapshotID"] for s in self.snapshots
                if (s.get("status") or {}).get("phase") == SNAPSHOT_COMPLETED and s["status"].get("providerSnapshotID")}

    def claims(self, namespace: str) -> dict[str, str]:
        """Claim name -> PV name, for the namespace's bound claims the backup holds."""
        return {i.name: (i.obj.get("spec") or {}).get("volumeName") or "" for i in self.items
                if i.group_resource == "persistentvolumeclaims" and i.namespace == namespace}


def storage_location(velero: Any, backup: dict[str, Any], default: str) -> dict[str, Any]:
    name = (backup.get("spec") or {}).get("storageLocation") or default
    location = velero.get("backupstoragelocations", name)
    if location is None:
        raise OpsbookError(f"backup {backup['metadata']['name']} names storage location {name}, which does not "
                           f"exist in namespace {velero.namespace}")
    return location


def _fetch(s3: Any, stored: StoredBackup, key: str) -> bytes | None:
    return s3.get_object(Bucket=stored.bucket, Key=key)["Body"].read() if key in stored.keys else None


def read_backup_store(s3: Any, location: dict[str, Any], name: str) -> tuple[StoredBackup, list[dict[str, Any]]]:
    """Read a backup's files from its storage location; rows say what is there and sound."""
    storage = (location.get("spec") or {}).get("objectStorage") or {}
    stored = StoredBackup(name, storage.get("bucket", ""), Layout(storage.get("prefix") or ""))
    layout, rows = stored.layout, []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stored.bucket, Prefix=layout.backup_dir(name)):
        stored.keys += [o["Key"] for o in page.get("Contents", [])]
    files = layout.backup_files(name)
    for what in REQUIRED_FILES:
        key = files[what]
        rows.append(row(f"object store: {what}", key in stored.keys,
                        f"s3://{stored.bucket}/{key}" + ("" if key in stored.keys else " is missing")))
    if (raw := _fetch(s3, stored, files["metadata"])) is not None:
        stored.record = json.loads(raw)
        same = stored.record.get("metadata", {}).get("name") == name
        rows.append(row("object store: backup record", same,
                        f"velero-backup.json names {stored.record.get('metadata', {}).get('name')!r}, phase "
                        f"{(stored.record.get('status') or {}).get('phase')}"))
    if (raw := _fetch(s3, stored, files["contents"])) is not None:
        stored.format_version, stored.items = read_tarball(raw)
        rows.append(row("object store: tarball", bool(stored.items) and bool(stored.format_version),
                        f"{len(stored.items)} items, format {stored.format_version or 'unknown'}"))
    if (raw := _fetch(s3, stored, files["resource list"])) is not None:
        rows.append(_resource_list_row(stored, gunzip_json(raw) or {}))
    if (raw := _fetch(s3, stored, files["volume snapshots"])) is not None:
        stored.snapshots = gunzip_json(raw) or []  # `null` when Velero took none
    if (raw := _fetch(s3, stored, files["volume info"])) is not None:  # Velero 1.12+
        stored.volume_info = [VolumeInfo.of(entry) for entry in gunzip_json(raw) or []]
    return stored, rows


def _resource_list_row(stored: StoredBackup, listing: dict[str, list[str]]) -> dict[str, Any]:
    stored.resource_list = listing
    listed = {(k, v) for k, values in listing.items() for v in values}
    in_tar = {(f"{t.obj.get('apiVersion')}/{t.obj.get('kind')}", f"{t.namespace}/{t.name}" if t.namespace else t.name)
              for t in stored.items}
    missing = sorted(f"{k} {v}" for k, v in listed - in_tar)
    return row("object store: resource list matches tarball", not missing and bool(listed),
               f"{len(listed)} listed" + (f"; not in the tarball: {', '.join(missing[:5])}" if missing else ""))


# --- volume data ------------------------------------------------------------------------------


def _why_no_snapshot(info: VolumeInfo | None, failed: bool) -> str:
    if failed:
        return "its snapshot failed"
    if info is None:
        return "neither the snapshot list nor the volume info has it"
    if info.skipped:
        return f"Velero skipped it: {info.skipped_reason or 'no reason given'}"
    if info.method == CSI_SNAPSHOT:
        return f"backed up as a CSI snapshot ({info.snapshot_handle or 'no handle'}), which this drill does not restore"
    return f"backed up by {info.method or 'an unknown method'}, not a native snapshot"


def volume_data_rows(stored: StoredBackup, status: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Each PV of the namespace's claims has a completed native snapshot; CSI counts when there are any."""
    completed = stored.completed_snapshots()
    failed = {snapshot_pv_name(s) for s in stored.snapshots if (s.get("status") or {}).get("phase") != SNAPSHOT_COMPLETED}
    infos = {v.pv: v for v in stored.volume_info}
    rows = [row("volume snapshots listed", status.get("volumeSnapshotsCompleted") in (None, len(completed)),
                f"{len(completed)} completed in the snapshot list, status says {status.get('volumeSnapshotsCompleted')}")]
    claims = stored.claims(namespace)
    for claim, pv in sorted(claims.items()):
        if pv in completed:
            rows.append(row(f"volume data of {claim}", True, f"PV {pv}: native snapshot {completed[pv]}"))
        else:
            rows.append(row(f"volume data of {claim}", False, f"PV {pv or '(none: the claim was not bound)'} has no "
                                                              f"completed snapshot: "
                                                              f"{_why_no_snapshot(infos.get(pv), pv in failed)}"))
    if not claims:
        rows.append(row("volume data", True, f"the backup holds no claims of {namespace}"))
    attempted = status.get("csiVolumeSnapshotsAttempted") or 0
    if attempted:
        done = status.get("csiVolumeSnapshotsCompleted") or 0
        rows.append(row("CSI volume snapshots", done == attempted, f"{done} of {attempted} completed"))
    return rows


# --- the EBS snapshots ------------------------------------------------------------------------


def describe_snapshots(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Snapshot id -> EC2's description (owner self); a missing one is left out."""
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 200):
        chunk = ids[i:i + 200]
        try:
            found.update({s["SnapshotId"]: s for s in
                          ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=chunk)["Snapshots"]})
        except Exception as exc:  # a missing snapshot makes the call fail as a whole: ask one by one
            if "NotFound" not in str(exc):
                raise
            for snap_id in chunk:
                try:
                    found.update({s["SnapshotId"]: s for s in
                                  ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=[snap_id])["Snapshots"]})
                except Exception as inner:
                    if "NotFound" not in str(inner):
                        raise
    return found


def _settled(described: dict[str, dict[str, Any]], ids: list[str]) -> bool:
    """Nothing left to wait for: all completed, or one is in error or gone."""
    states = [(described.get(i) or {}).get("State") for i in ids]
    return all(s == "completed" for s in states) or any(s in ("error", None) for s in states)


def wait_snapshots(ec2: Any, stored: StoredBackup, timeout_s: float, poll_s: float = 1.0) -> list[dict[str, Any]]:
    """Wait (backoff from `poll_s` to 30s) until each of the backup's EBS snapshots is completed; a row each."""
    snapshots = stored.completed_snapshots()
    ids = sorted(snapshots.values())
    deadline, delay = time.monotonic() + timeout_s, poll_s
    started = time.monotonic()
    while True:
        described = describe_snapshots(ec2, ids)
        left = deadline - time.monotonic()
        if _settled(described, ids) or left <= 0:
            break
        time.sleep(min(delay, left))
        delay = min(delay * 2, MAX_POLL_SECONDS)
    waited = time.monotonic() - started
    errored = sorted(i for i in ids if (described.get(i) or {}).get("State") in ("error", None))
    return [_snapshot_row(pv, snap_id, described.get(snap_id), stored.name, waited, errored)
            for pv, snap_id in sorted(snapshots.items())]


def _snapshot_row(pv: str, snap_id: str, snap: dict[str, Any] | None, backup: str, waited: float,
                  errored: list[str]) -> dict[str, Any]:
    check = f"EBS snapshot of {pv}"
    if snap is None:
        return row(check, False, f"{snap_id} does not exist in EC2")
    state, tags = snap.get("State"), {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
    detail = f"{snap_id} {state}, of {snap.get('VolumeId')}"
    if state == "error":
        return row(check, False, f"{detail}: EBS could not complete it ({snap.get('StateMessage') or 'no message'})")
    if state != "completed":
        why = (f"not waited for further: {', '.join(e for e in errored if e != snap_id)} failed" if errored else
               f"still {state} ({snap.get('Progress') or '?'}) after {waited:.0f}s (timeout)")
        return row(check, False, f"{detail}: {why}")
    tagged = tags.get("velero.io/backup") == backup and tags.get("velero.io/pv") == pv
    return row(check, tagged, f"{detail}, tags velero.io/backup={tags.get('velero.io/backup')}, "
                              f"velero.io/pv={tags.get('velero.io/pv')}")
