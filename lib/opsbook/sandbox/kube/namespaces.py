"""Namespace deletion: Terminating, the namespace controller's deleter, and /finalize.

DELETE marks the namespace Terminating (deletionTimestamp, status.phase) and leaves
`spec.finalizers: [kubernetes]`; a second DELETE meanwhile is a 409 Conflict. The deleter
(k8s.io/kubernetes pkg/controller/namespace/deletion/namespaced_resources_deleter.go) then
deletes every object in it, counts what remains and the finalizers that hold it, and writes
the five deletion conditions (status_condition_utils.go: NamespaceDeletionDiscoveryFailure,
NamespaceDeletionGroupVersionParsingFailure, NamespaceDeletionContentFailure,
NamespaceContentRemaining, NamespaceFinalizersRemaining, with their real reasons and
messages). Only when nothing remains does it remove the `kubernetes` finalizer, and the
namespace goes. An object held by a finalizer nobody here acts on keeps the namespace
Terminating until the finalizer is removed. `PUT .../namespaces/<name>/finalize` sets
spec.finalizers directly (how an operator unsticks a namespace); with none left the
namespace and whatever it still held are removed.
"""

from __future__ import annotations

import copy
from collections import Counter
from functools import partial
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube import ownership
from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.errors import ApiError

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.loop import ControllerLoop

NAMESPACES_KEY = "/namespaces"
FINALIZER = "kubernetes"
# How soon the deleter looks again while content remains (pods terminate in well under this).
RESYNC_SECONDS = 1.0
CONDITIONS = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
     "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
)


def register(loop: ControllerLoop) -> None:
    def on_namespace(event: Any) -> None:
        if event.type != "DELETED" and event.obj["metadata"].get("deletionTimestamp"):
            loop.enqueue("namespace", "", event.obj["metadata"]["name"])

    def on_content(event: Any) -> None:
        if event.namespace and event.type in ("DELETED", "MODIFIED"):
            ns = loop.api.store.get(NAMESPACES_KEY, "", event.namespace)
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                loop.enqueue("namespace", "", event.namespace, 0.05)

    loop.on(NAMESPACES_KEY, on_namespace)
    loop.on("*", on_content)
    loop.reconciler("namespace", partial(sync, loop.api))


def terminate(api: Api, ns: dict[str, Any]) -> dict[str, Any]:
    """DELETE of a namespace: Terminating now, gone once the deleter has emptied it.

    Deleting it again while the deleter is at work is a 409 Conflict, as the namespace
    REST storage answers (pkg/registry/core/namespace/storage/storage.go `Delete`).
    """
    if ns["metadata"].get("deletionTimestamp"):
        if (ns.get("spec") or {}).get("finalizers"):
            name = ns["metadata"]["name"]
            raise ApiError(409, f'Operation cannot be fulfilled on namespaces "{name}": The system is ensuring all '
                                "content is removed from this namespace.  Upon completion, this namespace will "
                                "automatically be purged by the system.", name=name, kind="namespaces")
        return ns
    from opsbook.sandbox.kube.objects import now

    ns["metadata"]["deletionTimestamp"] = now()
    ns["metadata"]["deletionGracePeriodSeconds"] = 0
    ns["status"] = {**(ns.get("status") or {}), "phase": "Terminating"}
    return api.store.write(NAMESPACES_KEY, ns, "MODIFIED")


def _resource_name(key: str) -> str:
    """`pods.`, `deployments.apps`, `backups.velero.io`: how the conditions name a resource."""
    group, _, plural = key.partition("/")
    return f"{plural}.{group}"


def _remaining(api: Api, name: str) -> tuple[Counter[str], Counter[str]]:
    """Objects left in the namespace by resource, and the finalizers holding them."""
    by_resource: Counter[str] = Counter()
    by_finalizer: Counter[str] = Counter()
    for key, obj in api.store.all_items(name):
        by_resource[_resource_name(key)] += 1
        for finalizer in obj["metadata"].get("finalizers") or []:
            by_finalizer[finalizer] += 1
    return by_resource, by_finalizer


