"""A Restore, as Velero v1.18's restore controller runs it, from the files in the object store.

It reads the backup's tarball and volume snapshot list back from S3, creates the items
(in Velero's priority order) in the namespaces `namespaceMapping` names, restores each
snapshotted PV from a new EBS volume made from its snapshot (under a `velero-clone-`
name when the original PV still exists), and loads the volume's data into the target
namespace's vhost/database. What comes next is the cluster's, as on a real one: the PV
controller binds each restored claim to its pre-bound volume in its own time, the
scheduler places the restored pods and the kubelets start them, the StatefulSet controller
adopts them (Velero drops owner references). Velero waits for none of it.

What Velero does to each item it creates (pkg/restore/restore.go @v1.18.1):

- `resetMetadataAndStatus`: generateName, selfLink, uid, resourceVersion, generation,
  creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds and ownerReferences
  go, and the status; labels, annotations, finalizers and managedFields stay; the labels
  `velero.io/backup-name` and `velero.io/restore-name` are added;
- once created, the object's managedFields are patched back to the backed-up ones
  ("restore the managedFields", a merge patch), so the restored object says who set what
  as the original did;
- pods (pkg/restore/actions/pod_action.go): no `spec.nodeName` (the scheduler places the
  pod again) and no `spec.priority`, and the service account's token volume
  (`<sa>-token-...`) and its mounts go;
- claims (pkg/restore/actions/pvc_action.go): the binding, provisioner and selected-node
  annotations go;
- services (pkg/restore/actions/service_action.go): the cluster IP and node ports go.

Velero records no Events for Backups or Restores (in v1.18.1 only the data mover and pod
volume micro-services record any, pkg/util/kube/event.go's users), and neither does this.

What Velero does not restore, and neither does this (`skip_reason`):

- the non-restorable resources: nodes, events, Velero's own backups and restores, ...
  (pkg/controller/restore_controller.go `nonRestorableResources`, which validation adds to
  `spec.excludedResources`);
- pods whose phase is Succeeded or Failed, and Jobs with a `status.completionTime`
  (pkg/restore/restore.go `isCompleted`: "<ns>/<name> is complete - skipping");
- mirror pods (annotation `kubernetes.io/config.mirror`);
- service-account token secrets named `<sa>-token-...` for a ServiceAccount of the
  namespace (pkg/restore/actions/secret_action.go); other token secrets are restored
  without their token, `ca.crt` and `kubernetes.io/service-account.uid`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException

from opsbook.formats.velero import gunzip_json, gzip_json, read_tarball, snapshot_pv_name
from opsbook.sandbox.velero import items as items_mod
from opsbook.sandbox.velero import volumes
from opsbook.sandbox.velero.context import Ctx, Log, ObjectStore, stamp

log = logging.getLogger(__name__)
RESTORABLE_PHASES = ("Completed", "PartiallyFailed")
# resetMetadata's keys (restore.go); managedFields and finalizers are not among them
STRIP_META = ("generateName", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")
# resetVolumeBindingInfo (restore.go) removes these from PVs and claims
BINDING_ANNOTATIONS = ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller")
# pvc_action.go removePVCAnnotations
CLAIM_ANNOTATIONS = (*BINDING_ANNOTATIONS, "volume.kubernetes.io/storage-provisioner",
                     "volume.beta.kubernetes.io/storage-provisioner", "volume.kubernetes.io/selected-node",
                     "velero.io/volume-snapshot-name", "velero.io/data-upload-name")
NON_RESTORABLE = (
    "nodes", "events", "events.events.k8s.io", "backups.velero.io", "restores.velero.io",
    "resticrepositories.velero.io", "csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io",
    "backuprepositories.velero.io",
)
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"


def skip_reason(t: Any, service_accounts: list[str]) -> str | None:
    """Why Velero leaves this backed-up item out of a restore (its log line), or None."""
    obj = t.obj
    status, meta = obj.get("status") or {}, obj.get("metadata") or {}
    if t.group_resource == "pods":
        if status.get("phase") in ("Succeeded", "Failed"):
            return f"{t.namespace}/{t.name} is complete - skipping"
        if (meta.get("annotations") or {}).get(MIRROR_POD_ANNOTATION):
            return "Not restoring pod because it's a mirror pod"
    elif t.group_resource == "jobs.batch" and status.get("completionTime"):
        return f"{t.namespace}/{t.name} is complete - skipping"
    elif t.group_resource == "secrets" and obj.get("type") == SA_TOKEN_TYPE and any(
            t.name.startswith(f"{sa}-token-") for sa in service_accounts):
        return "auto created service account token secret found - excluding this secret"
    return None


def validate(ctx: Ctx, restore: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    spec = restore.get("spec") or {}
    name = spec.get("backupName")
    if not name:
        return ["Either a backup or schedule must be specified as a source for the restore, but not both"], None
    backup = ctx.get("backups", name)
    if backup is None:
        return [f'Error retrieving backup: backups.velero.io "{name}" not found'], None
    phase = (backup.get("status") or {}).get("phase")
    if phase not in RESTORABLE_PHASES:
        return [f"backup {name} is not in a restorable phase ({phase}); Completed or PartiallyFailed expected"], None
    return [], backup


def _resource(ctx: Ctx, api_version: str, kind: str) -> Any:
    return ctx.dyn.resources.get(api_version=api_version, kind=kind)


def _clean(obj: dict[str, Any], backup: str, restore: str, namespace: str | None) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    for key in STRIP_META:
        meta.pop(key, None)
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), "velero.io/backup-name": backup, "velero.io/restore-name": restore}
    obj.pop("status", None)
    return obj


def run(ctx: Ctx, restore: dict[str, Any]) -> None:
    """Do the restore: validate it, create its items, write its files and final status."""
    name = restore["metadata"]["name"]
    spec = restore.get("spec") or {}
    loaded = _load(ctx, restore)
    if loaded is None:
        return
    backup_name, store, tar_items, snapshots = loaded
    chosen = _choose(tar_items, spec)
    total = len(chosen)
    ctx.status("restores", name, progress={"totalItems": total, "itemsRestored": 0})
    r = _Restore(
        ctx, name, backup_name, spec.get("namespaceMapping") or {}, spec.get("restorePVs") is not False,
        claims={(t.namespace, t.name): t.obj for t in chosen if t.group_resource == "persistentvolumeclaims"},
        snap_by_pv={snapshot_pv_name(s): s for s in snapshots if (s.get("status") or {}).get("providerSnapshotID")},
        rlog=Log(f"restore=velero/{name}"))
    for done, t in enumerate(chosen, start=1):
        r.item(t)
        if done % 10 == 0 or done == total:
            ctx.status("restores", name, progress={"totalItems": total, "itemsRestored": done})
    r.finish(store, chosen)


def _load(ctx: Ctx, restore: dict[str, Any]) -> tuple[str, ObjectStore, list[Any], list[dict[str, Any]]] | None:
    """Validate the restore and read its backup's items and snapshot list; None when it failed (status set)."""
    name = restore["metadata"]["name"]
    errors, backup = validate(ctx, restore)
    if errors or backup is None:
        ctx.status("restores", name, phase="FailedValidation", validationErrors=errors)
        return None
    excluded = list((restore.get("spec") or {}).get("excludedResources") or [])
    ctx.patch("restores", name, {  # validateAndComplete adds the non-restorable resources
        "spec": {"excludedResources": excluded + [r for r in NON_RESTORABLE if r not in excluded]},
        "status": {"phase": "InProgress", "startTimestamp": stamp()}})
    backup_name = backup["metadata"]["name"]
    location = ctx.get("backupstoragelocations", (backup.get("spec") or {}).get("storageLocation") or "default")
    if location is None:
        ctx.status("restores", name, phase="Failed", completionTimestamp=stamp(),
                   failureReason="the backup's storage location no longer exists")
        return None
    store = ObjectStore.of(ctx, location)
    try:
        _, tar_items = read_tarball(store.get(store.layout.backup_contents(backup_name)))
        snapshots = gunzip_json(store.get(store.layout.backup_volume_snapshots(backup_name))) or []
    except Exception as exc:  # noqa: BLE001 - unreadable backup data fails the restore
        ctx.status("restores", name, phase="Failed", completionTimestamp=stamp(),
                   failureReason=f"error downloading backup {backup_name}: {exc}")
        return None
    return backup_name, store, tar_items, snapshots


