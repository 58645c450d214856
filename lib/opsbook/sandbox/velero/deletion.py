"""DeleteBackupRequests and expired backups, as Velero v1.18's backup deletion and GC controllers do them.

A request goes New -> InProgress -> Processed (pkg/controller/backup_deletion_controller.go):
other requests for the same backup are deleted first; a missing backup is "backup not
found"; the request gets the labels `velero.io/backup-name` and `velero.io/backup-uid` and
the Backup the phase Deleting; the backup's volume snapshots are deleted (from the list in
the object store; one already gone is no error), then its directory, its Restores with
their files, and the Backup object. Errors are listed in `status.errors` and leave the
Backup in place. When nothing failed, every request for the backup, this one included, is
deleted right after it is marked Processed: a client that waits for `Processed` may find
the request gone. A request older than 24 hours that is still around is deleted. A Backup
whose `status.expiration` has passed gets a request from the GC.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from opsbook.formats.velero import gunzip_json
from opsbook.sandbox.velero import volumes
from opsbook.sandbox.velero.context import Ctx, ObjectStore, now, parse_stamp

log = logging.getLogger(__name__)
BACKUP_NAME_LABEL = "velero.io/backup-name"
BACKUP_UID_LABEL = "velero.io/backup-uid"
REQUEST_MAX_AGE = timedelta(hours=24)  # deleteBackupRequestMaxAge


def request_body(backup: dict[str, Any]) -> dict[str, Any]:
    """The DeleteBackupRequest `velero backup delete` creates."""
    meta = backup["metadata"]
    return {
        "apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
        "metadata": {"generateName": f"{meta['name']}-",
                     "labels": {BACKUP_NAME_LABEL: meta["name"], BACKUP_UID_LABEL: meta.get("uid", "")}},
        "spec": {"backupName": meta["name"]},
    }


def _refuse(ctx: Ctx, name: str, error: str) -> None:
    """patchDeleteBackupRequestWithError: Processed, with the one error."""
    ctx.status("deletebackuprequests", name, phase="Processed", errors=[error])


def _delete_other_requests(ctx: Ctx, request: dict[str, Any], backup_name: str) -> None:
    """deleteExistingDeletionRequests: one request at a time per backup."""
    for other in ctx.list("deletebackuprequests", label_selector=f"{BACKUP_NAME_LABEL}={backup_name}"):
        if other["metadata"]["name"] != request["metadata"]["name"]:
            ctx.delete("deletebackuprequests", other["metadata"]["name"])


def _location_error(ctx: Ctx, backup: dict[str, Any]) -> str | None:
    name = (backup.get("spec") or {}).get("storageLocation") or ""
    location = ctx.get("backupstoragelocations", name)
    if location is None:
        return f"backup storage location {name} not found"
    if (location.get("spec") or {}).get("accessMode") == "ReadOnly":
        return f"cannot delete backup because backup storage location {name} is currently in read-only mode"
    if (location.get("status") or {}).get("phase") != "Available":
        return f"cannot delete backup because backup storage location {name} is currently in Unavailable state"
    return None


def run(ctx: Ctx, request: dict[str, Any]) -> None:
    name = request["metadata"]["name"]
    backup_name = (request.get("spec") or {}).get("backupName", "")
    if not backup_name:
        _refuse(ctx, name, "spec.backupName is required")
        return
    _delete_other_requests(ctx, request, backup_name)
    backup = ctx.get("backups", backup_name)
    if backup is None:
        _refuse(ctx, name, "backup not found")
        return
    if (error := _location_error(ctx, backup)) is not None:
        _refuse(ctx, name, error)
        return
    uid = backup["metadata"].get("uid", "")
    labels = request["metadata"].get("labels") or {}
    ctx.patch("deletebackuprequests", name, {
        "metadata": {"labels": {BACKUP_NAME_LABEL: labels.get(BACKUP_NAME_LABEL) or backup_name,
                                BACKUP_UID_LABEL: labels.get(BACKUP_UID_LABEL) or uid}},
        "status": {"phase": "InProgress"}})
    ctx.patch("backups", backup_name, {"status": {"phase": "Deleting"}})
    errors = delete_backup(ctx, backup)
    ctx.status("deletebackuprequests", name, phase="Processed", errors=errors or None)
    if not errors:
        for done in ctx.list("deletebackuprequests",
                             label_selector=f"{BACKUP_NAME_LABEL}={backup_name},{BACKUP_UID_LABEL}={uid}"):
            ctx.delete("deletebackuprequests", done["metadata"]["name"])


def delete_backup(ctx: Ctx, backup: dict[str, Any]) -> list[str]:
    """Delete a backup's snapshots, its restores, its files and the Backup; the errors that stopped it."""
    name = backup["metadata"]["name"]
    location = ctx.get("backupstoragelocations", (backup.get("spec") or {}).get("storageLocation") or "default")
    store = ObjectStore.of(ctx, location) if location else None
    snapshots, errors = _snapshot_list(store, name) if store is not None else ([], [])
    errors += _delete_snapshots(ctx, snapshots)
    _delete_restores(ctx, store, name)
    if errors:
        return errors
    if store is not None:
        try:
            store.delete_dir(store.layout.backup_dir(name))
        except Exception as exc:  # noqa: BLE001 - listed in status.errors; the Backup stays, as in Velero
            return [f"error deleting backup {name} from the object store: {exc}"]
    ctx.delete("backups", name)
    return []


