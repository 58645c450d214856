"""The StatefulSet controller of kube-controller-manager.

Follows k8s.io/kubernetes pkg/controller/statefulset (stateful_set_control.go,
stateful_set_utils.go, stateful_pod_control.go): pods `<set>-<ordinal>` from
`spec.ordinals.start`, each with its claims `<template>-<set>-<ordinal>` (created first, with
the template's labels and the set's selector labels); OrderedReady creates one pod at a time
and waits for it to run and be ready, Parallel does not wait; scaling down deletes the highest
ordinal first (one at a time for OrderedReady). The claims' owner references follow
`persistentVolumeClaimRetentionPolicy`: whenDeleted=Delete makes the set own them (the garbage
collector deletes them with it), whenScaled=Delete makes a condemned pod own its claims (they
go with the pod); Retain leaves them. RollingUpdate replaces pods whose
controller-revision-hash is not the update revision, highest ordinal first, down to the
partition, one at a time while all others are ready. Status counts replicas, ready, current and
updated pods; currentRevision becomes updateRevision once every pod is updated and ready.

Revisions are named `<set>-<hash of the pod template>` (objects.revision_name) instead of being
stored as ControllerRevisions, which this API does not serve: the same template always has the
same revision, so a restored set and its restored pods agree.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube import events, ownership
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.objects import revision_name

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.loop import ControllerLoop

STS_KEY, POD_KEY, PVC_KEY = ("apps", "v1", "statefulsets"), ("", "v1", "pods"), ("", "v1", "persistentvolumeclaims")
REVISION_LABEL = "controller-revision-hash"
COMPONENT = "statefulset-controller"


def register(loop: ControllerLoop) -> None:
    loop.on("apps/statefulsets", lambda e: loop.enqueue("statefulset", e.namespace, e.obj["metadata"]["name"]))
    loop.on("/pods", lambda e: loop.enqueue_owner(e, "StatefulSet", "statefulset"))
    loop.reconciler("statefulset", partial(sync_statefulset, loop.api))


class _Set:
    """One sync of a StatefulSet: its spec read once, its pods by ordinal."""

    def __init__(self, api: Api, sts: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        self.api, self.sts, self.call = api, sts, ownership.controller_call()
        self.name, self.namespace = sts["metadata"]["name"], sts["metadata"]["namespace"]
        spec = sts["spec"]
        self.start = (spec.get("ordinals") or {}).get("start", 0)
        self.wanted = range(self.start, self.start + spec.get("replicas", 1))
        self.ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        self.update_revision = revision_name(self.name, spec.get("template") or {})
        self.pods = {o: p for p in pods if (o := self.ordinal(p)) is not None}

    def ordinal(self, pod: dict[str, Any]) -> int | None:
        prefix, _, number = pod["metadata"]["name"].rpartition("-")
        return int(number) if prefix == self.name and number.isdigit() else None

    def pod_name(self, ordinal: int) -> str:
        return f"{self.name}-{ordinal}"

    def event(self, reason: str, message: str) -> None:
        events.record(self.api, self.sts, reason, message, COMPONENT)

    # --- claims ----------------------------------------------------------------------------------

    def policy(self, when: str) -> str:
        return (self.sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}).get(when, "Retain")

    def claim_name(self, template: dict[str, Any], ordinal: int) -> str:
        return f"{template['metadata']['name']}-{self.name}-{ordinal}"

    def claim_owners(self, claim: dict[str, Any] | None, owner: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The claim's owner references: the set's or the pod's as the retention policy says, others kept."""
        uids = {self.sts["metadata"]["uid"]} | {p["metadata"]["uid"] for p in self.pods.values()}
        refs = [r for r in ((claim or {}).get("metadata", {}).get("ownerReferences") or []) if r.get("uid") not in uids]
        if self.policy("whenDeleted") == "Delete":
            refs.append({**ownership.controller_ref(self.sts), "controller": False})
        if owner is not None:
            refs.append({**ownership.controller_ref(owner), "controller": False})
        return refs

    def ensure_claims(self, ordinal: int) -> None:
        pvc_type = self.api.resource(*PVC_KEY)
        selector_labels = (self.sts["spec"].get("selector") or {}).get("matchLabels") or {}
        for template in self.sts["spec"].get("volumeClaimTemplates") or []:
            name = self.claim_name(template, ordinal)
            if self.api.store.get("/persistentvolumeclaims", self.namespace, name) is not None:
                continue
            body = {"metadata": {"name": name, "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                                                          **selector_labels},
                                 "annotations": (template.get("metadata") or {}).get("annotations") or {},
                                 "ownerReferences": self.claim_owners(None, None)},
                    "spec": copy.deepcopy(template.get("spec") or {})}
            self.api.create(pvc_type, self.namespace, body, self.call)
            self.event("SuccessfulCreate",
                       f"create Claim {name} Pod {self.pod_name(ordinal)} in StatefulSet {self.name} success")

    def hand_claims_to(self, pod: dict[str, Any], ordinal: int) -> None:
        """whenScaled=Delete: a condemned pod owns its claims, so they go with it."""
        if self.policy("whenScaled") != "Delete":
            return
        pvc_type = self.api.resource(*PVC_KEY)
        for template in self.sts["spec"].get("volumeClaimTemplates") or []:
            claim = self.api.store.get("/persistentvolumeclaims", self.namespace, self.claim_name(template, ordinal))
            if claim is not None:
                self.api.patch(pvc_type, self.namespace, claim["metadata"]["name"],
                               {"metadata": {"ownerReferences": self.claim_owners(claim, pod)}}, ownership.MERGE,
                               call=self.call)

    # --- pods ------------------------------------------------------------------------------------

    def new_pod(self, ordinal: int) -> dict[str, Any]:
        template = copy.deepcopy(self.sts["spec"].get("template") or {})
        name = self.pod_name(ordinal)
        labels = {**ownership.template_labels(template), "statefulset.kubernetes.io/pod-name": name,
                  "apps.kubernetes.io/pod-index": str(ordinal), REVISION_LABEL: self.update_revision}
        spec = template.get("spec") or {}
        spec["hostname"] = name
        if self.sts["spec"].get("serviceName"):
            spec["subdomain"] = self.sts["spec"]["serviceName"]
        claims = {t["metadata"]["name"]: self.claim_name(t, ordinal)
                  for t in self.sts["spec"].get("volumeClaimTemplates") or []}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
        spec["volumes"] = volumes + [{"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in claims.items()]
        return {"metadata": {"name": name, "labels": labels,
                             "annotations": (template.get("metadata") or {}).get("annotations") or {},
                             "ownerReferences": [ownership.controller_ref(self.sts)]},
                "spec": spec}

    def create(self, ordinal: int) -> None:
        self.ensure_claims(ordinal)
        try:
            self.api.create(self.api.resource(*POD_KEY), self.namespace, self.new_pod(ordinal), self.call)
        except ApiError as exc:
            if exc.code == 409:
                return  # the previous pod of this name is still terminating
            raise
        self.event("SuccessfulCreate", f"create Pod {self.pod_name(ordinal)} in StatefulSet {self.name} successful")

    def delete(self, pod: dict[str, Any]) -> None:
        if ownership.delete(self.api, "", "pods", pod, self.call):
            self.event("SuccessfulDelete",
                       f"delete Pod {pod['metadata']['name']} in StatefulSet {self.name} successful")

    def healthy(self, pod: dict[str, Any]) -> bool:
        return ownership.pod_ready(pod) and (pod.get("status") or {}).get("phase") == "Running"

    # --- the three passes ------------------------------------------------------------------------

    def run_replicas(self) -> bool:
        """Create and replace the wanted pods; False when an OrderedReady set must wait."""
        for ordinal in self.wanted:
            pod = self.pods.get(ordinal)
            if pod is None:
                self.create(ordinal)
                if self.ordered:
                    return False
            elif (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded") and ownership.live(pod):
                self.delete(pod)
                if self.ordered:
                    return False
            elif self.ordered and not self.healthy(pod):
                return False
        return True

    def run_condemned(self) -> None:
        """Delete the pods beyond the wanted ordinals, highest first."""
        for ordinal in sorted((o for o in self.pods if o not in self.wanted), reverse=True):
            pod = self.pods[ordinal]
            if not ownership.live(pod):
                if self.ordered:
                    return
                continue
            self.hand_claims_to(pod, ordinal)
            self.delete(pod)
            if self.ordered:
                return

    def run_rolling_update(self) -> None:
        strategy = self.sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        wanted = [self.pods.get(o) for o in self.wanted]
        if any(p is None or not self.healthy(p) for p in wanted):
            return
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        for ordinal in sorted(self.wanted, reverse=True):
            pod = self.pods[ordinal]
            if ordinal >= self.start + partition and \
                    (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != self.update_revision:
                self.delete(pod)
                return

    def status(self) -> dict[str, Any]:
        previous = self.sts.get("status") or {}
        current_revision = previous.get("currentRevision") or self.update_revision
        pods, _ = self.api.store.list("/pods", self.namespace)
        uid = self.sts["metadata"]["uid"]
        mine = [p for p in pods if (ownership.controller_of(p) or {}).get("uid") == uid]
        created = [p for p in mine if ownership.live(p)]
        revisions = [(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in created]
        ready = sum(1 for p in mine if self.healthy(p))
        updated = revisions.count(self.update_revision)
        replicas = self.sts["spec"].get("replicas", 1)
        if updated == replicas and ready == replicas == len(mine):
            current_revision = self.update_revision
        status = {"observedGeneration": self.sts["metadata"].get("generation", 1), "replicas": len(mine),
                  "readyReplicas": ready, "currentReplicas": revisions.count(current_revision),
                  "updatedReplicas": updated, "availableReplicas": ready, "currentRevision": current_revision,
                  "updateRevision": self.update_revision, "collisionCount": previous.get("collisionCount", 0)}
        return ownership.omit_zero(status, keep=("replicas", "availableReplicas", "collisionCount"))


def sync_statefulset(api: Api, namespace: str, name: str) -> None:
    sts = ownership.read(api, "apps", "statefulsets", namespace, name)
    if not ownership.live(sts):
        return
    call = ownership.controller_call()
    pods = ownership.claim(api, sts, ownership.pods_in(api, namespace), sts["spec"].get("selector"), POD_KEY, call)
    one = _Set(api, sts, pods)
    if one.run_replicas():
        one.run_condemned()
        one.run_rolling_update()
    fresh = ownership.read(api, "apps", "statefulsets", namespace, name)
    if ownership.live(fresh):
        one.sts = fresh
        ownership.write_status(api, STS_KEY, fresh, one.status(), call)

