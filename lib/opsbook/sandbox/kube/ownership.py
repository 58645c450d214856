"""What the workload controllers share: reading objects, controller references, selectors, pod state.

Controller references and adoption follow k8s.io/kubernetes pkg/controller/controller_ref_manager.go
(a controller adopts the orphans its selector matches and releases the dependents it no longer
matches); writes go through the API as the controller's field manager, as every controller's
client does.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.printers import selector_string
from opsbook.sandbox.kube.selectors import label_matcher

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api

MERGE = "application/merge-patch+json"
CONTROLLER_MANAGER = "kube-controller-manager"
PODS = "/pods"


def controller_call() -> Call:
    """The options of a kube-controller-manager write."""
    return Call(manager=CONTROLLER_MANAGER)


def read(api: Api, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    return api.store.get(f"{group}/{plural}", namespace, name)


def live(obj: dict[str, Any] | None) -> bool:
    """An object that exists and is not being deleted."""
    return obj is not None and not obj["metadata"].get("deletionTimestamp")


def controller_ref(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def matcher(selector: dict[str, Any] | None) -> Any:
    """A predicate on objects for a LabelSelector; a missing or empty selector matches nothing."""
    text = selector_string(selector)
    if not text:
        return lambda obj: False
    return label_matcher(text)


def claim(api: Api, owner: dict[str, Any], candidates: list[dict[str, Any]], selector: dict[str, Any] | None,
          rtype_key: tuple[str, str, str], call: Call) -> list[dict[str, Any]]:
    """The candidates this owner controls: its own that still match, plus the matching orphans it adopts."""
    matches = matcher(selector)
    uid = owner["metadata"]["uid"]
    mine = []
    for obj in candidates:
        ref = controller_of(obj)
        if ref is not None and ref.get("uid") != uid:
            continue
        if ref is None and matches(obj) and live(owner) and live(obj):
            refs = [*(obj["metadata"].get("ownerReferences") or []), controller_ref(owner)]
            obj = _patch(api, rtype_key, obj, {"metadata": {"ownerReferences": refs,
                                                            "resourceVersion": obj["metadata"]["resourceVersion"]}},
                         call) or obj
            mine.append(obj)
        elif ref is not None and not matches(obj):
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            _patch(api, rtype_key, obj, {"metadata": {"ownerReferences": refs or None}}, call)
        elif ref is not None:
            mine.append(obj)
    return mine


def _patch(api: Api, rtype_key: tuple[str, str, str], obj: dict[str, Any], body: dict[str, Any],
           call: Call) -> dict[str, Any] | None:
    rtype = api.resource(*rtype_key)
    try:
        return api.patch(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"], body, MERGE, call=call)
    except ApiError as exc:
        if exc.code in (404, 409):
            return None
        raise


def write_status(api: Api, rtype_key: tuple[str, str, str], obj: dict[str, Any], status: dict[str, Any],
                 call: Call) -> None:
    """Replace the status (through the status subresource) when it changed."""
    if obj.get("status") == status:
        return
    rtype = api.resource(*rtype_key)
    new = copy.deepcopy(obj)
    new["status"] = status
    new["metadata"].pop("resourceVersion", None)
    try:
        api.update(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"], new, "status", call)
    except ApiError as exc:
        if exc.code != 404:
            raise


def condition_true(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def pod_ready(pod: dict[str, Any]) -> bool:
    return live(pod) and condition_true(pod, "Ready")


def pod_active(pod: dict[str, Any]) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    return live(pod) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pods_in(api: Api, namespace: str) -> list[dict[str, Any]]:
    pods, _ = api.store.list(PODS, namespace)
    return pods


def delete(api: Api, group: str, plural: str, obj: dict[str, Any], call: Call,
           grace_seconds: int | None = None) -> bool:
    """Delete an object (with a grace period for a pod, when given); False when it was gone already."""
    rtype = api.resource(group, "v1", plural)
    options = {} if grace_seconds is None else {"gracePeriodSeconds": grace_seconds}
    try:
        api.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"], options, call=call)
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def template_labels(template: dict[str, Any]) -> dict[str, str]:
    return dict((template.get("metadata") or {}).get("labels") or {})


def omit_zero(status: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """A status as Go serialises it: zero counts with `omitempty` are left out."""
    return {k: v for k, v in status.items() if k in keep or v not in (0, None, "")}
