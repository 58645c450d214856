"""A Backup, as Velero's backup controller runs it: validate, collect, snapshot, upload, finish.

Phases New -> InProgress -> Completed (or PartiallyFailed when a volume snapshot failed,
Failed when the upload failed, FailedValidation before anything is done). Progress
(`itemsBackedUp`/`totalItems`) is written while items are backed up. The object store
gets the files of `opsbook.formats.velero`, `velero-backup.json` last.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from opsbook.errors import UsageError
from opsbook.formats.velero import FORMAT_VERSION, gzip_json, parse_go_duration
from opsbook.sandbox.velero import items as items_mod
from opsbook.sandbox.velero import volumes
from opsbook.sandbox.velero.context import Ctx, Log, ObjectStore, now, stamp

log = logging.getLogger(__name__)
DEFAULT_TTL = "720h0m0s"
PROGRESS_EVERY = 10
STORAGE_LOCATION_LABEL = "velero.io/storage-location"


def default_location(ctx: Ctx) -> dict[str, Any] | None:
    locations = ctx.list("backupstoragelocations")
    return next((loc for loc in locations if (loc.get("spec") or {}).get("default")), None)


def validate(ctx: Ctx, backup: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    """Velero's validation errors for a Backup, and its storage location."""
    spec = backup.get("spec") or {}
    errors = []
    name = spec.get("storageLocation")
    location = ctx.get("backupstoragelocations", name) if name else default_location(ctx)
    if location is None:
        if name:
            errors.append(f"an existing backup storage location wasn't specified at backup creation time and the "
                          f"server default '{name}' doesn't exist. Please address this issue (see `velero "
                          "backup-location -h` for options) and create a new backup. Error: "
                          f'backupstoragelocations.velero.io "{name}" not found')
        else:
            errors.append("an existing backup storage location wasn't specified at backup creation time and the "
                          "default one doesn't exist")
    else:
        loc_name = location["metadata"]["name"]
        if (location.get("spec") or {}).get("accessMode") == "ReadOnly":
            errors.append(f"backup can't be created because backup storage location {loc_name} is currently "
                          "in read-only mode")
        if (location.get("status") or {}).get("phase") != "Available":
            errors.append(f"backup can't be created because BackupStorageLocation {loc_name} is in Unavailable "
                          "status.")
    for vsl in spec.get("volumeSnapshotLocations") or []:
        if ctx.get("volumesnapshotlocations", vsl) is None:
            errors.append(f"a VolumeSnapshotLocation CRD for the location {vsl} with the name specified in "
                          "the backup spec needs to be created before this snapshot can be executed. Error: "
                          f'volumesnapshotlocations.velero.io "{vsl}" not found')
    try:
        parse_go_duration(spec.get("ttl") or DEFAULT_TTL)
    except UsageError as exc:
        errors.append(f"invalid ttl: {exc}")
    overlap = set(spec.get("includedNamespaces") or []) & set(spec.get("excludedNamespaces") or [])
    if overlap:
        errors.append(f"Invalid included/excluded namespace lists: excludes list cannot contain an item in the "
                      f"includes list: {', '.join(sorted(overlap))}")
    return errors, location


def _workload_of(pvc: dict[str, Any] | None) -> tuple[str, str] | None:
    """(kind, service) of the StatefulSet whose claim this is, from its labels."""
    labels = ((pvc or {}).get("metadata") or {}).get("labels") or {}
    kind, service = labels.get("app.kubernetes.io/component"), labels.get("app.kubernetes.io/name")
    if kind in ("rabbitmq", "mysql") and service:
        return kind, service
    return None