def _choose(tar_items: list[Any], spec: dict[str, Any]) -> list[Any]:
    """The items the restore's filters keep, PVs only with a chosen claim, in Velero's restore order."""
    included = spec.get("includedNamespaces") or ["*"]
    excluded_res = set(spec.get("excludedResources") or []) | set(NON_RESTORABLE)
    chosen = [t for t in tar_items
              if t.group_resource not in excluded_res
              and (t.namespace is None or included == ["*"] or t.namespace in included)
              and (t.group_resource != "namespaces" or included == ["*"] or t.name in included)]
    # PVs come along with the claims that use them
    claimed = {(t.obj.get("spec") or {}).get("volumeName") for t in chosen if t.group_resource == "persistentvolumeclaims"}
    chosen = [t for t in chosen if t.group_resource != "persistentvolumes" or t.name in claimed]
    chosen.sort(key=lambda t: items_mod.restore_order(t.group_resource))
    return chosen


@dataclass
class _Restore:
    """One restore's items being created, and what it found on the way."""

    ctx: Ctx
    name: str
    backup_name: str
    mapping: dict[str, str]
    restore_pvs: bool
    claims: dict[tuple[str | None, str], dict[str, Any]]
    snap_by_pv: dict[str, dict[str, Any]]
    rlog: Log
    renamed: dict[str, str] = field(default_factory=dict)  # original PV name -> restored PV name
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: set[tuple[str, str | None, str]] = field(default_factory=set)  # (group resource, namespace, name)

    def target(self, t: Any) -> str | None:
        return self.mapping.get(t.namespace, t.namespace) if t.namespace else None

    def item(self, t: Any) -> None:
        target_ns = self.target(t)
        service_accounts = self._service_accounts(t, target_ns)
        if (reason := skip_reason(t, service_accounts)) is not None:
            self.rlog.add("info", reason, resource=t.group_resource, namespace=target_ns or "", name=t.name)
            self.skipped.add((t.group_resource, t.namespace, t.name))
            return
        try:
            if t.group_resource == "namespaces":
                _namespace(self.ctx, self.mapping.get(t.name, t.name), t.obj, self.backup_name, self.name)
            elif t.group_resource == "persistentvolumes":
                self._volume(t)
            else:
                self._object(t, target_ns)
            self.rlog.add("info", "Restored item", resource=t.group_resource, namespace=target_ns or "", name=t.name)
        except Exception as exc:  # noqa: BLE001 - one item's failure is counted, the rest go on
            message = f"error restoring {t.group_resource}/{t.namespace or ''}/{t.name}: {exc}"
            self.failures.append(message)
            self.rlog.add("error", message)

    def _service_accounts(self, t: Any, target_ns: str | None) -> list[str]:
        """The ServiceAccounts the secret action looks at: those of the (target) namespace, for token secrets."""
        if t.group_resource != "secrets" or t.obj.get("type") != SA_TOKEN_TYPE or not target_ns:
            return []
        return [sa.metadata.name for sa in self.ctx.core.list_namespaced_service_account(target_ns).items]

    def _volume(self, t: Any) -> None:
        new_name = _pv(self.ctx, t.obj, self.snap_by_pv.get(t.name), self.claims, self.mapping, self.backup_name,
                       self.name, self.restore_pvs, self.rlog)
        if new_name:
            self.renamed[t.name] = new_name

    def _object(self, t: Any, target_ns: str | None) -> None:
        obj = _clean(t.obj, self.backup_name, self.name, target_ns)
        if t.group_resource == "persistentvolumeclaims":
            _claim(obj, self.renamed)
        elif t.group_resource in ITEM_ACTIONS:
            ITEM_ACTIONS[t.group_resource](obj)
        result = _create(self.ctx, obj, target_ns)
        if result:
            self.warnings.append(result)
            self.rlog.add("warning", result)

    def finish(self, store: ObjectStore, chosen: list[Any]) -> None:
        """The restore's log, results and resource list in the object store; its final status."""
        failures, warnings, total = self.failures, self.warnings, len(chosen)
        phase = "PartiallyFailed" if failures else "Completed"
        self.rlog.add("info", f"restore completed with phase {phase}")
        store.put(store.layout.restore_log(self.name), self.rlog.gz())
        store.put(store.layout.restore_results(self.name), gzip_json({
            "errors": {"velero": failures} if failures else {}, "warnings": {"velero": warnings} if warnings else {}}))
        restored_list: dict[str, list[str]] = {}
        for t in chosen:
            if (t.group_resource, t.namespace, t.name) in self.skipped:
                continue
            target_ns = self.target(t)
            key = f"{t.obj.get('apiVersion', 'v1')}/{t.obj.get('kind', '')}"
            restored_list.setdefault(key, []).append(
                f"{target_ns}/{t.name}" if target_ns else self.renamed.get(t.name, t.name))
        store.put(store.layout.restore_resource_list(self.name), gzip_json(restored_list))
        self.ctx.status("restores", self.name, phase=phase, completionTimestamp=stamp(),
                        progress={"totalItems": total, "itemsRestored": total},
                        warnings=len(warnings), errors=len(failures))


