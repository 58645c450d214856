"""The PV controller's binder: claims and volumes become Bound to each other, after a delay.

Follows k8s.io/kubernetes pkg/controller/volume/persistentvolume (pv_controller.go syncClaim,
syncVolume, bindVolumeToClaim, bindClaimToVolume; index.go findBestMatchForClaim): a new
volume without a claim, or pre-bound to one by name (claimRef without a uid, as Velero
restores it), becomes Available; a pending claim binds to the volume it names
(`spec.volumeName`), else to a volume pre-bound to it, else to the smallest Available
volume of its storage class, access modes, volume mode and at least its size. Binding
writes the volume's claimRef (uid and resourceVersion included) and phase Bound, then the
claim's volumeName, its `pv.kubernetes.io/bind-completed` and `bound-by-controller`
annotations and phase Bound with the volume's capacity and access modes. A claim of a
WaitForFirstConsumer storage class is left for the scheduler, which binds it on the node of
its first pod; a claim nothing matches stays Pending with the controller's event. Binding
waits `bind_delay` seconds after the claim or volume appears (the PV controller works from its
own informers and queue, never in the request), so clients must wait for Bound.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube import events, ownership
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.metrics import parse_quantity

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.loop import ControllerLoop

PVCS, PVS = "/persistentvolumeclaims", "/persistentvolumes"
COMPONENT = "persistentvolume-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


def register(loop: ControllerLoop) -> None:
    api = loop.api

    def on_claim(event: Any) -> None:
        if event.type != "DELETED" and (event.obj.get("status") or {}).get("phase", "Pending") == "Pending":
            loop.enqueue("claim", event.namespace, event.obj["metadata"]["name"], api.bind_delay)

    def on_volume(event: Any) -> None:
        if event.type == "DELETED":
            return
        loop.enqueue("volume", "", event.obj["metadata"]["name"], api.bind_delay)
        ref = (event.obj.get("spec") or {}).get("claimRef") or {}
        if ref.get("name"):
            loop.enqueue("claim", ref.get("namespace", ""), ref["name"], api.bind_delay)

    loop.on(PVCS, on_claim)
    loop.on(PVS, on_volume)
    loop.reconciler("claim", partial(sync_claim, api))
    loop.reconciler("volume", partial(sync_volume, api))



def storage_class_of(obj: dict[str, Any]) -> str:
    """helper.GetPersistentVolume(Claim)Class: the beta annotation, else spec.storageClassName."""
    annotations = obj["metadata"].get("annotations") or {}
    return annotations.get("volume.beta.kubernetes.io/storage-class") or \
        (obj.get("spec") or {}).get("storageClassName") or ""


def binding_mode(api: Api, claim: dict[str, Any]) -> str:
    name = storage_class_of(claim)
    sc = api.store.get("storage.k8s.io/storageclasses", "", name) if name else None
    return (sc or {}).get("volumeBindingMode") or "Immediate"


def _size(obj: dict[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        value = (value or {}).get(key)
    return parse_quantity(value or "0")


def matches(claim: dict[str, Any], pv: dict[str, Any]) -> bool:
    """findMatchingVolume's checks: class, access modes, volume mode, size, not claimed by another."""
    spec, claim_spec = pv.get("spec") or {}, claim.get("spec") or {}
    ref = spec.get("claimRef") or {}
    if ref and not (ref.get("name") == claim["metadata"]["name"]
                    and ref.get("namespace") == claim["metadata"]["namespace"]
                    and ref.get("uid", claim["metadata"]["uid"]) == claim["metadata"]["uid"]):
        return False
    if pv["metadata"].get("deletionTimestamp") or (pv.get("status") or {}).get("phase") in ("Released", "Failed"):
        return False
    return (storage_class_of(pv) == storage_class_of(claim)
            and set(claim_spec.get("accessModes") or []) <= set(spec.get("accessModes") or [])
            and (spec.get("volumeMode") or "Filesystem") == (claim_spec.get("volumeMode") or "Filesystem")
            and _size(pv, "spec", "capacity", "storage") >= _size(claim, "spec", "resources", "requests", "storage"))


