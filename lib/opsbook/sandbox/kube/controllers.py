"""What kube-controller-manager does when objects are deleted, as far as clients can observe it.

- garbage collector: dependents (ownerReferences) go with their owner, or lose their reference to it
  when orphaned;
- pvc-protection / pv-protection: a claim in use by a pod, or a volume bound to a claim,
  stays Terminating until that is no longer so;
- PV controller: a deleted claim's volume is deleted (reclaimPolicy Delete) or Released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube.errors import ApiError

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.resources import ResourceType

# Finalizers whose controllers the emulator plays; any other one holds deletion until removed.
SYSTEM_FINALIZERS = frozenset({
    "kubernetes.io/pvc-protection",
    "kubernetes.io/pv-protection",
    "external-provisioner.volume.kubernetes.io/finalizer",
})
PODS, PVCS, PVS = "/pods", "/persistentvolumeclaims", "/persistentvolumes"


def _claim_in_use(api: Api, namespace: str, claim: str) -> bool:
    pods, _ = api.store.list(PODS, namespace)
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if (volume.get("persistentVolumeClaim") or {}).get("claimName") == claim:
                return True
    return False


def _volume_in_use(api: Api, pv: dict[str, Any]) -> bool:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if (pv.get("status") or {}).get("phase") != "Bound" or not ref.get("name"):
        return False
    claim = api.store.get(PVCS, ref.get("namespace", ""), ref["name"])
    return claim is not None and claim["metadata"]["uid"] == ref.get("uid", claim["metadata"]["uid"])


def releasable(api: Api, rtype: ResourceType, obj: dict[str, Any]) -> bool:
    """True when only finalizers of emulated controllers hold the object, and they would let it go."""
    finalizers = set(obj["metadata"].get("finalizers") or [])
    if not finalizers or not finalizers <= SYSTEM_FINALIZERS:
        return False
    if rtype.key == PVCS:
        return not _claim_in_use(api, obj["metadata"]["namespace"], obj["metadata"]["name"])
    if rtype.key == PVS:
        return not _volume_in_use(api, obj)
    return True


def after_delete(api: Api, rtype: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> None:
    """React to an object that is gone: collect its dependents, release claims, reclaim volumes."""
    if options.get("propagationPolicy") != "Orphan" and not options.get("orphanDependents"):
        _collect_dependents(api, obj)
    else:
        _orphan_dependents(api, obj)
    namespace = obj["metadata"].get("namespace", "")
    if rtype.key == PODS:
        claims, _ = api.store.list(PVCS, namespace)
        for claim in claims:
            if claim["metadata"].get("deletionTimestamp"):
                _retry_delete(api, PVCS, namespace, claim["metadata"]["name"])
    elif rtype.key == PVCS:
        _reclaim(api, obj)


def _retry_delete(api: Api, key: str, namespace: str, name: str) -> None:
    for rtype in api.registry.by_key(key)[:1]:
        obj = api.store.get(key, namespace, name)
        if obj is not None and releasable(api, rtype, obj):
            obj["metadata"]["finalizers"] = []
            api.store.remove(key, namespace, name)
            after_delete(api, rtype, obj, {})


def _reclaim(api: Api, claim: dict[str, Any]) -> None:
    pvs, _ = api.store.list(PVS)
    for pv in pvs:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != claim["metadata"]["uid"]:
            continue
        deleting = bool(pv["metadata"].get("deletionTimestamp"))  # pv-protection was holding it
        if deleting or pv["spec"].get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
            pv["metadata"]["finalizers"] = []
            api.store.remove(PVS, "", pv["metadata"]["name"])
        else:
            pv["status"] = {"phase": "Released"}
            api.store.write(PVS, pv, "MODIFIED")


def _dependents(api: Api, owner: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    uid = owner["metadata"]["uid"]
    return [(key, obj) for key, obj in api.store.all_items(owner["metadata"].get("namespace"))
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])]


def _orphan_dependents(api: Api, owner: dict[str, Any]) -> None:
    """The orphan finalizer's work: dependents stay, without their reference to the owner."""
    uid = owner["metadata"]["uid"]
    for key, obj in _dependents(api, owner):
        refs = [r for r in obj["metadata"]["ownerReferences"] if r.get("uid") != uid]
        obj["metadata"]["ownerReferences"] = refs
        if not refs:
            del obj["metadata"]["ownerReferences"]
        api.store.write(key, obj, "MODIFIED")


def _collect_dependents(api: Api, owner: dict[str, Any]) -> None:
    for key, obj in _dependents(api, owner):
        for rtype in api.registry.by_key(key)[:1]:
            try:
                api.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise
