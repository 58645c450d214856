"""Checks of a Velero backup where it lives, and of what a restore brought back.

- `read_backup_store`: the backup's files in the BackupStorageLocation's bucket (Velero's
  layout, see `velero_layout`), parsed: its own record, the tarball's items, the resource
  list and the volume snapshot list.
- `snapshot_rows`: each snapshot the backup lists exists in EC2 (owner self), completed,
  tagged with the backup's name.
- `restored_object_rows`, `restored_volume_rows`, `wait_pods_ready`: every backed-up
  object of the source namespace exists in the target one; each claim is Bound to a new
  PV whose EBS volume was made from one of the backup's snapshots; the StatefulSets'
  pods are Ready.

Each returns rows `{check, ok, detail}` (a drill turns them into checks) and the data
the next step needs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from opsbook.drills.velero_api import pv_volume_id
from opsbook.errors import OpsbookError
from opsbook.formats.velero import (
    Layout,
    TarItem,
    gunzip_json,
    read_tarball,
    snapshot_pv_name,
)

# the files a drill insists on: without them the backup cannot be restored or judged
REQUIRED_FILES = ("metadata", "contents", "log", "resource list", "volume snapshots")

# kinds Velero never restores, and those that the target cluster makes on its own
NOT_RESTORED = frozenset({"events", "events.events.k8s.io", "nodes"})


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

    def completed_snapshots(self) -> dict[str, str]:
        """PV name -> EBS snapshot id, for the snapshots that completed."""
        return {snapshot_pv_name(s): s["status"]["providerSnapshotID"] for s in self.snapshots
                if (s.get("status") or {}).get("phase") == "Completed" and s["status"].get("providerSnapshotID")}


def storage_location(velero: Any, backup: dict[str, Any], default: str) -> dict[str, Any]:
    name = (backup.get("spec") or {}).get("storageLocation") or default
    location = velero.get("backupstoragelocations", name)
    if location is None:
        raise OpsbookError(f"backup {backup['metadata']['name']} names storage location {name}, which does not "
                           f"exist in namespace {velero.namespace}")
    return location


def read_backup_store(s3: Any, location: dict[str, Any], name: str) -> tuple[StoredBackup, list[dict[str, Any]]]:
    """Read a backup's files from its storage location; rows say what is there and sound."""
    storage = (location.get("spec") or {}).get("objectStorage") or {}
    stored = StoredBackup(name, storage.get("bucket", ""), Layout(storage.get("prefix") or ""))
    layout, rows = stored.layout, []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=stored.bucket, Prefix=layout.backup_dir(name)):
        stored.keys += [o["Key"] for o in page.get("Contents", [])]
    files = layout.backup_files(name)
    for what in REQUIRED_FILES:
        key = files[what]
        rows.append(row(f"object store: {what}", key in stored.keys,
                        f"s3://{stored.bucket}/{key}" + ("" if key in stored.keys else " is missing")))

    def fetch(key: str) -> bytes | None:
        return s3.get_object(Bucket=stored.bucket, Key=key)["Body"].read() if key in stored.keys else None

    if (raw := fetch(files["metadata"])) is not None:
        stored.record = json.loads(raw)
        same = stored.record.get("metadata", {}).get("name") == name
        rows.append(row("object store: backup record", same,
                        f"velero-backup.json names {stored.record.get('metadata', {}).get('name')!r}, phase "
                        f"{(stored.record.get('status') or {}).get('phase')}"))
    if (raw := fetch(files["contents"])) is not None:
        stored.format_version, stored.items = read_tarball(raw)
        rows.append(row("object store: tarball", bool(stored.items) and bool(stored.format_version),
                        f"{len(stored.items)} items, format {stored.format_version or 'unknown'}"))
    if (raw := fetch(files["resource list"])) is not None:
        stored.resource_list = gunzip_json(raw) or {}
        listed = {(k, v) for k, values in stored.resource_list.items() for v in values}
        in_tar = {(f"{t.obj.get('apiVersion')}/{t.obj.get('kind')}",
                   f"{t.namespace}/{t.name}" if t.namespace else t.name) for t in stored.items}
        missing = sorted(f"{k} {v}" for k, v in listed - in_tar)
        rows.append(row("object store: resource list matches tarball", not missing and bool(listed),
                        f"{len(listed)} listed" + (f"; not in the tarball: {', '.join(missing[:5])}" if missing else "")))
    if (raw := fetch(files["volume snapshots"])) is not None:
        stored.snapshots = gunzip_json(raw) or []
    return stored, rows