def best_volume(api: Api, claim: dict[str, Any], allowed: Any = None) -> dict[str, Any] | None:
    """The volume a pending claim binds to: the one it names or that names it, else the smallest match."""
    volumes, _ = api.store.list(PVS)
    named = (claim.get("spec") or {}).get("volumeName")
    if named:
        pv = next((v for v in volumes if v["metadata"]["name"] == named), None)
        return pv if pv is not None and matches(claim, pv) else None
    candidates = [v for v in volumes if matches(claim, v) and (allowed is None or allowed(v))]
    prebound = [v for v in candidates if (v.get("spec") or {}).get("claimRef")]
    return (prebound or sorted(candidates, key=lambda v: _size(v, "spec", "capacity", "storage")) or [None])[0]


def bind(api: Api, claim: dict[str, Any], pv: dict[str, Any]) -> None:
    """bindVolumeToClaim then bindClaimToVolume, each as the controller writes them."""
    call = ownership.controller_call()
    pv_type, pvc_type = api.resource("", "v1", "persistentvolumes"), api.resource("", "v1", "persistentvolumeclaims")
    meta = claim["metadata"]
    ref = {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
           "apiVersion": "v1", "resourceVersion": meta["resourceVersion"]}
    pv_patch: dict[str, Any] = {"spec": {"claimRef": ref}}
    if not (pv.get("spec") or {}).get("claimRef"):
        pv_patch["metadata"] = {"annotations": {BOUND_BY_CONTROLLER: "yes"}}
    pv_name = pv["metadata"]["name"]
    api.patch(pv_type, "", pv_name, pv_patch, "application/merge-patch+json", call=call)
    api.patch(pv_type, "", pv_name, {"status": {"phase": "Bound"}}, "application/merge-patch+json", "status", call)
    annotations = {BIND_COMPLETED: "yes"}
    if not (claim.get("spec") or {}).get("volumeName"):
        annotations[BOUND_BY_CONTROLLER] = "yes"
    api.patch(pvc_type, meta["namespace"], meta["name"],
              {"metadata": {"annotations": annotations}, "spec": {"volumeName": pv_name}},
              "application/merge-patch+json", call=call)
    spec = pv.get("spec") or {}
    api.patch(pvc_type, meta["namespace"], meta["name"],
              {"status": {"phase": "Bound", "accessModes": spec.get("accessModes"), "capacity": spec.get("capacity")}},
              "application/merge-patch+json", "status", call)


def _waiting_message(api: Api, claim: dict[str, Any]) -> tuple[str, str, str]:
    name = storage_class_of(claim)
    sc = api.store.get("storage.k8s.io/storageclasses", "", name) if name else None
    if sc is None and not name:
        return "Warning", "FailedBinding", "no persistent volumes available for this claim and no storage class is set"
    if sc is None:
        return "Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{name}" not found'
    return ("Normal", "ExternalProvisioning",
            f"Waiting for a volume to be created either by the external provisioner '{sc.get('provisioner')}' or "
            "manually by the system administrator. If volume creation is delayed, please verify that the "
            "provisioner is running and correctly registered.")


def sync_claim(api: Api, namespace: str, name: str) -> None:
    claim = api.store.get(PVCS, namespace, name)
    if claim is None or claim["metadata"].get("deletionTimestamp") or \
            (claim.get("status") or {}).get("phase", "Pending") != "Pending":
        return
    named = (claim.get("spec") or {}).get("volumeName")
    if not named and binding_mode(api, claim) == "WaitForFirstConsumer":
        events.record(api, claim, "WaitForFirstConsumer", "waiting for first consumer to be created before binding",
                      COMPONENT)
        return
    pv = best_volume(api, claim)
    if pv is None:
        if not named:
            kind, reason, message = _waiting_message(api, claim)
            events.record(api, claim, reason, message, COMPONENT, kind)
        return
    try:
        bind(api, claim, pv)
    except ApiError as exc:
        if exc.code != 404:
            raise


def sync_volume(api: Api, _: str, name: str) -> None:
    """A new volume is Available while no claim is bound to it (none named, or pre-bound to one by name)."""
    pv = api.store.get(PVS, "", name)
    if pv is None or pv["metadata"].get("deletionTimestamp"):
        return
    phase = (pv.get("status") or {}).get("phase", "Pending")
    if phase == "Pending" and not ((pv.get("spec") or {}).get("claimRef") or {}).get("uid"):
        api.patch(api.resource("", "v1", "persistentvolumes"), "", name, {"status": {"phase": "Available"}},
                  "application/merge-patch+json", "status", ownership.controller_call())
