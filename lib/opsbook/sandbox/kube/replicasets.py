"""The ReplicaSet and Deployment controllers of kube-controller-manager.

ReplicaSet (k8s.io/kubernetes pkg/controller/replicaset/replica_set.go, replica_set_utils.go):
keeps `spec.replicas` active pods (named `<rs>-<5 random>`), deleting the least useful first
(unscheduled, then pending, then not ready, then the newest), with SuccessfulCreate /
SuccessfulDelete events; status counts replicas, ready, available and fully labelled pods.

Deployment (pkg/controller/deployment: sync.go, rolling.go, util/deployment_util.go): the
ReplicaSet whose pod template equals the Deployment's (ignoring pod-template-hash) is the new
one; a changed template gets a new ReplicaSet `<deployment>-<hash>` with the next revision.
Simplified rollout: the new ReplicaSet is scaled to `spec.replicas` and the old ones to 0 in
one step (pods then follow, so `kubectl rollout status` still sees old replicas pending
termination); ScalingReplicaSet events; status and the Available / Progressing conditions as
the controller computes them, observedGeneration last.
"""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube import events, ownership
from opsbook.sandbox.kube.objects import now, short_hash

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.loop import ControllerLoop

RS_KEY, DEPLOYMENT_KEY = ("apps", "v1", "replicasets"), ("apps", "v1", "deployments")
POD_KEY = ("", "v1", "pods")
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def register(loop: ControllerLoop) -> None:
    api = loop.api
    loop.on("apps/replicasets", lambda e: (loop.enqueue("replicaset", e.namespace, e.obj["metadata"]["name"]),
                                           loop.enqueue_owner(e, "Deployment", "deployment")))
    loop.on("apps/deployments", lambda e: loop.enqueue("deployment", e.namespace, e.obj["metadata"]["name"]))
    loop.on("/pods", lambda e: loop.enqueue_owner(e, "ReplicaSet", "replicaset"))
    loop.reconciler("replicaset", partial(sync_replicaset, api))
    loop.reconciler("deployment", partial(sync_deployment, api))



# --- ReplicaSet -----------------------------------------------------------------------------------


def _deletion_rank(pod: dict[str, Any]) -> tuple[int, int, int, str]:
    """controller.ActivePods ordering: unscheduled < pending < not ready < ready, then newest first."""
    status = pod.get("status") or {}
    return (0 if (pod.get("spec") or {}).get("nodeName") else -1,
            {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0),
            1 if ownership.pod_ready(pod) else 0,
            "".join(chr(255 - ord(c)) for c in pod["metadata"].get("creationTimestamp", "")))


