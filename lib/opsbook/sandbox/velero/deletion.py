"""DeleteBackupRequests and expired backups, as Velero's backup deletion and GC controllers do them.

A request (labelled `velero.io/backup-name`) goes New -> InProgress -> Processed: the
backup's volume snapshots are deleted (from the list in the object store), then the
Restores made from it with their files, then the backup's directory, then the Backup
object. Errors are listed in `status.errors` and leave the Backup in place. A Backup
whose `status.expiration` has passed gets a request from the GC, labelled the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from opsbook.formats.velero import gunzip_json
from opsbook.sandbox.velero import volumes
from opsbook.sandbox.velero.context import Ctx, ObjectStore, now, parse_stamp

log = logging.getLogger(__name__)
BACKUP_NAME_LABEL = "velero.io/backup-name"
BACKUP_UID_LABEL = "velero.io/backup-uid"


def request_body(backup: dict[str, Any]) -> dict[str, Any]:
    """The DeleteBackupRequest `velero backup delete` creates."""
    meta = backup["metadata"]
    return {
        "apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
        "metadata": {"generateName": f"{meta['name']}-",
                     "labels": {BACKUP_NAME_LABEL: meta["name"], BACKUP_UID_LABEL: meta.get("uid", "")}},
        "spec": {"backupName": meta["name"]},
    }


def run(ctx: Ctx, request: dict[str, Any]) -> None:
    name = request["metadata"]["name"]
    backup_name = (request.get("spec") or {}).get("backupName", "")
    ctx.patch("deletebackuprequests", name, {"metadata": {"labels": {BACKUP_NAME_LABEL: backup_name}},
                                             "status": {"phase": "InProgress"}})
    backup = ctx.get("backups", backup_name)
    if backup is None:
        ctx.status("deletebackuprequests", name, phase="Processed",
                   errors=[f'backups.velero.io "{backup_name}" not found'])
        return
    ctx.patch("backups", backup_name, {"status": {"phase": "Deleting"}})
    errors = delete_backup(ctx, backup)
    ctx.status("deletebackuprequests", name, phase="Processed", errors=errors or None)


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
    """Request the deletion of every backup past its expiration (once)."""
    requested = {(r.get("spec") or {}).get("backupName") for r in ctx.list("deletebackuprequests")
                 if (r.get("status") or {}).get("phase") != "Processed"}
    out = []
    moment = now()
    for backup in ctx.list("backups"):
        status = backup.get("status") or {}
        expiration = parse_stamp(status.get("expiration"))
        name = backup["metadata"]["name"]
        if expiration is None or expiration > moment or name in requested or status.get("phase") == "Deleting":
            continue
        if status.get("phase") in ("New", "InProgress", ""):
            continue
        ctx.create("deletebackuprequests", request_body(backup))
        out.append(name)
    return out