def _create(ctx: Ctx, obj: dict[str, Any], namespace: str | None) -> str:
    """Create an object, then put its backed-up managedFields back; an existing one is kept (a warning
    unless it is the default ServiceAccount)."""
    res = _resource(ctx, obj["apiVersion"], obj["kind"])
    scope = {"namespace": namespace} if namespace else {}
    try:
        res.create(body=obj, **scope)
    except ApiException as exc:
        if exc.status != 409:
            raise
        if obj["kind"] == "ServiceAccount" and obj["metadata"]["name"] == "default":
            return ""
        return f"could not restore, {obj['kind']} \"{obj['metadata']['name']}\" already exists."
    managed = obj["metadata"].get("managedFields")
    if managed:  # the create added velero-server's own entry: the patch puts the backed-up list back
        res.patch(body={"metadata": {"managedFields": managed}}, name=obj["metadata"]["name"],
                  content_type="application/merge-patch+json", **scope)
    return ""


def _namespace(ctx: Ctx, target: str, obj: dict[str, Any], backup: str, restore: str) -> None:
    try:
        ctx.core.read_namespace(target)
        return  # existing namespaces are left as they are
    except ApiException as exc:
        if exc.status != 404:
            raise
    body = _clean(obj, backup, restore, None)
    body["metadata"]["name"] = target
    labels = body["metadata"].get("labels") or {}
    labels.pop("kubernetes.io/metadata.name", None)
    body.pop("spec", None)
    ctx.core.create_namespace(body)


