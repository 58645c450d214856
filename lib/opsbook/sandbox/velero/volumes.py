"""EBS volumes: the AWS plugin's snapshots and restores, and the EBS CSI driver for restored PVs.

Taking a snapshot follows Velero's `takePVSnapshot` (pkg/backup/item_backupper.go @v1.18.1)
and velero-plugin-for-aws's `volume_snapshotter.go` (v1.14):

- a PV the plugin cannot name an EBS volume for (`GetVolumeID`: `spec.csi` of driver
  `ebs.csi.aws.com`, or `spec.awsElasticBlockStore`) is skipped, "no applicable
  volumesnapshotter found", and the backup goes on without its data; so is every PV of a
  backup with `snapshotVolumes: false`;
- the zone comes from the PV's zone labels, else its node affinity; `GetVolumeInfo` reads
  the volume type and, for io1/io2 only, its IOPS (else 0);
- the snapshot is tagged with the Backup's labels, `velero.io/backup`, `velero.io/pv`, and
  every tag of the volume whose key Velero did not set (`getTags`);
- the record is Completed as soon as CreateSnapshot returns: nobody waits for EBS, and
  the snapshot stays `pending` for a while (`pending.py`);
- a volume made from a snapshot gets all the snapshot's tags and its `Encrypted`, and
  IOPS only for io1/io2 (`CreateVolumeFromSnapshot`).

Fault switches on a PVC or its PV (annotation values):

- `sandbox.opsbook.io/fail-snapshot: <error text>`: CreateSnapshot fails, the record is
  Failed and the backup ends PartiallyFailed;
- `sandbox.opsbook.io/snapshot-pending-seconds: <n>`: this volume's snapshot stays pending
  n seconds after the backup completes (default: params `sandbox.snapshot_pending_seconds`);
- `sandbox.opsbook.io/snapshot-error: <any>`: the snapshot ends in EBS state `error`
  instead of `completed` (the Backup still says Completed, as Velero's would).

The CSI part acts only on PVs a restore made (label `velero.io/restore-name`): when the
claim of such a PV is gone, or the PV is deleted, its reclaim policy `Delete` deletes the
EBS volume and then the PV (its finalizers removed), as the external provisioner does.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from opsbook.formats.velero import (
    SKIPPED_BY_POLICY,
    SKIPPED_NO_SNAPSHOTTER,
    SNAPSHOT_COMPLETED,
    SNAPSHOT_FAILED,
)
from opsbook.sandbox.velero.context import Ctx

log = logging.getLogger(__name__)
EBS_CSI = "ebs.csi.aws.com"
FAULT_ANNOTATION = "sandbox.opsbook.io/fail-snapshot"
PENDING_ANNOTATION = "sandbox.opsbook.io/snapshot-pending-seconds"
ERROR_ANNOTATION = "sandbox.opsbook.io/snapshot-error"
RESTORE_LABEL = "velero.io/restore-name"
BACKUP_LABEL = "velero.io/backup-name"
IOPS_VOLUME_TYPES = ("io1", "io2")  # the plugin's iopsVolumeTypes
# item_backupper.go: zone labels first, then these node-affinity keys
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
ZONE_AFFINITY_KEYS = ("topology.ebs.csi.aws.com/zone", *ZONE_LABELS)


class SnapshotError(Exception):
    """Velero could not snapshot the volume (an error of the backup); `record` is the Failed record, if any."""

    def __init__(self, message: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.record = record


class Skipped(Exception):  # noqa: N818 - what Velero's SkippedPVTracker records, not a failure
    """Velero did not snapshot the volume; the message is its skipped reason."""


@dataclass
class Snapshot:
    """A snapshot taken for a backup: Velero's record, and how its EBS state goes on."""

    record: dict[str, Any]
    owner: str  # the account moto keeps it under
    pending_seconds: float | None  # None: the params default
    ends: str  # "completed" or "error"


def volume_id(pv: dict[str, Any]) -> str | None:
    """The plugin's GetVolumeID: the EBS volume of a PV, or None when no snapshotter takes it."""
    spec = pv.get("spec") or {}
    csi = spec.get("csi") or {}
    if csi.get("driver") == EBS_CSI and csi.get("volumeHandle"):
        return csi["volumeHandle"]
    ebs = spec.get("awsElasticBlockStore") or {}
    if ebs.get("volumeID"):
        return ebs["volumeID"].rsplit("/", 1)[-1]  # aws://eu-central-1a/vol-...
    return None


def set_volume_id(pv: dict[str, Any], new_id: str) -> None:
    spec = pv["spec"]
    if (spec.get("csi") or {}).get("driver") == EBS_CSI:
        spec["csi"]["volumeHandle"] = new_id
    elif spec.get("awsElasticBlockStore"):
        ebs = spec["awsElasticBlockStore"]
        ebs["volumeID"] = ebs["volumeID"].rsplit("/", 1)[0] + "/" + new_id if "/" in ebs["volumeID"] else new_id


def pv_zone(pv: dict[str, Any]) -> str:
    labels = (pv.get("metadata") or {}).get("labels") or {}
    for key in ZONE_LABELS:
        if labels.get(key):
            return labels[key]
    affinity = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
    for term in affinity.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") in ZONE_AFFINITY_KEYS and expr.get("operator") == "In" and expr.get("values"):
                return expr["values"][0]
    return ""