def snapshot_rows(ec2: Any, stored: StoredBackup, status: dict[str, Any]) -> list[dict[str, Any]]:
    """The backup's EBS snapshots exist (owner self), are completed and carry its name."""
    rows = []
    completed = stored.completed_snapshots()
    want = status.get("volumeSnapshotsCompleted")
    rows.append(row("volume snapshots listed", want is None or len(completed) == want,
                    f"{len(completed)} completed in the snapshot list, status says {want}"))
    if not completed:
        return rows
    found: dict[str, dict[str, Any]] = {}
    ids = sorted(completed.values())
    for i in range(0, len(ids), 200):
        try:
            resp = ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=ids[i:i + 200])
        except Exception as exc:  # a missing snapshot makes the call fail as a whole
            if "NotFound" not in str(exc):
                raise
            resp = {"Snapshots": []}
            for snap_id in ids[i:i + 200]:
                try:
                    resp["Snapshots"] += ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=[snap_id])["Snapshots"]
                except Exception as inner:
                    if "NotFound" not in str(inner):
                        raise
        found.update({s["SnapshotId"]: s for s in resp["Snapshots"]})
    for pv, snap_id in sorted(completed.items()):
        snap = found.get(snap_id)
        if snap is None:
            rows.append(row(f"EBS snapshot of {pv}", False, f"{snap_id} does not exist in EC2"))
            continue
        tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
        ok = snap.get("State") == "completed" and tags.get("velero.io/backup") == stored.name
        rows.append(row(f"EBS snapshot of {pv}", ok, f"{snap_id} {snap.get('State')}, of {snap.get('VolumeId')}, "
                                                     f"tag velero.io/backup={tags.get('velero.io/backup')}"))
    return rows


# --- what a restore brought back --------------------------------------------------------------


def _group_version(item: TarItem) -> str:
    return str(item.obj.get("apiVersion") or "v1")


def restored_object_rows(api_client: Any, stored: StoredBackup, source_ns: str,
                         target_ns: str) -> list[dict[str, Any]]:
    """Every object the backup holds of the source namespace exists in the target namespace."""
    # a discovery cache of this call's own: the client's default, a file in /tmp named by the
    # server's host:port, is shared with whatever else listened there (and written by all at once)
    with tempfile.TemporaryDirectory(prefix="opsbook-discovery-") as cache:
        dyn = dynamic.DynamicClient(api_client, cache_file=os.path.join(cache, "discovery.json"))
        return _restored_rows(dyn, stored, source_ns, target_ns)


def _restored_rows(dyn: Any, stored: StoredBackup, source_ns: str, target_ns: str) -> list[dict[str, Any]]:
    rows = []
    for item in sorted((i for i in stored.items if i.namespace == source_ns), key=lambda i: (i.group_resource, i.name)):
        if item.group_resource in NOT_RESTORED:
            continue
        what = f"{item.obj.get('kind')}/{item.name}"
        try:
            res = dyn.resources.get(api_version=_group_version(item), kind=item.obj.get("kind"))
            res.get(name=item.name, namespace=target_ns)
            rows.append(row(f"restored {what}", True, f"in {target_ns}"))
        except ApiException as exc:
            rows.append(row(f"restored {what}", False, f"not in {target_ns} ({exc.status} {exc.reason})"))
        except Exception as exc:  # noqa: BLE001 - the kind itself is unknown to the cluster
            rows.append(row(f"restored {what}", False, f"cannot look it up: {exc}"))
    return rows