def _new_pod(rs: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(rs["spec"].get("template") or {})
    meta = template.get("metadata") or {}
    return {"metadata": {"generateName": f"{rs['metadata']['name']}-", "labels": meta.get("labels") or {},
                         "annotations": meta.get("annotations") or {},
                         "ownerReferences": [ownership.controller_ref(rs)]},
            "spec": template.get("spec") or {}}


def sync_replicaset(api: Api, namespace: str, name: str) -> None:
    rs = ownership.read(api, "apps", "replicasets", namespace, name)
    if not ownership.live(rs):
        return
    call = ownership.controller_call()
    pods = ownership.claim(api, rs, ownership.pods_in(api, namespace), rs["spec"].get("selector"), POD_KEY, call)
    active = [p for p in pods if ownership.pod_active(p)]
    diff = (rs["spec"].get("replicas", 1)) - len(active)
    pod_type = api.resource(*POD_KEY)
    for _ in range(max(diff, 0)):
        pod = api.create(pod_type, namespace, _new_pod(rs), call)
        events.record(api, rs, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", "replicaset-controller")
    for pod in sorted(active, key=_deletion_rank)[:max(-diff, 0)]:
        if ownership.delete(api, "", "pods", pod, call):
            events.record(api, rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                          "replicaset-controller")
    _replicaset_status(api, rs, call)


def _replicaset_status(api: Api, rs: dict[str, Any], call: Any) -> None:
    uid = rs["metadata"]["uid"]
    pods = [p for p in ownership.pods_in(api, rs["metadata"]["namespace"])
            if (ownership.controller_of(p) or {}).get("uid") == uid and ownership.pod_active(p)]
    labels = ownership.template_labels(rs["spec"].get("template") or {})
    ready = sum(1 for p in pods if ownership.pod_ready(p))
    status = {"replicas": len(pods),
              "fullyLabeledReplicas": sum(1 for p in pods if labels.items() <= (p["metadata"].get("labels")
                                                                               or {}).items()),
              "readyReplicas": ready, "availableReplicas": ready,
              "observedGeneration": rs["metadata"].get("generation", 1)}
    ownership.write_status(api, RS_KEY, rs, ownership.omit_zero(status, keep=("replicas",)), call)


# --- Deployment -----------------------------------------------------------------------------------


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    (out.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return out


def _percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value or 0)


def max_unavailable(deployment: dict[str, Any]) -> int:
    strategy = deployment["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    replicas = deployment["spec"].get("replicas", 1)
    rolling = strategy.get("rollingUpdate") or {}
    unavailable = _percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    surge = _percent(rolling.get("maxSurge", "25%"), replicas, True)
    return min(replicas, 1 if unavailable == 0 and surge == 0 else unavailable)


def _new_replicaset(api: Api, deployment: dict[str, Any], revision: int, call: Any) -> dict[str, Any]:
    template = copy.deepcopy(deployment["spec"]["template"])
    pod_hash = short_hash(deployment["metadata"]["namespace"], deployment["metadata"]["name"],
                          repr(sorted(template.items())))
    labels = {**ownership.template_labels(template), HASH_LABEL: pod_hash}
    template.setdefault("metadata", {})["labels"] = labels
    selector = copy.deepcopy(deployment["spec"].get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    replicas = deployment["spec"].get("replicas", 1)
    body = {"metadata": {"name": f"{deployment['metadata']['name']}-{pod_hash}", "labels": labels,
                         "annotations": {REVISION: str(revision), "deployment.kubernetes.io/desired-replicas":
                                         str(replicas)},
                         "ownerReferences": [ownership.controller_ref(deployment)]},
            "spec": {"replicas": replicas, "selector": selector, "template": template}}
    created = api.create(api.resource(*RS_KEY), deployment["metadata"]["namespace"], body, call)
    events.record(api, deployment, "ScalingReplicaSet",
                  f"Scaled up replica set {created['metadata']['name']} to {replicas} from 0", "deployment-controller")
    return created


def _scale(api: Api, deployment: dict[str, Any], rs: dict[str, Any], replicas: int, call: Any) -> None:
    old = rs["spec"].get("replicas", 1)
    if old == replicas:
        return
    api.patch(api.resource(*RS_KEY), rs["metadata"]["namespace"], rs["metadata"]["name"],
              {"spec": {"replicas": replicas}, "metadata": {"annotations": {
                  "deployment.kubernetes.io/desired-replicas": str(deployment["spec"].get("replicas", 1))}}},
              ownership.MERGE, call=call)
    direction = "up" if replicas > old else "down"
    events.record(api, deployment, "ScalingReplicaSet",
                  f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas} from {old}",
                  "deployment-controller")


def sync_deployment(api: Api, namespace: str, name: str) -> None:
    deployment = ownership.read(api, "apps", "deployments", namespace, name)
    if not ownership.live(deployment):
        return
    call = ownership.controller_call()
    candidates, _ = api.store.list("apps/replicasets", namespace)
    owned = ownership.claim(api, deployment, candidates, deployment["spec"].get("selector"), RS_KEY, call)
    wanted = _without_hash(deployment["spec"].get("template") or {})
    new = next((rs for rs in owned if _without_hash(rs["spec"].get("template") or {}) == wanted), None)
    revisions = [int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0) for rs in owned]
    if new is None:
        new = _new_replicaset(api, deployment, max(revisions, default=0) + 1, call)
    else:
        _scale(api, deployment, new, deployment["spec"].get("replicas", 1), call)
    for rs in owned:
        if rs["metadata"]["uid"] != new["metadata"]["uid"]:
            _scale(api, deployment, rs, 0, call)
    revision = (new["metadata"].get("annotations") or {}).get(REVISION, "1")
    if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
        api.patch(api.resource(*DEPLOYMENT_KEY), namespace, name,
                  {"metadata": {"annotations": {REVISION: revision}}}, ownership.MERGE, call=call)
        deployment = ownership.read(api, "apps", "deployments", namespace, name) or deployment
    _deployment_status(api, deployment, new["metadata"]["name"], call)


def _condition(old: list[dict[str, Any]], kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    """A condition, keeping lastTransitionTime while its status holds and lastUpdateTime while nothing changes."""
    previous = next((c for c in old if c.get("type") == kind), {})
    stamp = now()
    same = previous.get("status") == status
    unchanged = same and previous.get("reason") == reason and previous.get("message") == message
    return {"type": kind, "status": status,
            "lastUpdateTime": previous.get("lastUpdateTime", stamp) if unchanged else stamp,
            "lastTransitionTime": previous.get("lastTransitionTime", stamp) if same else stamp,
            "reason": reason, "message": message}


def _deployment_status(api: Api, deployment: dict[str, Any], new_name: str, call: Any) -> None:
    namespace, uid = deployment["metadata"]["namespace"], deployment["metadata"]["uid"]
    sets, _ = api.store.list("apps/replicasets", namespace)
    owned = [rs for rs in sets if (ownership.controller_of(rs) or {}).get("uid") == uid]
    count = {k: sum((rs.get("status") or {}).get(k, 0) for rs in owned)
             for k in ("replicas", "readyReplicas", "availableReplicas")}
    new = next((rs for rs in owned if rs["metadata"]["name"] == new_name), {})
    desired = deployment["spec"].get("replicas", 1)
    updated = (new.get("status") or {}).get("replicas", 0)
    total = sum(rs["spec"].get("replicas", 1) for rs in owned)
    old = (deployment.get("status") or {}).get("conditions") or []
    available = count["availableReplicas"] >= desired - max_unavailable(deployment)
    complete = updated == desired and count["replicas"] == desired and count["availableReplicas"] == desired
    conditions = [
        _condition(old, "Available", "True" if available else "False",
                   "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                   "Deployment has minimum availability." if available
                   else "Deployment does not have minimum availability."),
        _condition(old, "Progressing", "True", "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                   f'ReplicaSet "{new_name}" has successfully progressed.' if complete
                   else f'ReplicaSet "{new_name}" is progressing.'),
    ]
    status: dict[str, Any] = {"observedGeneration": deployment["metadata"].get("generation", 1),
                              "replicas": count["replicas"], "updatedReplicas": updated,
                              "readyReplicas": count["readyReplicas"],
                              "availableReplicas": count["availableReplicas"], "conditions": conditions}
    status["unavailableReplicas"] = max(0, total - count["availableReplicas"])
    ownership.write_status(api, DEPLOYMENT_KEY, deployment, ownership.omit_zero(status), call)