def _snapshot_list(store: ObjectStore, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The backup's volume snapshots as its snapshot list in the object store has them, and any error."""
    try:
        return gunzip_json(store.get(store.layout.backup_volume_snapshots(name))) or [], []
    except Exception as exc:  # noqa: BLE001 - no list: nothing to delete, not an error
        if "NoSuchKey" not in str(exc):
            return [], [f"error getting the volume snapshots of backup {name}: {exc}"]
        return [], []


def _delete_snapshots(ctx: Ctx, snapshots: list[dict[str, Any]]) -> list[str]:
    errors = []
    for snap in snapshots:
        snap_id = (snap.get("status") or {}).get("providerSnapshotID")
        if not snap_id:
            continue
        try:
            volumes.delete_snapshot(ctx, snap_id)
            ctx.dataplane.drop_snapshot(snap_id)
        except Exception as exc:  # noqa: BLE001 - each failure is listed in status.errors, the rest go on
            errors.append(f"error deleting snapshot {snap_id}: {exc}")
    return errors


def _delete_restores(ctx: Ctx, store: ObjectStore | None, name: str) -> None:
    """The Restores made from the backup, with their files."""
    for restore in ctx.list("restores"):
        if (restore.get("spec") or {}).get("backupName") != name:
            continue
        rname = restore["metadata"]["name"]
        if store is not None:
            store.delete_dir(store.layout.restore_dir(rname))
        ctx.delete("restores", rname)


def collect_expired(ctx: Ctx) -> list[str]:
    """Request the deletion of every backup past its expiration (once); drop requests older than a day."""
    moment = now()
    requested = set()
    for request in ctx.list("deletebackuprequests"):
        created = parse_stamp(request["metadata"].get("creationTimestamp"))
        if (request.get("status") or {}).get("phase") in ("Processed", "InProgress"):
            if created is not None and moment - created >= REQUEST_MAX_AGE:
                ctx.delete("deletebackuprequests", request["metadata"]["name"])
            continue
        requested.add((request.get("spec") or {}).get("backupName"))
    out = []
    for backup in ctx.list("backups"):
        status = backup.get("status") or {}
        expiration = parse_stamp(status.get("expiration"))
        name = backup["metadata"]["name"]
        if expiration is None or expiration > moment or name in requested:
            continue
        if status.get("phase") in ("New", "InProgress", "Deleting", ""):
            continue
        ctx.create("deletebackuprequests", request_body(backup))
        out.append(name)
    return out