def _annotation(sources: tuple[dict[str, Any] | None, ...], key: str) -> str | None:
    for source in sources:
        value = (((source or {}).get("metadata") or {}).get("annotations") or {}).get(key)
        if value is not None:
            return value
    return None


def snapshot(ctx: Ctx, pv: dict[str, Any], pvc: dict[str, Any] | None, backup: dict[str, Any],
             location: str) -> Snapshot:
    """Snapshot a PV's EBS volume as Velero does; Skipped, or SnapshotError (with a Failed record attached)."""
    meta = backup["metadata"]
    pv_name = pv["metadata"]["name"]
    if (backup.get("spec") or {}).get("snapshotVolumes") is False:
        raise Skipped(SKIPPED_BY_POLICY)
    vol = volume_id(pv)
    if not vol:
        raise Skipped(SKIPPED_NO_SNAPSHOTTER)
    try:
        described = ctx.ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]
    except Exception as exc:  # noqa: BLE001 - any AWS refusal fails this snapshot only
        raise SnapshotError(f"error getting volume info: {exc}") from None
    volume_type = described.get("VolumeType", "")
    record: dict[str, Any] = {
        "spec": {"backupName": meta["name"], "backupUID": meta.get("uid", ""), "location": location,
                 "persistentVolumeName": pv_name, "providerVolumeID": vol, "volumeType": volume_type,
                 "volumeAZ": pv_zone(pv),
                 "volumeIOPS": (described.get("Iops") or 0) if volume_type in IOPS_VOLUME_TYPES else 0},
        "status": {"phase": SNAPSHOT_FAILED},
    }
    sources = (pvc, pv)
    fault = _annotation(sources, FAULT_ANNOTATION)
    if fault is not None:
        raise SnapshotError(f"error taking snapshot of volume: {fault or 'injected failure'}", record)
    velero_tags = {**(meta.get("labels") or {}), "velero.io/backup": meta["name"], "velero.io/pv": pv_name}
    tags = {**{t["Key"]: t["Value"] for t in described.get("Tags", [])}, **velero_tags}
    try:
        snap = ctx.ec2.create_snapshot(
            VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot",
                                              "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    except Exception as exc:  # noqa: BLE001 - as above: any AWS refusal fails this snapshot only
        raise SnapshotError(f"error taking snapshot of volume: {exc}", record) from None
    record["status"] = {"providerSnapshotID": snap["SnapshotId"], "phase": SNAPSHOT_COMPLETED}
    pending = _annotation(sources, PENDING_ANNOTATION)
    return Snapshot(record, snap["OwnerId"], float(pending) if pending is not None else None,
                    "error" if _annotation(sources, ERROR_ANNOTATION) is not None else "completed")


def volume_from_snapshot(ctx: Ctx, record: dict[str, Any]) -> str:
    """The plugin's CreateVolumeFromSnapshot: a new EBS volume in the record's AZ with the snapshot's tags."""
    snap_id = record["status"]["providerSnapshotID"]
    snap = ctx.ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    spec = record["spec"]
    kwargs: dict[str, Any] = {"SnapshotId": snap_id, "AvailabilityZone": spec.get("volumeAZ"),
                              "VolumeType": spec.get("volumeType"), "Encrypted": snap.get("Encrypted", False)}
    if spec.get("volumeType") in IOPS_VOLUME_TYPES and spec.get("volumeIOPS") is not None:
        kwargs["Iops"] = spec["volumeIOPS"]
    if snap.get("Tags"):
        kwargs["TagSpecifications"] = [{"ResourceType": "volume", "Tags": snap["Tags"]}]
    return ctx.ec2.create_volume(**kwargs)["VolumeId"]


def delete_snapshot(ctx: Ctx, snapshot_id: str) -> None:
    """The plugin's DeleteSnapshot: a snapshot already gone is not an error."""
    try:
        ctx.ec2.delete_snapshot(SnapshotId=snapshot_id)
    except Exception as exc:
        if "NotFound" not in str(exc):
            raise


def clone_name() -> str:
    """The name Velero gives a PV restored beside its still-existing original."""
    return f"velero-clone-{uuid.uuid4()}"


# --- the EBS CSI driver for restored PVs -------------------------------------------------------


def reclaim_deleted_pv(ctx: Ctx, pv: Any) -> str | None:
    """A restored PV is gone (its claim was deleted): with reclaim policy Delete, delete its EBS volume.

    The API server emulator plays the PV controller and the provisioner's finalizer; the
    volume itself is the CSI driver's, so it is deleted here. PVs not made by a restore
    (the estate's own) are left to the estate.
    """
    labels = pv.metadata.labels or {}
    if RESTORE_LABEL not in labels or pv.spec.persistent_volume_reclaim_policy != "Delete":
        return None
    vol = pv.spec.csi.volume_handle if pv.spec.csi else None
    if not vol:
        return None
    try:
        ctx.ec2.delete_volume(VolumeId=vol)
    except Exception as exc:  # noqa: BLE001 - the driver logs and retries later; a watch callback must not die
        if "NotFound" in str(exc):
            return None
        log.warning("csi: cannot delete volume %s of PV %s: %s", vol, pv.metadata.name, exc)
        return None
    return vol
