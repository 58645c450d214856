"""The scale subresource of Deployments, StatefulSets and ReplicaSets: an autoscaling/v1 Scale.

As k8s.io/kubernetes pkg/registry/apps/{deployment,statefulset,replicaset}/storage/storage.go
serve it (scaleFromDeployment and friends): metadata is the workload's (name, namespace, uid,
resourceVersion, creationTimestamp), `spec.replicas` its desired count, `status.replicas` its
status count and `status.selector` its label selector as a string. PUT and PATCH (merge, JSON,
strategic patch of the Scale) change only the workload's `spec.replicas`, which is a spec
change (generation goes up); a PUT whose resourceVersion is stale conflicts, a negative count
is invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.errors import conflict, invalid
from opsbook.sandbox.kube.patching import apply_patch
from opsbook.sandbox.kube.printers import selector_string

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.resources import ResourceType


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selector_string((obj.get("spec") or {}).get("selector"))},
    }


def get(api: Api, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
    return scale_of(api.get(rtype, namespace, name))


def _set_replicas(api: Api, rtype: ResourceType, obj: dict[str, Any], scale: Any, call: Call) -> dict[str, Any]:
    name = obj["metadata"]["name"]
    replicas = ((scale or {}).get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid("Scale.autoscaling", name, "autoscaling", "Scale", [{
            "reason": "FieldValueInvalid", "field": "spec.replicas",
            "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}])
    updated = api.patch(rtype, obj["metadata"]["namespace"], name, {"spec": {"replicas": replicas}},
                        "application/merge-patch+json", call=call, managed_subresource="scale")
    return scale_of(updated)


def update(api: Api, rtype: ResourceType, namespace: str, name: str, body: Any, call: Call) -> dict[str, Any]:
    obj = api.get(rtype, namespace, name)
    wanted = ((body or {}).get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
    if wanted and wanted != obj["metadata"]["resourceVersion"]:
        raise conflict(rtype.group_resource, name, rtype.group, rtype.plural)
    return _set_replicas(api, rtype, obj, body, call)


def patch(api: Api, rtype: ResourceType, namespace: str, name: str, body: Any, content_type: str,
          call: Call) -> dict[str, Any]:
    obj = api.get(rtype, namespace, name)
    return _set_replicas(api, rtype, obj, apply_patch(scale_of(obj), body, content_type), call)