def conditions(old: list[dict[str, Any]], resources: Counter[str], finalizers: Counter[str]) -> list[dict[str, Any]]:
    """The deleter's five conditions; lastTransitionTime changes only when a status flips."""
    from opsbook.sandbox.kube.objects import now

    problems = {}
    if resources:
        listed = ", ".join(sorted(f"{r} has {n} resource instances" for r, n in resources.items()))
        problems["NamespaceContentRemaining"] = ("SomeResourcesRemain", f"Some resources are remaining: {listed}")
    if finalizers:
        listed = ", ".join(sorted(f"{f} in {n} resource instances" for f, n in finalizers.items()))
        problems["NamespaceFinalizersRemaining"] = (
            "SomeFinalizersRemain", f"Some content in the namespace has finalizers remaining: {listed}")
    previous = {c.get("type"): c for c in old}
    out = []
    for kind, ok_reason, ok_message in CONDITIONS:
        status = "True" if kind in problems else "False"
        reason, message = problems.get(kind, (ok_reason, ok_message))
        before = previous.get(kind, {})
        stamp = before.get("lastTransitionTime") if before.get("status") == status else now()
        out.append({"type": kind, "status": status, "lastTransitionTime": stamp or now(), "reason": reason,
                    "message": message})
    return out


def _delete_content(api: Api, name: str, call: Call) -> None:
    for key, obj in api.store.all_items(name):
        if obj["metadata"].get("deletionTimestamp"):
            continue
        for rtype in api.registry.by_key(key)[:1]:
            try:
                api.delete(rtype, name, obj["metadata"]["name"], call=call)
            except ApiError as exc:
                if exc.code != 404:  # collected with its owner meanwhile
                    raise


def sync(api: Api, _: str, name: str) -> float | None:
    """One pass of the deleter; a delay when it must look again."""
    ns = api.store.get(NAMESPACES_KEY, "", name)
    if ns is None or not ns["metadata"].get("deletionTimestamp"):
        return None
    call = ownership.controller_call()
    _delete_content(api, name, call)
    resources, finalizers = _remaining(api, name)
    status = {**(ns.get("status") or {}), "phase": "Terminating",
              "conditions": conditions((ns.get("status") or {}).get("conditions") or [], resources, finalizers)}
    if status != ns.get("status"):
        ns = copy.deepcopy(ns)
        ns["status"] = status
        ns = api.store.write(NAMESPACES_KEY, ns, "MODIFIED")
    if resources:
        return RESYNC_SECONDS
    set_finalizers(api, ns, [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER])
    return None


def set_finalizers(api: Api, ns: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
    """What /finalize does: spec.finalizers replaced; a Terminating namespace with none left is removed."""
    ns = copy.deepcopy(ns)
    ns.setdefault("spec", {})["finalizers"] = finalizers
    name = ns["metadata"]["name"]
    if ns["metadata"].get("deletionTimestamp") and not finalizers and not ns["metadata"].get("finalizers"):
        for key, obj in api.store.all_items(name):
            api.store.remove(key, name, obj["metadata"]["name"])
        return api.store.remove(NAMESPACES_KEY, "", name) or ns
    return api.store.write(NAMESPACES_KEY, ns, "MODIFIED")


def finalize(api: Api, name: str, body: Any) -> dict[str, Any]:
    """PUT /api/v1/namespaces/<name>/finalize."""
    ns = api.store.get(NAMESPACES_KEY, "", name)
    if ns is None:
        raise ApiError(404, f'namespaces "{name}" not found', name=name, kind="namespaces")
    spec = (body or {}).get("spec") or {}
    finalizers = spec.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        raise ApiError(422, f'Namespace "{name}" is invalid: spec.finalizers: Invalid value: expected a list of '
                            "finalizer names")
    return set_finalizers(api, ns, finalizers)
