"""metrics.k8s.io: PodMetrics and NodeMetrics computed from the pods in the store.

Usage is deterministic (a hash of the pod and container names scales the container's
request), so cost allocation that reads `max(request, usage)` sees both cases: some
containers use less than they request, some more.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube.errors import not_found

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api
    from opsbook.sandbox.kube.resources import ResourceType

WINDOW = "30s"
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)$")
_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50),
}
# Usage of a container without a request (sidecars, BestEffort pods).
IDLE_CPU_CORES = Decimal("0.01")
IDLE_MEMORY_BYTES = Decimal(64 * 1024**2)
# Share of a node's capacity the kubelet, runtime and OS use beyond the pods.
SYSTEM_SHARE = Decimal("0.04")


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("500m", "2", "16Gi", "1e3") as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity {value!r}: expected a number with a unit such as 500m or 16Gi")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def _fraction(*parts: str) -> Decimal:
    """A stable factor in [0.20, 1.40) from the names."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return Decimal("0.20") + Decimal(int.from_bytes(digest[:4], "big") % 1200) / Decimal(1000)


def container_usage(namespace: str, pod: str, container: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(cpu cores, memory bytes) a container uses."""
    requests = (container.get("resources") or {}).get("requests") or {}
    name = container.get("name", "")
    cpu = parse_quantity(requests["cpu"]) if "cpu" in requests else IDLE_CPU_CORES
    memory = parse_quantity(requests["memory"]) if "memory" in requests else IDLE_MEMORY_BYTES
    return cpu * _fraction(namespace, pod, name, "cpu"), memory * _fraction(namespace, pod, name, "memory")


def _cpu(cores: Decimal) -> str:
    return f"{int(cores * 10**9)}n"


def _memory(num_bytes: Decimal) -> str:
    return f"{int(num_bytes / 1024)}Ki"


def _running_pods(api: Api, namespace: str | None) -> list[dict[str, Any]]:
    pods, _ = api.store.list("/pods", namespace)
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]


def pod_metrics(pod: dict[str, Any], rtype: ResourceType) -> dict[str, Any]:
    meta = pod["metadata"]
    containers = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        cpu, memory = container_usage(meta["namespace"], meta["name"], container)
        containers.append({"name": container["name"], "usage": {"cpu": _cpu(cpu), "memory": _memory(memory)}})
    return {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": meta.get("labels", {}),
                     "creationTimestamp": meta.get("creationTimestamp")},
        "timestamp": (pod.get("status") or {}).get("startTime") or meta.get("creationTimestamp"),
        "window": WINDOW,
        "containers": containers,
    }


def node_metrics(node: dict[str, Any], pods: list[dict[str, Any]], rtype: ResourceType) -> dict[str, Any]:
    name = node["metadata"]["name"]
    capacity = (node.get("status") or {}).get("capacity") or {}
    cpu = parse_quantity(capacity.get("cpu", "0")) * SYSTEM_SHARE
    memory = parse_quantity(capacity.get("memory", "0")) * SYSTEM_SHARE
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != name:
            continue
        for container in pod["spec"].get("containers") or []:
            c_cpu, c_memory = container_usage(pod["metadata"]["namespace"], pod["metadata"]["name"], container)
            cpu, memory = cpu + c_cpu, memory + c_memory
    return {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": {"name": name, "labels": node["metadata"].get("labels", {}),
                     "creationTimestamp": node["metadata"].get("creationTimestamp")},
        "timestamp": node["metadata"].get("creationTimestamp"),
        "window": WINDOW,
        "usage": {"cpu": _cpu(cpu), "memory": _memory(memory)},
    }


def list_(api: Api, rtype: ResourceType, namespace: str | None) -> list[dict[str, Any]]:
    if rtype.plural == "pods":
        return [pod_metrics(p, rtype) for p in _running_pods(api, namespace)]
    nodes, _ = api.store.list("/nodes")
    pods = _running_pods(api, None)
    return [node_metrics(n, pods, rtype) for n in nodes]


def get(api: Api, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
    for item in list_(api, rtype, namespace):
        if item["metadata"]["name"] == name:
            return item
    raise not_found(rtype.group_resource, name, rtype.group, rtype.plural)
