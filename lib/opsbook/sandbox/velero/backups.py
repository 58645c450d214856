"""A Backup, as Velero v1.18's backup controller runs it: validate, collect, snapshot, upload, finish.

Phases New -> InProgress -> Completed, or PartiallyFailed when the run logged errors
(a volume snapshot failed; an included namespace does not exist: pkg/backup/item_collector.go
logs "fail to get the namespace X specified in backup.Spec.IncludedNamespaces" as an error,
and pkg/controller/backup_controller.go `runBackup` turns any error-level entry into
PartiallyFailed), Failed when the upload failed, FailedValidation before anything is done.
`status.errors`/`warnings` count those log entries; `-results.gz` holds their texts
(pkg/util/logging/log_counter_hook.go). Progress (`itemsBackedUp`/`totalItems`) is written
while items are backed up.

Volumes (`volumes.py`): each PV of a claim in the backup is snapshotted, or skipped with
Velero's reason; the snapshot records go to `-volumesnapshots.json.gz` and every PV to
`-volumeinfo.json.gz` (internal/volume/volumes_information.go: skipped PVs first, then the
native snapshots). The Backup is Completed while the EBS snapshots are still pending
(`pending.py`); `run` returns them so the controller can let them finish later.

The object store gets the files of `opsbook.formats.velero.Layout.backup_files` (v1.18
writes no `-csi-*` files), `velero-backup.json` last, as the finalizer leaves it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opsbook.errors import UsageError
from opsbook.formats.velero import (
    FORMAT_VERSION,
    MISSING_NAMESPACE,
    NATIVE_SNAPSHOT,
    SNAPSHOT_COMPLETED,
    gzip_json,
    result_message,
)
from opsbook.formats.velero_schedule import parse_go_duration
from opsbook.sandbox.velero import items as items_mod
from opsbook.sandbox.velero import pending, volumes
from opsbook.sandbox.velero.context import Ctx, Log, ObjectStore, now, stamp

log = logging.getLogger(__name__)
DEFAULT_TTL = "720h0m0s"
PROGRESS_EVERY = 10
STORAGE_LOCATION_LABEL = "velero.io/storage-location"


def default_location(ctx: Ctx) -> dict[str, Any] | None:
    locations = ctx.list("backupstoragelocations")
    return next((loc for loc in locations if (loc.get("spec") or {}).get("default")), None)


def _location_errors(ctx: Ctx, name: str | None) -> tuple[list[str], dict[str, Any] | None]:
    location = ctx.get("backupstoragelocations", name) if name else default_location(ctx)
    if location is None:
        if name:
            return [f"an existing backup storage location wasn't specified at backup creation time and the "
                    f"server default '{name}' doesn't exist. Please address this issue (see `velero "
                    "backup-location -h` for options) and create a new backup. Error: "
                    f'backupstoragelocations.velero.io "{name}" not found'], None
        return ["an existing backup storage location wasn't specified at backup creation time and the "
                "default one doesn't exist"], None
    errors = []
    loc_name = location["metadata"]["name"]
    if (location.get("spec") or {}).get("accessMode") == "ReadOnly":
        errors.append(f"backup can't be created because backup storage location {loc_name} is currently "
                      "in read-only mode")
    if (location.get("status") or {}).get("phase") != "Available":
        errors.append(f"backup can't be created because BackupStorageLocation {loc_name} is in Unavailable "
                      "status.")
    return errors, location


def validate(ctx: Ctx, backup: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    """Velero's validation errors for a Backup, and its storage location."""
    spec = backup.get("spec") or {}
    errors, location = _location_errors(ctx, spec.get("storageLocation"))
    for vsl in spec.get("volumeSnapshotLocations") or []:
        if ctx.get("volumesnapshotlocations", vsl) is None:
            errors.append(f"a VolumeSnapshotLocation CRD for the location {vsl} with the name specified in "
                          "the backup spec needs to be created before this snapshot can be executed. Error: "
                          f'volumesnapshotlocations.velero.io "{vsl}" not found')
    try:
        parse_go_duration(spec.get("ttl") or DEFAULT_TTL)
    except UsageError as exc:
        errors.append(f"invalid ttl: {exc.message}")
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


@dataclass
class _Results:
    """The backup's error log entries, counted and filed as Velero's LogHook files them (the emulator logs no
    warnings)."""

    errors: dict[str, Any] = field(default_factory=dict)
    count: int = 0

    def error(self, text: str, cluster_scoped: bool = False) -> None:
        """results.Result: `velero` for an entry without a namespace field, `cluster` for a cluster-scoped item's."""
        self.count += 1
        self.errors.setdefault("cluster" if cluster_scoped else "velero", []).append(text)

    def as_json(self) -> dict[str, Any]:
        return {"errors": self.errors, "warnings": {}}