@dataclass
class RestoredVolume:
    claim: str
    pv: str
    volume_id: str
    snapshot_id: str


def restored_volume_rows(api_client: Any, ec2: Any, stored: StoredBackup, source_ns: str,
                         target_ns: str) -> tuple[list[dict[str, Any]], list[RestoredVolume]]:
    """Each restored claim is Bound to a new PV whose EBS volume was made from the backup's snapshots."""
    core = client.CoreV1Api(api_client)
    snapshots = stored.completed_snapshots()
    source_claims = {i.name: i.obj for i in stored.items
                     if i.group_resource == "persistentvolumeclaims" and i.namespace == source_ns}
    rows, volumes = [], []
    for claim_name in sorted(source_claims):
        check = f"volume of {claim_name}"
        source_pv = (source_claims[claim_name].get("spec") or {}).get("volumeName")
        try:
            claim = core.read_namespaced_persistent_volume_claim(claim_name, target_ns)
        except ApiException as exc:
            rows.append(row(check, False, f"claim not in {target_ns} ({exc.status})"))
            continue
        phase, pv_name = claim.status.phase if claim.status else None, claim.spec.volume_name
        if phase != "Bound" or not pv_name:
            rows.append(row(check, False, f"claim is {phase}, volume {pv_name or 'none'}"))
            continue
        if pv_name == source_pv:
            rows.append(row(check, False, f"bound to the source's own PV {pv_name}: not a restored volume"))
            continue
        pv = core.read_persistent_volume(pv_name)
        volume_id = pv_volume_id(pv)
        want = snapshots.get(source_pv or "")
        if not volume_id:
            rows.append(row(check, False, f"PV {pv_name} has no EBS volume"))
            continue
        try:
            vol = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        except Exception as exc:  # noqa: BLE001 - a volume that cannot be read is a failing row, not a crash
            rows.append(row(check, False, f"EBS volume {volume_id} of PV {pv_name}: {exc}"))
            continue
        made_from = vol.get("SnapshotId") or ""
        ok = bool(want) and made_from == want
        rows.append(row(check, ok, f"Bound to {pv_name}, volume {volume_id} from {made_from or 'no snapshot'}"
                                   + ("" if ok else f" (the backup's snapshot of {source_pv} is {want or 'missing'})")))
        volumes.append(RestoredVolume(claim_name, pv_name, volume_id, made_from))
    if not source_claims:
        rows.append(row("volumes", True, f"the backup holds no claims of {source_ns}"))
    return rows, volumes


def _pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])) if pod.status else False


def wait_pods_ready(api_client: Any, namespace: str, statefulsets: list[str], timeout_s: float,
                    poll_s: float = 1.0) -> list[dict[str, Any]]:
    """Wait until every StatefulSet's pods are Ready (replicas of them); a row per StatefulSet."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout_s
    pending = list(statefulsets)
    rows: dict[str, dict[str, Any]] = {}
    while True:
        for name in list(pending):
            try:
                sts = apps.read_namespaced_stateful_set(name, namespace)
            except ApiException as exc:
                rows[name] = row(f"pods of {name} Ready", False, f"StatefulSet not in {namespace} ({exc.status})")
                pending.remove(name)
                continue
            selector = ",".join(f"{k}={v}" for k, v in sorted((sts.spec.selector.match_labels or {}).items()))
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            ready = sorted(p.metadata.name for p in pods if _pod_ready(p))
            want = sts.spec.replicas or 0
            rows[name] = row(f"pods of {name} Ready", len(ready) >= want,
                             f"{len(ready)}/{want} Ready" + (f": {', '.join(ready)}" if ready else ""))
            if len(ready) >= want:
                pending.remove(name)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    for name in pending:
        rows[name]["detail"] += f" after {timeout_s:.0f}s (timeout)"
    return [rows[n] for n in statefulsets]
