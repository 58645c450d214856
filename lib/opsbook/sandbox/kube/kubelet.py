"""The nodes' kubelets: pods on a node start, run, and stop when deleted; unscheduled ones go to the scheduler.

A pod bound to a node that exists goes through the kubelet's steps (k8s.io/kubernetes
pkg/kubelet: kubelet.go syncPod, status/generate.go for the conditions, kuberuntime for the
events): first Pending with its containers `ContainerCreating`, an IP and a `Pulled` event per
container; `start_seconds` later Running and Ready, init containers completed, `Created` /
`Started` events, and the container's log started. Deleting it (graceful deletion, see
Api.delete) stops its containers (`Killing` events) and `stop_seconds` later the kubelet
deletes it for good (grace period 0), as a kubelet confirms a pod's termination. Event texts
are those of pkg/kubelet/events and kuberuntime_container.go.

Pod IPs come from the node's zone's subnet (the VPC CNI gives pods addresses of the node's
subnet), from `api.pod_subnets`; without one, from the node's own /24.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube import events, ownership, scheduler
from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.objects import now

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.loop import ControllerLoop

COMPONENT = "kubelet"
CREATING = "ContainerCreating"
START_SECONDS = 0.2
STOP_SECONDS = 0.3
ZONE_LABEL = "topology.kubernetes.io/zone"


def register(loop: ControllerLoop) -> None:
    kubelets = Kubelets(loop.api)
    api = loop.api

    def on_pod(event: Any) -> None:
        if event.type == "DELETED":
            api.logs.forget(event.obj["metadata"]["uid"])
            _requeue_pending(loop, api, None)
        else:
            loop.enqueue("pod", event.namespace, event.obj["metadata"]["name"])

    loop.on("/pods", on_pod)
    loop.on("/nodes", lambda e: _requeue_pending(loop, api, None))
    loop.on("/persistentvolumeclaims", lambda e: _requeue_pending(loop, api, e.namespace))
    loop.reconciler("pod", kubelets.sync)


def _requeue_pending(loop: ControllerLoop, api: Api, namespace: str | None) -> None:
    """Something changed that may let unscheduled pods fit: the scheduler tries them again."""
    pods, _ = api.store.list("/pods", namespace)
    for pod in pods:
        if not (pod.get("spec") or {}).get("nodeName") and (pod.get("status") or {}).get("phase") == "Pending":
            loop.enqueue("pod", pod["metadata"]["namespace"], pod["metadata"]["name"], 0.05)


def _container_id(pod: dict[str, Any], name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{pod['metadata']['uid']}/{name}".encode()).hexdigest()


def _image_id(image: str) -> str:
    return f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _conditions(ready: bool, names: list[str], stamp: str) -> list[dict[str, Any]]:
    """status/generate.go: the pod conditions while containers are (not) ready."""
    def cond(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        out = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": stamp}
        if not ok and reason:
            out.update(reason=reason, message=message)
        return out

    unready = f"containers with unready status: [{' '.join(names)}]"
    return [cond("PodReadyToStartContainers", ready), cond("Initialized", True),
            cond("Ready", ready, "ContainersNotReady", unready),
            cond("ContainersReady", ready, "ContainersNotReady", unready), cond("PodScheduled", True)]


class Kubelets:
    """Every node's kubelet (one reconciler: the pod's node decides what happens)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.stopping: dict[str, float] = {}  # pod uid -> when its containers have stopped
        self.starting: dict[str, float] = {}  # pod uid -> when its containers have started

    def sync(self, namespace: str, name: str) -> float | None:
        pod = self.api.store.get("/pods", namespace, name)
        if pod is None:
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self.api.store.get("/nodes", "", node_name) if node_name else None
        if pod["metadata"].get("deletionTimestamp"):
            return self.terminate(pod, node)
        status = pod.get("status") or {}
        if not node_name:
            return scheduler.schedule(self.api, pod) if status.get("phase", "Pending") == "Pending" else None
        if node is None or status.get("phase") != "Pending":
            return None
        statuses = status.get("containerStatuses") or []
        uid = pod["metadata"]["uid"]
        if not statuses:
            self.create_containers(pod, node)
            self.starting[uid] = time.monotonic() + START_SECONDS
            return START_SECONDS
        if all((s.get("state") or {}).get("waiting", {}).get("reason") == CREATING for s in statuses):
            due = self.starting.get(uid, 0.0)
            if time.monotonic() < due:
                return due - time.monotonic()
            self.starting.pop(uid, None)
            self.start_containers(pod, node)
        return None

    def _patch_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.api.patch(self.api.resource("", "v1", "pods"), pod["metadata"]["namespace"], pod["metadata"]["name"],
                       {"status": status}, "application/merge-patch+json", "status", Call(manager=COMPONENT))

    def _event(self, pod: dict[str, Any], node: dict[str, Any], reason: str, message: str, container: str) -> None:
        events.record(self.api, pod, reason, message, COMPONENT, host=node["metadata"]["name"],
                      field_path=f"spec.containers{{{container}}}")

    def create_containers(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        stamp = now()
        containers = (pod.get("spec") or {}).get("containers") or []
        node_ip = self.node_ip(node)
        pod_ip = node_ip if (pod.get("spec") or {}).get("hostNetwork") else self.allocate_ip(node)
        self._patch_status(pod, {
            "phase": "Pending", "conditions": _conditions(False, [c["name"] for c in containers], stamp),
            "hostIP": node_ip, "hostIPs": [{"ip": node_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "startTime": stamp,
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                                   "started": False, "restartCount": 0, "state": {"waiting": {"reason": CREATING}},
                                   "lastState": {}} for c in containers]})
        for container in containers:
            self._event(pod, node, "Pulled", f'Container image "{container.get("image", "")}" already present on '
                                             "machine", container["name"])

    def start_containers(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        stamp = now()
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        status: dict[str, Any] = {
            "phase": "Running", "conditions": _conditions(True, [], stamp),
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""),
                                   "imageID": _image_id(c.get("image", "")), "containerID": _container_id(pod, c["name"]),
                                   "ready": True, "started": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": stamp}}, "lastState": {}} for c in containers]}
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [self._init_status(pod, c, stamp) for c in spec["initContainers"]]
        self._patch_status(pod, status)
        for container in containers:
            self._event(pod, node, "Created", f"Created container: {container['name']}", container["name"])
            self._event(pod, node, "Started", f"Started container {container['name']}", container["name"])
            self.api.logs.started(pod, container, node["metadata"]["name"])

    @staticmethod
    def _init_status(pod: dict[str, Any], container: dict[str, Any], stamp: str) -> dict[str, Any]:
        sidecar = container.get("restartPolicy") == "Always"
        state = {"running": {"startedAt": stamp}} if sidecar else {"terminated": {
            "exitCode": 0, "reason": "Completed", "startedAt": stamp, "finishedAt": stamp,
            "containerID": _container_id(pod, container["name"])}}
        return {"name": container["name"], "image": container.get("image", ""),
                "imageID": _image_id(container.get("image", "")), "containerID": _container_id(pod, container["name"]),
                "ready": sidecar, "started": sidecar, "restartCount": 0, "state": state, "lastState": {}}

    def terminate(self, pod: dict[str, Any], node: dict[str, Any] | None) -> float | None:
        """Stop the containers of a deleted pod, then confirm the deletion (grace period 0)."""
        uid = pod["metadata"]["uid"]
        running = node is not None and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        if running and uid not in self.stopping:
            self.stopping[uid] = time.monotonic() + STOP_SECONDS
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if (status.get("state") or {}).get("running") is not None:
                    self._event(pod, node, "Killing", f"Stopping container {status['name']}", status["name"])
            return STOP_SECONDS
        if running and time.monotonic() < self.stopping[uid]:
            return self.stopping[uid] - time.monotonic()
        self.stopping.pop(uid, None)
        ownership.delete(self.api, "", "pods", pod, Call(manager=COMPONENT), grace_seconds=0)
        return None

    # --- addresses -------------------------------------------------------------------------------

    @staticmethod
    def node_ip(node: dict[str, Any]) -> str:
        addresses = (node.get("status") or {}).get("addresses") or []
        return next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "")

    def allocate_ip(self, node: dict[str, Any]) -> str:
        zone = (node["metadata"].get("labels") or {}).get(ZONE_LABEL, "")
        cidr = self.api.pod_subnets.get(zone) or f"{self.node_ip(node) or '10.0.0.1'}/24"
        subnet = ipaddress.IPv4Network(cidr, strict=False)
        pods, _ = self.api.store.list("/pods")
        nodes, _ = self.api.store.list("/nodes")
        taken = {ip.get("ip") for p in pods for ip in (p.get("status") or {}).get("podIPs") or []}
        taken |= {self.node_ip(n) for n in nodes}
        start = subnet.num_addresses * 5 // 8
        for offset in range(start, subnet.num_addresses - 1):
            address = str(subnet[offset])
            if address not in taken:
                return address
        return str(subnet[start])