def _namespaces(ctx: Ctx, spec: dict[str, Any]) -> list[str]:
    names = list(spec.get("includedNamespaces") or ["*"])
    if names == ["*"]:
        names = [n.metadata.name for n in ctx.core.list_namespace().items]
    return [ns for ns in names if ns not in (spec.get("excludedNamespaces") or [])]


@dataclass
class _Run:
    """One backup's items being backed up: its log, its errors, and what happened to each PV."""

    ctx: Ctx
    backup: dict[str, Any]
    blog: Log
    results: _Results = field(default_factory=_Results)
    records: list[dict[str, Any]] = field(default_factory=list)  # -volumesnapshots.json
    skipped: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (PV, Velero's reason)
    pending: list[volumes.Snapshot] = field(default_factory=list)  # EBS snapshots still pending
    cache: dict[Any, Any] = field(default_factory=dict)  # the data plane's, across the backup's volumes

    @property
    def name(self) -> str:
        return self.backup["metadata"]["name"]

    def items(self, collected: list[items_mod.Item]) -> None:
        """Back up every item (the tarball is written later), snapshotting each PV; progress on the way."""
        total = len(collected)
        self.blog.add("info", "Backing up items", total=total)
        self.ctx.status("backups", self.name, progress={"totalItems": total, "itemsBackedUp": 0})
        claims = {(i.namespace, i.name): i.obj for i in collected if i.group_resource == "persistentvolumeclaims"}
        for done, item in enumerate(collected, start=1):
            self.blog.add("info", "Backed up item", resource=item.group_resource, namespace=item.namespace or "",
                          name=item.name)
            if item.group_resource == "persistentvolumes":
                claim_ref = (item.obj.get("spec") or {}).get("claimRef") or {}
                self.volume(item, claims.get((claim_ref.get("namespace"), claim_ref.get("name"))))
            if done % PROGRESS_EVERY == 0 or done == total:
                self.ctx.status("backups", self.name, progress={"totalItems": total, "itemsBackedUp": done})

    def volume(self, item: items_mod.Item, pvc: dict[str, Any] | None) -> None:
        vsl = ((self.backup.get("spec") or {}).get("volumeSnapshotLocations") or ["default"])[0]
        try:
            snap = volumes.snapshot(self.ctx, item.obj, pvc, self.backup, vsl)
        except volumes.Skipped as skipped:
            self.skipped.append((item.obj, str(skipped)))
            self.blog.add("info", f"Persistent volume is skipped: {skipped}", persistentVolume=item.name)
            return
        except volumes.SnapshotError as exc:
            if exc.record is not None:
                self.records.append(exc.record)
            self.results.error(result_message("Error backing up item", "persistentvolumes", item.name, str(exc)),
                               cluster_scoped=True)
            self.blog.add("error", "Error backing up item", name=item.name, error=json.dumps(str(exc)))
            return
        pending.hold(self.ctx.params.region, snap)
        self.records.append(snap.record)
        self.pending.append(snap)
        snap_id = snap.record["status"]["providerSnapshotID"]
        workload = _workload_of(pvc)
        if workload:
            namespace = ((item.obj.get("spec") or {}).get("claimRef") or {}).get("namespace", "")
            self.ctx.dataplane.snapshot(snap_id, workload[0], namespace, workload[1], self.cache)
        self.blog.add("info", "Snapshot completed", persistentVolume=item.name, snapshotID=snap_id)


def run(ctx: Ctx, backup: dict[str, Any]) -> list[volumes.Snapshot]:
    """Run the backup; the EBS snapshots it took, still pending for the controller to finish."""
    name = backup["metadata"]["name"]
    spec = backup.get("spec") or {}
    errors, location = validate(ctx, backup)
    if errors or location is None:
        ctx.status("backups", name, phase="FailedValidation", validationErrors=errors,
                   formatVersion=FORMAT_VERSION, version=1)
        return []
    started = now()
    ttl = spec.get("ttl") or DEFAULT_TTL
    expiration = stamp(started + timedelta(seconds=parse_go_duration(ttl).total_seconds()))
    ctx.patch("backups", name, {
        "metadata": {"labels": {STORAGE_LOCATION_LABEL: location["metadata"]["name"]}},
        "spec": {"storageLocation": location["metadata"]["name"], "ttl": ttl},
        "status": {"phase": "InProgress", "startTimestamp": stamp(started), "formatVersion": FORMAT_VERSION,
                   "version": 1, "expiration": expiration},
    })
    run = _Run(ctx, backup, Log(f"backup={ctx.namespace}/{name}"))
    run.blog.add("info", "Setting up backup log")
    collected = items_mod.collect(ctx, _namespaces(ctx, spec), items_mod.selector_string(spec.get("labelSelector")))
    for missing in collected.missing_namespaces:
        message = MISSING_NAMESPACE.format(missing)
        run.results.error(result_message(message, resource="namespaces"))
        run.blog.add("error", message, resource="namespaces")
    run.items(collected.items)
    final = _final_status(started, expiration, len(collected.items), run)
    run.blog.add("info", f"Backup completed with phase {final['phase']}", errors=run.results.count, warnings=0)
    store = ObjectStore.of(ctx, location)
    try:
        _upload(store, run, collected.items)
        current = ctx.get("backups", name) or backup
        store.put(store.layout.backup_metadata(name), json.dumps({**current, "status": final}, indent=2).encode())
    except Exception as exc:  # an upload failure fails the backup, as in Velero
        log.warning("velero: upload of backup %s failed", name, exc_info=True)
        final.update(phase="Failed", failureReason=f"error uploading backup: {exc}")
    ctx.status("backups", name, **final)
    return run.pending


def _final_status(started: Any, expiration: str, total: int, run: _Run) -> dict[str, Any]:
    completed = sum(1 for r in run.records if r["status"].get("phase") == SNAPSHOT_COMPLETED)
    return {
        "phase": "PartiallyFailed" if run.results.count else "Completed",
        "completionTimestamp": stamp(), "startTimestamp": stamp(started), "expiration": expiration,
        "formatVersion": FORMAT_VERSION, "version": 1,
        "progress": {"totalItems": total, "itemsBackedUp": total},
        "volumeSnapshotsAttempted": len(run.records), "volumeSnapshotsCompleted": completed,
        "errors": run.results.count, "warnings": 0,
    }


def _pv_info(pv: dict[str, Any]) -> dict[str, Any]:
    return {"reclaimPolicy": (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy", ""),
            "labels": (pv.get("metadata") or {}).get("labels")}


def _claim_of(pv: dict[str, Any]) -> dict[str, str]:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return {"pvcName": ref.get("name", ""), "pvcNamespace": ref.get("namespace", "")}


def volume_info(run: _Run, pvs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """`-volumeinfo.json.gz`: the skipped PVs, then the native snapshots (BackupVolumeInfo's json tags)."""
    out = [{**_claim_of(pv), "pvName": pv["metadata"]["name"], "snapshotDataMoved": False,
            "preserveLocalSnapshot": False, "skipped": True, "skippedReason": reason, "pvInfo": _pv_info(pv)}
           for pv, reason in run.skipped]
    for record in run.records:
        spec, status = record["spec"], record["status"]
        pv = pvs.get(spec["persistentVolumeName"], {"metadata": {"name": spec["persistentVolumeName"]}})
        out.append({
            **_claim_of(pv), "pvName": spec["persistentVolumeName"], "backupMethod": NATIVE_SNAPSHOT,
            "snapshotDataMoved": False, "preserveLocalSnapshot": False, "skipped": False,
            "result": "succeeded" if status.get("phase") == SNAPSHOT_COMPLETED else "failed",
            "nativeSnapshotInfo": {"snapshotHandle": status.get("providerSnapshotID", ""),
                                   "volumeType": spec.get("volumeType", ""), "volumeAZ": spec.get("volumeAZ", ""),
                                   "iops": str(spec.get("volumeIOPS") or 0), "Phase": status.get("phase", "")},
            "pvInfo": _pv_info(pv),
        })
    return out


def _upload(store: ObjectStore, run: _Run, collected: list[items_mod.Item]) -> None:
    layout, name = store.layout, run.name
    pvs = {i.name: i.obj for i in collected if i.group_resource == "persistentvolumes"}
    store.put(layout.backup_contents(name), items_mod.write_tarball(collected))
    store.put(layout.backup_resource_list(name), gzip_json(items_mod.resource_list(collected)))
    store.put(layout.backup_volume_snapshots(name), gzip_json(run.records or None))  # a nil slice: null
    store.put(layout.backup_pod_volume_backups(name), gzip_json(None))
    store.put(layout.backup_item_operations(name), gzip_json([]))
    store.put(layout.backup_results(name), gzip_json(run.results.as_json()))
    store.put(layout.backup_volume_info(name), gzip_json(volume_info(run, pvs)))
    store.put(layout.backup_log(name), run.blog.gz())
