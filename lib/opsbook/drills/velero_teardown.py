"""Undoing a Velero drill: its namespace with the volumes restored into it, and its Backup.

Both are safe to call again and after a partial run: what is already gone is skipped.

- `delete_drill_namespace`: notes the PVs bound to the namespace's claims and their EBS
  volumes, deletes the namespace, waits for it to go; then deletes those PVs if they
  outlived it (reclaim policy Retain) and those volumes if the CSI driver did not
  (waiting for them to be detached first). Only PVs a Velero restore made are touched.
  A namespace stays Terminating while an object in it keeps a finalizer whose controller
  has not let go; after the timeout the error names those objects and finalizers (from
  the namespace's `NamespaceFinalizersRemaining`/`NamespaceContentRemaining` conditions,
  kubernetes pkg/controller/namespace/deletion, and from the objects themselves), and the
  sweeper (`opsbook cleanup`), which finds the namespace by its labels, tries again.
- `delete_backup`: a DeleteBackupRequest, as `velero backup delete` makes; Velero then
  deletes the backup's files in the object store, its snapshots and its restores, and
  then the request itself (pkg/controller/backup_deletion_controller.go): a request that
  vanished while the Backup is gone means done.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from opsbook.drills.velero_api import (
    DELETE_TERMINAL,
    VeleroApi,
    delete_request_body,
    fresh_discovery,
    pv_volume_id,
)
from opsbook.errors import GuardError, OpsbookError

RESTORE_LABEL = "velero.io/restore-name"
RUN_ID_LABEL = "opsbook.io/run-id"
BACKUP_NOT_FOUND = "backup not found"  # a request for a backup another request already deleted


def namespace_volumes(core: Any, namespace: str) -> dict[str, str | None]:
    """PV name -> EBS volume id of every restored PV whose claim is (or was) in the namespace."""
    out: dict[str, str | None] = {}
    for pv in core.list_persistent_volume(label_selector=RESTORE_LABEL).items:
        if pv.spec.claim_ref is not None and pv.spec.claim_ref.namespace == namespace:
            out[pv.metadata.name] = pv_volume_id(pv)
    return out


def _wait(predicate: Any, timeout_s: float, poll_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def _namespace_gone(core: Any, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
        return False
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise


def _volume_state(ec2: Any, volume_id: str) -> str | None:
    try:
        return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"]
    except Exception as exc:
        if "NotFound" in str(exc):
            return None
        raise


def _check_run(labels: dict[str, str] | None, run_id: str | None, what: str) -> None:
    if run_id is not None and (labels or {}).get(RUN_ID_LABEL) != run_id:
        raise GuardError(f"{what} is not this run's (label {RUN_ID_LABEL}={(labels or {}).get(RUN_ID_LABEL)!r}, "
                         f"run {run_id!r}); not deleted")


def delete_drill_namespace(api_client: Any, ec2: Any, namespace: str, timeout_s: float = 300,
                           poll_s: float = 1.0, run_id: str | None = None) -> dict[str, Any]:
    """Delete a drill namespace, then any PV and EBS volume of it that outlived it; what was done.

    With `run_id`, a namespace not labelled with that run id is refused (GuardError).
    """
    core = client.CoreV1Api(api_client)
    _check_namespace_run(core, namespace, run_id)
    volumes = namespace_volumes(core, namespace)
    _delete_namespace(core, namespace, timeout_s, poll_s)
    return {"namespace": namespace, "pvs": _delete_restored_pvs(core, list(volumes)),
            "volumes": _delete_volumes(ec2, namespace, sorted({v for v in volumes.values() if v}), timeout_s, poll_s)}


def _check_namespace_run(core: Any, namespace: str, run_id: str | None) -> None:
    """GuardError when the namespace exists and is not this run's."""
    try:
        _check_run(core.read_namespace(namespace).metadata.labels, run_id, f"namespace {namespace}")
    except ApiException as exc:
        if exc.status != 404:
            raise


def _delete_namespace(core: Any, namespace: str, timeout_s: float, poll_s: float) -> None:
    """Delete the namespace (if still there; 409: already Terminating) and wait until it is gone."""
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise
    if not _wait(lambda: _namespace_gone(core, namespace), timeout_s, poll_s):
        held = namespace_holders(core.api_client, namespace)
        raise OpsbookError(f"namespace {namespace} is still Terminating after {timeout_s:.0f}s: "
                           + ("; ".join(held) or "nothing in it says why"),
                           remedy="the controller that owns those finalizers must let go (see that it runs); "
                                  "`opsbook cleanup` deletes the namespace again and then its volumes")