def run(ctx: Ctx, backup: dict[str, Any]) -> None:
    name = backup["metadata"]["name"]
    spec = backup.get("spec") or {}
    errors, location = validate(ctx, backup)
    if errors:
        ctx.status("backups", name, phase="FailedValidation", validationErrors=errors,
                   formatVersion=FORMAT_VERSION, version=1)
        return
    assert location is not None
    loc_name = location["metadata"]["name"]
    started = now()
    ttl = parse_go_duration(spec.get("ttl") or DEFAULT_TTL)
    ctx.patch("backups", name, {
        "metadata": {"labels": {STORAGE_LOCATION_LABEL: loc_name}},
        "spec": {"storageLocation": loc_name, "ttl": spec.get("ttl") or DEFAULT_TTL},
        "status": {"phase": "InProgress", "startTimestamp": stamp(started), "formatVersion": FORMAT_VERSION,
                   "version": 1, "expiration": stamp(started + timedelta(seconds=ttl.total_seconds()))},
    })
    blog = Log(f"backup=velero/{name}")
    blog.add("info", "Setting up backup log")
    store = ObjectStore.of(ctx, location)
    namespaces = [ns for ns in (spec.get("includedNamespaces") or ["*"])]
    if namespaces == ["*"]:
        namespaces = [n.metadata.name for n in ctx.core.list_namespace().items]
    namespaces = [ns for ns in namespaces if ns not in (spec.get("excludedNamespaces") or [])]
    selector = items_mod.selector_string(spec.get("labelSelector"))
    collected = items_mod.collect(ctx, namespaces, selector)
    total = len(collected)
    blog.add("info", "Backing up items", total=total)
    ctx.status("backups", name, progress={"totalItems": total, "itemsBackedUp": 0})
    warnings = [f"namespace {ns} not found" for ns in namespaces
                if not any(i.group_resource == "namespaces" and i.name == ns for i in collected)]
    for w in warnings:
        blog.add("warning", w)
    claims = {(i.namespace, i.name): i.obj for i in collected if i.group_resource == "persistentvolumeclaims"}
    snapshots, failures = [], []
    vsl = (spec.get("volumeSnapshotLocations") or ["default"])[0]
    take = spec.get("snapshotVolumes") is not False
    cache: dict[Any, Any] = {}
    for done, item in enumerate(collected, start=1):
        blog.add("info", "Backed up item", resource=item.group_resource, namespace=item.namespace or "",
                 name=item.name)
        if item.group_resource == "persistentvolumes" and take:
            claim_ref = (item.obj.get("spec") or {}).get("claimRef") or {}
            pvc = claims.get((claim_ref.get("namespace"), claim_ref.get("name")))
            try:
                record = volumes.snapshot(ctx, item.obj, pvc, backup, vsl)
                workload = _workload_of(pvc)
                if workload:
                    ctx.dataplane.snapshot(record["status"]["providerSnapshotID"], workload[0],
                                           claim_ref.get("namespace", ""), workload[1], cache)
                snapshots.append(record)
                blog.add("info", "Snapshot completed", persistentVolume=item.name,
                         snapshotID=record["status"]["providerSnapshotID"])
            except volumes.SnapshotError as exc:
                failures.append(str(exc))
                snapshots.append({"spec": {"backupName": name, "backupUID": backup["metadata"].get("uid", ""),
                                           "location": vsl, "PersistentVolumeName": item.name,
                                           "providerVolumeID": volumes.volume_id(item.obj) or ""},
                                  "status": {"phase": "Failed"}})
                blog.add("error", "Error backing up item", name=item.name, error=json.dumps(str(exc)))
        if done % PROGRESS_EVERY == 0 or done == total:
            ctx.status("backups", name, progress={"totalItems": total, "itemsBackedUp": done})
    phase = "PartiallyFailed" if failures else "Completed"
    blog.add("info", f"Backup completed with phase {phase}", errors=len(failures), warnings=len(warnings))
    final = {
        "phase": phase, "completionTimestamp": stamp(), "startTimestamp": stamp(started),
        "expiration": stamp(started + timedelta(seconds=ttl.total_seconds())),
        "formatVersion": FORMAT_VERSION, "version": 1,
        "progress": {"totalItems": total, "itemsBackedUp": total},
        "volumeSnapshotsAttempted": len(snapshots),
        "volumeSnapshotsCompleted": len(snapshots) - len(failures),
        "errors": len(failures), "warnings": len(warnings),
    }
    try:
        _upload(store, name, collected, snapshots, blog, failures, warnings)
        current = ctx.get("backups", name) or backup
        store.put(store.layout.backup_metadata(name), json.dumps({**current, "status": final}).encode())
    except Exception as exc:  # an upload failure fails the backup, as in Velero
        log.warning("velero: upload of backup %s failed", name, exc_info=True)
        final.update(phase="Failed", failureReason=f"error uploading backup: {exc}")
    ctx.status("backups", name, **final)


def _upload(store: ObjectStore, name: str, collected: list[items_mod.Item], snapshots: list[dict[str, Any]],
            blog: Log, failures: list[str], warnings: list[str]) -> None:
    layout = store.layout
    store.put(layout.backup_contents(name), items_mod.write_tarball(collected))
    store.put(layout.backup_resource_list(name), gzip_json(items_mod.resource_list(collected)))
    store.put(layout.backup_volume_snapshots(name), gzip_json(snapshots))
    store.put(layout.backup_pod_volume_backups(name), gzip_json([]))
    store.put(layout.backup_item_operations(name), gzip_json([]))
    for what in ("volumesnapshots", "volumesnapshotcontents", "volumesnapshotclasses"):
        store.put(layout.backup_csi(name, what), gzip_json([]))
    store.put(layout.backup_results(name), gzip_json({
        "errors": {"velero": failures} if failures else {}, "warnings": {"velero": warnings} if warnings else {}}))
    store.put(layout.backup_volume_info(name), gzip_json([
        {"pvcName": "", "pvName": s["spec"].get("PersistentVolumeName"), "backupMethod": "NativeSnapshot",
         "snapshotDataMoved": False, "skipped": s["status"].get("phase") != "Completed",
         "nativeSnapshotInfo": {"snapshotHandle": s["status"].get("providerSnapshotID", ""),
                                "volumeID": s["spec"].get("providerVolumeID", ""),
                                "volumeType": s["spec"].get("volumeType", ""),
                                "volumeAZ": s["spec"].get("volumeAZ", "")}}
        for s in snapshots]))
    store.put(layout.backup_log(name), blog.gz())
