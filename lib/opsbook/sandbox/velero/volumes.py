"""EBS volumes: the AWS plugin's snapshots and restores, and the EBS CSI driver for restored PVs.

- Snapshots are tagged as Velero does: the Backup's labels, `velero.io/backup`,
  `velero.io/pv`, and the volume's cluster tags; a volume restored from a snapshot
  carries the snapshot's tags (the AWS plugin copies them, leaving out `aws:` ones).
- Fault switch: a PVC or PV annotated `sandbox.opsbook.io/fail-snapshot` (its value is
  the error text) fails its snapshot, so the backup ends PartiallyFailed.
- The CSI part acts only on PVs a restore made (label `velero.io/restore-name`): when
  the claim of such a PV is gone, or the PV is deleted, its reclaim policy `Delete`
  deletes the EBS volume and then the PV (its finalizers removed), as the external
  provisioner does.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from opsbook.sandbox.velero.context import Ctx

log = logging.getLogger(__name__)
EBS_CSI = "ebs.csi.aws.com"
FAULT_ANNOTATION = "sandbox.opsbook.io/fail-snapshot"
RESTORE_LABEL = "velero.io/restore-name"
BACKUP_LABEL = "velero.io/backup-name"


class SnapshotError(Exception):
    pass


def volume_id(pv: dict[str, Any]) -> str | None:
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


def snapshot(ctx: Ctx, pv: dict[str, Any], pvc: dict[str, Any] | None, backup: dict[str, Any],
             location: str) -> dict[str, Any]:
    """Snapshot a PV's EBS volume; the record Velero keeps in `<backup>-volumesnapshots.json.gz`."""
    meta = backup["metadata"]
    pv_name = pv["metadata"]["name"]
    vol = volume_id(pv)
    record: dict[str, Any] = {
        "spec": {"backupName": meta["name"], "backupUID": meta.get("uid", ""), "location": location,
                 "PersistentVolumeName": pv_name, "providerVolumeID": vol or "", "volumeType": ""},
        "status": {"phase": "New"},
    }
    for source in (pvc, pv):
        fault = ((source or {}).get("metadata", {}).get("annotations") or {}).get(FAULT_ANNOTATION)
        if fault is not None:
            record["status"]["phase"] = "Failed"
            raise SnapshotError(f"error taking snapshot of volume {vol}: {fault or 'injected failure'}")
    if not vol:
        raise SnapshotError(f"PersistentVolume {pv_name} has no EBS volume to snapshot")
    try:
        described = ctx.ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]
    except Exception as exc:  # noqa: BLE001 - any AWS refusal fails this snapshot only
        raise SnapshotError(f"error getting volume info for {vol}: {exc}") from None
    record["spec"].update(volumeType=described.get("VolumeType", ""), volumeAZ=described["AvailabilityZone"])
    if described.get("Iops"):
        record["spec"]["volumeIOPS"] = described["Iops"]
    tags = dict(meta.get("labels") or {})
    tags.update({"velero.io/backup": meta["name"], "velero.io/pv": pv_name})
    tags.update({t["Key"]: t["Value"] for t in described.get("Tags", []) if t["Key"].startswith("kubernetes.io/cluster/")})
    try:
        snap = ctx.ec2.create_snapshot(
            VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot",
                                              "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    except Exception as exc:  # noqa: BLE001 - as above: any AWS refusal fails this snapshot only
        raise SnapshotError(f"error creating snapshot of volume {vol}: {exc}") from None
    record["status"] = {"providerSnapshotID": snap["SnapshotId"], "phase": "Completed"}
    return record


def volume_from_snapshot(ctx: Ctx, record: dict[str, Any]) -> str:
    """A new EBS volume from a backup's snapshot, in the snapshot's AZ, with its tags."""
    snap_id = record["status"]["providerSnapshotID"]
    snap = ctx.ec2.describe_snapshots(SnapshotIds=[snap_id], OwnerIds=["self"])["Snapshots"][0]
    tags = [t for t in snap.get("Tags", []) if not t["Key"].startswith("aws:")]
    kwargs: dict[str, Any] = {"SnapshotId": snap_id, "AvailabilityZone": record["spec"].get("volumeAZ"),
                              "VolumeType": record["spec"].get("volumeType") or "gp3"}
    if record["spec"].get("volumeIOPS") and kwargs["VolumeType"] in ("io1", "io2", "gp3"):
        kwargs["Iops"] = record["spec"]["volumeIOPS"]
    if tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "volume", "Tags": tags}]
    return ctx.ec2.create_volume(**kwargs)["VolumeId"]


def delete_snapshot(ctx: Ctx, snapshot_id: str) -> None:
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