def _conditions(core: Any, namespace: str) -> list[str]:
    """The namespace controller's reasons it cannot finish, from the namespace's own conditions."""
    try:
        status = core.read_namespace(namespace).status
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return [c.message for c in (status.conditions if status else None) or []
            if c.status == "True" and c.type in ("NamespaceFinalizersRemaining", "NamespaceContentRemaining")
            and c.message]


def namespace_holders(api_client: Any, namespace: str) -> list[str]:
    """What keeps a namespace from going: its conditions, then each object still in it with finalizers."""
    held = _conditions(client.CoreV1Api(api_client), namespace)
    with fresh_discovery(api_client) as dyn:
        return held + _finalized_objects(dyn, namespace)


def _finalized_objects(dyn: Any, namespace: str) -> list[str]:
    held: list[str] = []
    for res in dyn.resources.search():
        if (not getattr(res, "namespaced", False) or res.kind.endswith("List") or "/" in (res.name or "")
                or "list" not in (res.verbs or [])):
            continue
        try:
            items = res.get(namespace=namespace).to_dict().get("items") or []
        except ApiException:
            continue  # a kind that cannot be listed here cannot be named either
        for obj in items:
            finalizers = (obj.get("metadata") or {}).get("finalizers") or []
            if finalizers:
                held.append(f"{res.kind}/{obj['metadata']['name']} has finalizers {', '.join(finalizers)}")
    return held


def _delete_restored_pvs(core: Any, pv_names: list[str]) -> list[str]:
    """Those of the PVs that outlived their namespace and that a restore made; the ones deleted."""
    deleted = []
    for pv_name in pv_names:
        try:
            pv = core.read_persistent_volume(pv_name)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        if (pv.metadata.labels or {}).get(RESTORE_LABEL) is None:
            continue  # not made by a restore: never ours to delete
        core.delete_persistent_volume(pv_name)
        deleted.append(pv_name)
    return deleted


def _delete_volumes(ec2: Any, namespace: str, volume_ids: list[str], timeout_s: float, poll_s: float) -> list[str]:
    """The EBS volumes the CSI driver did not delete, once detached; the ones deleted."""
    deleted = []
    for volume_id in volume_ids:
        # the CSI driver deletes a Delete-policy volume itself; give it a moment first
        _wait(lambda v=volume_id: _volume_state(ec2, v) in (None, "available"), timeout_s, poll_s)
        state = _volume_state(ec2, volume_id)
        if state is None:
            continue
        if state != "available":
            raise OpsbookError(f"EBS volume {volume_id} of namespace {namespace} is still {state} after "
                               f"{timeout_s:.0f}s", remedy="detach it, then run `opsbook cleanup`")
        try:
            ec2.delete_volume(VolumeId=volume_id)
            deleted.append(volume_id)
        except Exception as exc:
            if "NotFound" not in str(exc):
                raise
    return deleted


def delete_backup(velero: VeleroApi, name: str, timeout_s: float = 300, run_id: str | None = None) -> dict[str, Any]:
    """Delete a Backup the way Velero does (a DeleteBackupRequest), and wait until it is done.

    With `run_id`, a backup not labelled with that run id is refused (GuardError).
    """
    backup = velero.get("backups", name)
    if backup is None:
        return {"backup": name, "deleted": False, "detail": "already gone"}
    _check_run(backup["metadata"].get("labels"), run_id, f"backup {name}")
    request = velero.create("deletebackuprequests", delete_request_body(backup))
    request_name = request["metadata"]["name"]
    done = velero.wait("deletebackuprequests", request_name, DELETE_TERMINAL, timeout_s, done_key="", gone_ok=True)
    errors = ((done or {}).get("status") or {}).get("errors") or []
    # a request that vanished was done (or replaced by another request for the backup, still at work)
    gone = _wait(lambda: velero.get("backups", name) is None, timeout_s if done is None else 0, 1.0)
    if not gone or (errors and errors != [BACKUP_NOT_FOUND]):
        why = "; ".join(errors) or f"request {request_name} is gone but the Backup is still there"
        raise OpsbookError(f"Velero could not delete backup {name}: {why}",
                           remedy="fix what those errors name (often the storage location's access), then run "
                                  "`opsbook cleanup` to delete it again")
    how = "processed and removed by Velero" if done is None else f"processed ({'; '.join(errors) or 'no errors'})"
    return {"backup": name, "deleted": True, "detail": f"DeleteBackupRequest {request_name} {how}"}