def _pv(ctx: Ctx, obj: dict[str, Any], record: dict[str, Any] | None, claims: dict[Any, Any], mapping: dict[str, str],
        backup: str, restore: str, restore_pvs: bool, rlog: Log) -> str | None:
    """Restore a PV from its snapshot; without one, leave the claim to dynamic provisioning (None)."""
    name = obj["metadata"]["name"]
    if record is None or not restore_pvs:
        rlog.add("info", "Skipping PV: no snapshot to restore it from; its claim waits for dynamic provisioning", name=name)
        return None
    body = _clean(obj, backup, restore, None)
    claim_ref = body["spec"].get("claimRef") or {}
    source_ns = claim_ref.get("namespace")
    target_ns = mapping.get(source_ns, source_ns)
    exists = _pv_exists(ctx, name)
    if exists and target_ns == source_ns:
        rlog.add("info", "PV already exists; not restored", name=name)
        return name
    new_name = volumes.clone_name() if exists else name  # shouldRenamePV: mapped, and the original is there
    new_volume = volumes.volume_from_snapshot(ctx, record)
    volumes.set_volume_id(body, new_volume)
    if new_name != name:
        body["metadata"]["name"] = new_name
        body["metadata"].setdefault("annotations", {})["velero.io/original-pv-name"] = name
    for key in BINDING_ANNOTATIONS:  # resetVolumeBindingInfo: pre-bound to the claim by its name only
        (body["metadata"].get("annotations") or {}).pop(key, None)
    body["spec"]["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": target_ns,
                                "name": claim_ref.get("name")}
    if warning := _create(ctx, body, None):
        raise RuntimeError(warning)
    pvc = claims.get((source_ns, claim_ref.get("name")))
    labels = ((pvc or {}).get("metadata") or {}).get("labels") or {}
    kind, service = labels.get("app.kubernetes.io/component"), labels.get("app.kubernetes.io/name")
    snapshot_id = record["status"]["providerSnapshotID"]
    if kind in ("rabbitmq", "mysql") and service and ctx.dataplane.has_snapshot(snapshot_id):
        ctx.dataplane.restore(snapshot_id, target_ns, service)
    rlog.add("info", "Restored PV from snapshot", name=new_name, volumeID=new_volume, snapshotID=snapshot_id)
    return new_name


