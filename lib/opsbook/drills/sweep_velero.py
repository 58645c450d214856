"""The sweeper's finders for what a Velero drill leaves behind, found by ownership labels/tags only.

Registered into `opsbook.drills.sweeper` (importing this module does it), in the order
the plan deletes them:

- `k8s-namespace`: drill namespaces (labels `opsbook.io/run-id`, `opsbook.io/purpose=drill`),
  deleted with the restored PVs and EBS volumes of their claims;
- `velero-restore`, `velero-backup`: the drill's Restores and Backups (same labels); a
  Backup goes through a DeleteBackupRequest, so Velero removes its files and snapshots;
- `ebs-volume`, `ebs-snapshot`: EBS volumes and snapshots carrying the ownership tags
  (Velero copies a Backup's labels onto its snapshots, and the AWS plugin a snapshot's
  tags onto the volumes made from it), for what outlived the above.

Deleting is idempotent: an item already gone counts as done, so the plan can run whole
even when deleting a namespace took its volumes with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from kubernetes import client
from kubernetes.client.rest import ApiException

from opsbook.clients import error_code
from opsbook.drills import velero_teardown
from opsbook.drills.framework import PURPOSE
from opsbook.drills.sweeper import Leftover, _created, finder
from opsbook.drills.velero_api import VeleroApi, parse_time
from opsbook.guard import RUN_ID_TAG, is_owned

OWNED_SELECTOR = f"opsbook.io/purpose={PURPOSE}"


def _colon(labels: dict[str, str] | None) -> dict[str, str]:
    """Labels/tags with opsbook's keys in their tag form (`opsbook:run-id`)."""
    return {k.replace("opsbook.io/", "opsbook:"): v for k, v in (labels or {}).items()}


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return _colon({t["Key"]: t["Value"] for t in items or []})


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_time(value) if isinstance(value, str) else None


# --- Kubernetes --------------------------------------------------------------------------------


def _namespace_labels(core: Any, name: str) -> dict[str, str] | None:
    try:
        return core.read_namespace(name).metadata.labels or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@finder("k8s-namespace")
def drill_namespaces(env: Any) -> list[Leftover]:
    core = client.CoreV1Api(env.kube)
    ec2 = env.aws("ec2")
    out = []
    for ns in core.list_namespace(label_selector=OWNED_SELECTOR).items:
        labels = _colon(ns.metadata.labels)
        if not is_owned(labels, PURPOSE):
            continue
        name = ns.metadata.name
        out.append(Leftover(
            "k8s-namespace", name, labels[RUN_ID_TAG], _created(labels, ns.metadata.creation_timestamp),
            (ns.status.phase if ns.status else None) or "Active",
            delete=lambda name=name, run=labels[RUN_ID_TAG]: velero_teardown.delete_drill_namespace(
                env.kube, ec2, name, env.params.velero.timeout_minutes * 60, env.params.velero.poll_seconds, run),
            still_owned=lambda name=name: (lambda got: got is None or is_owned(_colon(got), PURPOSE))(
                _namespace_labels(core, name))))
    return out


def _velero_leftovers(env: Any, plural: str, kind: str) -> list[Leftover]:
    velero = VeleroApi(env.kube, env.params.velero.namespace)
    timeout = env.params.velero.timeout_minutes * 60
    out = []
    for obj in velero.list(plural, label_selector=OWNED_SELECTOR):
        labels = _colon(obj["metadata"].get("labels"))
        if not is_owned(labels, PURPOSE):
            continue
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase") or "New"
        if plural == "backups":
            delete = lambda name=name, run=labels[RUN_ID_TAG]: velero_teardown.delete_backup(  # noqa: E731
                velero, name, timeout, run)
        else:
            delete = lambda name=name: velero.delete(plural, name)  # noqa: E731

        def still_owned(name: str = name) -> bool:
            got = velero.get(plural, name)
            return got is None or is_owned(_colon(got["metadata"].get("labels")), PURPOSE)

        out.append(Leftover(kind, name, labels[RUN_ID_TAG],
                            _created(labels, _when(obj["metadata"].get("creationTimestamp"))), phase,
                            delete=delete, still_owned=still_owned))
    return out


@finder("velero-restore")
def drill_restores(env: Any) -> list[Leftover]:
    return _velero_leftovers(env, "restores", "velero-restore")


@finder("velero-backup")
def drill_backups(env: Any) -> list[Leftover]:
    return _velero_leftovers(env, "backups", "velero-backup")


# --- EBS ---------------------------------------------------------------------------------------


def _volume_tags(ec2: Any, volume_id: str) -> dict[str, str] | None:
    try:
        return _tags(ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0].get("Tags"))
    except ClientError as exc:
        if error_code(exc).endswith("NotFound"):
            return None
        raise


def _delete_volume(ec2: Any, volume_id: str) -> None:
    try:
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as exc:
        if not error_code(exc).endswith("NotFound"):
            raise


@finder("ebs-volume")
def drill_volumes(env: Any) -> list[Leftover]:
    ec2 = env.aws("ec2")
    out = []
    for key in ("opsbook:purpose", "opsbook.io/purpose"):
        pages = ec2.get_paginator("describe_volumes").paginate(Filters=[{"Name": f"tag:{key}", "Values": [PURPOSE]}])
        for page in pages:
            for vol in page["Volumes"]:
                tags = _tags(vol.get("Tags"))
                if not is_owned(tags, PURPOSE) or any(v.name == vol["VolumeId"] for v in out):
                    continue
                vid = vol["VolumeId"]
                out.append(Leftover(
                    "ebs-volume", vid, tags[RUN_ID_TAG], _created(tags, vol.get("CreateTime")), vol["State"],
                    delete=lambda vid=vid: _delete_volume(ec2, vid),
                    still_owned=lambda vid=vid: (lambda t: t is None or is_owned(t, PURPOSE))(_volume_tags(ec2, vid))))
    return out


def _snapshot_tags(ec2: Any, snapshot_id: str) -> dict[str, str] | None:
    try:
        snaps = ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if error_code(exc).endswith("NotFound"):
            return None
        raise
    return _tags(snaps[0].get("Tags")) if snaps else None


def _delete_snapshot(ec2: Any, snapshot_id: str) -> None:
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as exc:
        if not error_code(exc).endswith("NotFound"):
            raise


@finder("ebs-snapshot")
def drill_snapshots(env: Any) -> list[Leftover]:
    ec2 = env.aws("ec2")
    out = []
    for key in ("opsbook:purpose", "opsbook.io/purpose"):
        pages = ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{key}", "Values": [PURPOSE]}])
        for page in pages:
            for snap in page["Snapshots"]:
                tags = _tags(snap.get("Tags"))
                if not is_owned(tags, PURPOSE) or any(s.name == snap["SnapshotId"] for s in out):
                    continue
                sid = snap["SnapshotId"]
                out.append(Leftover(
                    "ebs-snapshot", sid, tags[RUN_ID_TAG], _created(tags, snap.get("StartTime")), snap["State"],
                    delete=lambda sid=sid: _delete_snapshot(ec2, sid),
                    still_owned=lambda sid=sid: (lambda t: t is None or is_owned(t, PURPOSE))(_snapshot_tags(ec2, sid))))
    return out
