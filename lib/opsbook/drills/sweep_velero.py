"""The sweeper's finders for what a Velero drill leaves behind, found by ownership labels/tags only.

Registered in `opsbook.drills.sweeper.FINDERS`, in the order the plan deletes them:

- `velero-restore`, `velero-backup`: the drill's Restores and Backups (labels
  `opsbook.io/run-id`, `opsbook.io/purpose=drill`); a Backup goes through a
  DeleteBackupRequest, so Velero removes its files and snapshots (and its Restores);
- `k8s-namespace`: drill namespaces (same labels), deleted with the restored PVs and EBS
  volumes of their claims. A namespace an object's finalizer holds Terminating stays
  listed (it keeps its labels), and each sweep deletes it again; it comes after the
  Backups so that one held namespace does not keep them;
- `ebs-volume`, `ebs-snapshot`: EBS volumes and snapshots carrying the ownership tags
  (Velero copies a Backup's labels onto its snapshots, and the AWS plugin a snapshot's
  tags onto the volumes made from it), for what outlived the above.

Deleting is idempotent: an item already gone counts as done, so the plan can run whole
even when deleting a namespace took its volumes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from kubernetes import client
from kubernetes.client.rest import ApiException

from opsbook.clients import error_code
from opsbook.drills import velero_teardown
from opsbook.drills.framework import PURPOSE
from opsbook.drills.sweeper import FINDERS, Leftover, created_at
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
                            created_at(labels, _when(obj["metadata"].get("creationTimestamp"))), phase,
                            delete=delete, still_owned=still_owned))
    return out


@FINDERS.register("velero-restore")
def drill_restores(env: Any) -> list[Leftover]:
    return _velero_leftovers(env, "restores", "velero-restore")


@FINDERS.register("velero-backup")
def drill_backups(env: Any) -> list[Leftover]:
    return _velero_leftovers(env, "backups", "velero-backup")


@FINDERS.register("k8s-namespace")
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
            "k8s-namespace", name, labels[RUN_ID_TAG], created_at(labels, ns.metadata.creation_timestamp),
            (ns.status.phase if ns.status else None) or "Active",
            delete=lambda name=name, run=labels[RUN_ID_TAG]: velero_teardown.delete_drill_namespace(
                env.kube, ec2, name, env.params.velero.timeout_minutes * 60, env.params.velero.poll_seconds, run),
            still_owned=lambda name=name: (lambda got: got is None or is_owned(_colon(got), PURPOSE))(
                _namespace_labels(core, name))))
    return out


# --- EBS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EbsKind:
    """How one kind of EBS resource is listed, re-read and deleted through the EC2 API."""

    kind: str
    describe: str  # describe_volumes / describe_snapshots
    items: str  # "Volumes" / "Snapshots"
    id_key: str  # "VolumeId" / "SnapshotId"
    created_key: str  # "CreateTime" / "StartTime"
    delete: str  # delete_volume / delete_snapshot
    owner_filter: dict[str, Any]  # describe_snapshots needs OwnerIds=['self'], volumes nothing


VOLUMES = _EbsKind("ebs-volume", "describe_volumes", "Volumes", "VolumeId", "CreateTime", "delete_volume", {})
SNAPSHOTS = _EbsKind("ebs-snapshot", "describe_snapshots", "Snapshots", "SnapshotId", "StartTime",
                     "delete_snapshot", {"OwnerIds": ["self"]})


def _tags_now(ec2: Any, spec: _EbsKind, resource_id: str) -> dict[str, str] | None:
    """The resource's tags as they are now; None once it is gone."""
    try:
        found = getattr(ec2, spec.describe)(**spec.owner_filter, **{f"{spec.id_key}s": [resource_id]})[spec.items]
    except ClientError as exc:
        if error_code(exc).endswith("NotFound"):
            return None
        raise
    return _tags(found[0].get("Tags")) if found else None


def _delete(ec2: Any, spec: _EbsKind, resource_id: str) -> None:
    try:
        getattr(ec2, spec.delete)(**{spec.id_key: resource_id})
    except ClientError as exc:
        if not error_code(exc).endswith("NotFound"):
            raise


def _ebs_leftovers(env: Any, spec: _EbsKind) -> list[Leftover]:
    """Tagged drill volumes or snapshots (either tag spelling: AWS tags or copied k8s labels)."""
    ec2 = env.aws("ec2")
    found: dict[str, Leftover] = {}
    for key in ("opsbook:purpose", "opsbook.io/purpose"):
        pages = ec2.get_paginator(spec.describe).paginate(
            **spec.owner_filter, Filters=[{"Name": f"tag:{key}", "Values": [PURPOSE]}])
        for page in pages:
            for item in page[spec.items]:
                rid, tags = item[spec.id_key], _tags(item.get("Tags"))
                if not is_owned(tags, PURPOSE) or rid in found:
                    continue
                found[rid] = Leftover(
                    spec.kind, rid, tags[RUN_ID_TAG], created_at(tags, item.get(spec.created_key)), item["State"],
                    delete=lambda rid=rid: _delete(ec2, spec, rid),
                    still_owned=lambda rid=rid: (lambda t: t is None or is_owned(t, PURPOSE))(
                        _tags_now(ec2, spec, rid)))
    return list(found.values())


@FINDERS.register("ebs-volume")
def drill_volumes(env: Any) -> list[Leftover]:
    return _ebs_leftovers(env, VOLUMES)


@FINDERS.register("ebs-snapshot")
def drill_snapshots(env: Any) -> list[Leftover]:
    return _ebs_leftovers(env, SNAPSHOTS)