def _pv_exists(ctx: Ctx, name: str) -> bool:
    try:
        ctx.core.read_persistent_volume(name)
        return True
    except ApiException as exc:
        if exc.status != 404:
            raise
        return False


def _claim(obj: dict[str, Any], renamed: dict[str, str]) -> None:
    annotations = obj["metadata"].get("annotations") or {}
    for key in CLAIM_ANNOTATIONS:
        annotations.pop(key, None)
    volume = (obj.get("spec") or {}).get("volumeName")
    if volume in renamed:
        obj["spec"]["volumeName"] = renamed[volume]
    elif volume:
        obj["spec"].pop("volumeName", None)  # no restored PV: left to dynamic provisioning


def _token_secret(obj: dict[str, Any]) -> None:
    """A token secret Velero restores (not an auto-created one): the cluster fills its token in again."""
    if obj.get("type") != SA_TOKEN_TYPE:
        return
    (obj["metadata"].get("annotations") or {}).pop(SA_UID_ANNOTATION, None)
    for key in ("token", "ca.crt"):
        (obj.get("data") or {}).pop(key, None)


def _service(obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    if spec.get("clusterIP") != "None":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)


def _pod(obj: dict[str, Any]) -> None:
    """pod_action.go: the scheduler places the pod again, its priority class sets its priority again,
    and the service account token volume the cluster mounts by itself is left out."""
    spec = obj.setdefault("spec", {})
    spec.pop("nodeName", None)
    spec.pop("priority", None)
    token = f"{spec.get('serviceAccountName', '')}-token-"
    _keep_named(spec, "volumes", token)
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        _keep_named(container, "volumeMounts", token)


def _keep_named(holder: dict[str, Any], key: str, dropped_prefix: str) -> None:
    """Drop the list entries whose name starts with the prefix (an empty list is left out, as Go's nil)."""
    kept = [v for v in holder.get(key) or [] if not str(v.get("name", "")).startswith(dropped_prefix)]
    if kept:
        holder[key] = kept
    else:
        holder.pop(key, None)


# The restore item actions Velero registers by default for these resources (besides the claims').
ITEM_ACTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "pods": _pod,
    "services": _service,
    "secrets": _token_secret,
}
