"""A Restore, as Velero v1.18's restore controller runs it, from the files in the object store.

It reads the backup's tarball and volume snapshot list back from S3, creates the items
(in Velero's priority order) in the namespaces `namespaceMapping` names, restores each
snapshotted PV from a new EBS volume made from its snapshot (under a `velero-clone-`
name when the original PV still exists), loads the volume's data into the target
namespace's vhost/database, and binds the claims. Pods of the restored StatefulSets are
marked Ready shortly after the restore completes (`ready()`), as the kubelet would once
the containers start.

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
import hashlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException

from opsbook.formats.velero import gunzip_json, gzip_json, read_tarball, snapshot_pv_name
from opsbook.sandbox.velero import items as items_mod
from opsbook.sandbox.velero import volumes
from opsbook.sandbox.velero.context import Ctx, Log, ObjectStore, now, stamp

log = logging.getLogger(__name__)
RESTORABLE_PHASES = ("Completed", "PartiallyFailed")
STRIP_META = ("uid", "resourceVersion", "creationTimestamp", "selfLink", "managedFields", "generation",
              "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "generateName")
CLAIM_ANNOTATIONS = ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller")
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


def run(ctx: Ctx, restore: dict[str, Any]) -> Callable[[], None] | None:
    """Do the restore; return what the kubelet does next (`ready()` for its pods), if anything."""
    name = restore["metadata"]["name"]
    spec = restore.get("spec") or {}
    loaded = _load(ctx, restore)
    if loaded is None:
        return None
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
    namespaces = sorted({r.target(t) or "" for t in chosen if t.namespace})
    for ns in namespaces:
        _bind_claims(ctx, ns, name)
    r.finish(store, chosen)
    return lambda: ready(ctx, name, namespaces, r.statefulsets)


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
    statefulsets: list[tuple[str, str]] = field(default_factory=list)
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
        elif t.group_resource == "services":
            _service(obj)
        elif t.group_resource == "statefulsets.apps":
            self.statefulsets.append((target_ns or "", t.name))
        elif t.group_resource == "secrets" and obj.get("type") == SA_TOKEN_TYPE:
            _token_secret(obj)
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
    """Create an object; an existing one is kept (a warning unless it is the default ServiceAccount)."""
    res = _resource(ctx, obj["apiVersion"], obj["kind"])
    try:
        if namespace:
            res.create(body=obj, namespace=namespace)
        else:
            res.create(body=obj)
    except ApiException as exc:
        if exc.status != 409:
            raise
        if obj["kind"] == "ServiceAccount" and obj["metadata"]["name"] == "default":
            return ""
        return f"could not restore, {obj['kind']} \"{obj['metadata']['name']}\" already exists."
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
    try:
        ctx.core.read_persistent_volume(name)
        new_name = volumes.clone_name() if target_ns != source_ns else name
    except ApiException as exc:
        if exc.status != 404:
            raise
        new_name = name
    if new_name == name and target_ns == source_ns:
        rlog.add("info", "PV already exists; not restored", name=name)
        return name
    new_volume = volumes.volume_from_snapshot(ctx, record)
    volumes.set_volume_id(body, new_volume)
    body["metadata"]["name"] = new_name
    body["metadata"]["finalizers"] = ["kubernetes.io/pv-protection"]
    body["metadata"].setdefault("annotations", {})["velero.io/original-pv-name"] = name
    body["spec"]["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": target_ns,
                                "name": claim_ref.get("name")}
    ctx.core.create_persistent_volume(body)
    pvc = claims.get((source_ns, claim_ref.get("name")))
    labels = ((pvc or {}).get("metadata") or {}).get("labels") or {}
    kind, service = labels.get("app.kubernetes.io/component"), labels.get("app.kubernetes.io/name")
    snapshot_id = record["status"]["providerSnapshotID"]
    if kind in ("rabbitmq", "mysql") and service and ctx.dataplane.has_snapshot(snapshot_id):
        ctx.dataplane.restore(snapshot_id, target_ns, service)
    rlog.add("info", "Restored PV from snapshot", name=new_name, volumeID=new_volume, snapshotID=snapshot_id)
    return new_name


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


def _bind_claims(ctx: Ctx, namespace: str, restore: str) -> None:
    """The PV controller's part: restored claims and their volumes Bound to each other."""
    for pvc in ctx.core.list_namespaced_persistent_volume_claim(
            namespace, label_selector=f"velero.io/restore-name={restore}").items:
        pv_name = pvc.spec.volume_name
        if not pv_name:
            continue
        pv = ctx.core.read_persistent_volume(pv_name)
        ctx.core.patch_persistent_volume(pv_name, {"spec": {"claimRef": {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace,
            "name": pvc.metadata.name, "uid": pvc.metadata.uid, "resourceVersion": pvc.metadata.resource_version}}})
        ctx.core.patch_persistent_volume_status(pv_name, {"status": {"phase": "Bound"}})
        ctx.core.patch_namespaced_persistent_volume_claim(pvc.metadata.name, namespace, {"metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}}})
        ctx.core.patch_namespaced_persistent_volume_claim_status(pvc.metadata.name, namespace, {"status": {
            "phase": "Bound", "accessModes": pv.spec.access_modes, "capacity": pv.spec.capacity}})


def _pod_ip(ctx: Ctx, namespace: str, pod: str) -> str:
    """A stable address in a private subnet (the VPC CNI gives pods VPC addresses)."""
    subnets = ctx.params.network.private_subnets
    digest = int(hashlib.sha256(f"{namespace}/{pod}".encode()).hexdigest(), 16)
    net = ipaddress.IPv4Network(subnets[digest % len(subnets)])
    return str(net[2048 + digest % max(1, net.num_addresses // 2 - 2048)])


def ready(ctx: Ctx, restore: str, namespaces: list[str], statefulsets: list[tuple[str, str]]) -> None:
    """The kubelet's part: the restored pods Running and Ready; the StatefulSets' status counts them."""
    stamp_now = stamp(now())
    for namespace in namespaces:
        for pod in ctx.core.list_namespaced_pod(namespace, label_selector=f"velero.io/restore-name={restore}").items:
            name = pod.metadata.name
            pod_ip = (pod.status.pod_ip if pod.status else None) or _pod_ip(ctx, namespace, name)
            ctx.core.patch_namespaced_pod_status(name, namespace, {"status": {
                "phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": stamp_now,
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": stamp_now}
                               for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                "containerStatuses": [{"name": c.name, "image": c.image, "imageID": "", "ready": True,
                                       "started": True, "restartCount": 0,
                                       "state": {"running": {"startedAt": stamp_now}}}
                                      for c in pod.spec.containers or []],
            }})
    for namespace, name in statefulsets:
        try:
            sts = ctx.apps.read_namespaced_stateful_set(name, namespace)
        except ApiException:
            continue
        replicas = sts.spec.replicas or 0
        selector = ",".join(f"{k}={v}" for k, v in (sts.spec.selector.match_labels or {}).items())
        # a pod the backup did not hold is not made here (the StatefulSet controller's job): not ready
        pods = {p.metadata.name for p in ctx.core.list_namespaced_pod(namespace, label_selector=selector).items}
        ready_count = sum(1 for i in range(replicas) if f"{name}-{i}" in pods)
        ctx.apps.patch_namespaced_stateful_set_status(name, namespace, {"status": {
            "replicas": replicas, "readyReplicas": ready_count, "currentReplicas": ready_count,
            "updatedReplicas": ready_count, "availableReplicas": ready_count,
            "observedGeneration": sts.metadata.generation or 1}})
