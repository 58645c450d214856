"""Where the seed puts pods: a node with room (as the scheduler would) and an IP of its AZ's subnet."""

from __future__ import annotations

import ipaddress
from typing import Any

from opsbook.errors import OpsbookError
from opsbook.params import Params
from opsbook.sandbox.kube import objects
from opsbook.sandbox.kube.metrics import parse_quantity

# First host of an AZ's private subnet given to pods (the VPC CNI hands out secondary IPs).
POD_IP_OFFSET = 1024


class Placement:
    """Schedules pods on nodes: the least-requested node (by CPU share) that still fits the pod.

    A pod that fits nowhere (e.g. params omit a node group) stays Pending, as the scheduler leaves it.
    """

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.nodes = {n["name"]: n for n in nodes}
        self.free: dict[str, list[Any]] = {}
        for node in nodes:
            body = objects.node(node, "", "0")
            alloc = body["status"]["allocatable"]
            self.free[node["name"]] = [parse_quantity(alloc["cpu"]), parse_quantity(alloc["memory"]),
                                       int(alloc["pods"])]
        self.capacity = {name: free[0] for name, free in self.free.items()}

    def place(self, resources: dict[str, Any], candidates: list[str] | None = None) -> dict[str, Any] | None:
        requests = resources.get("requests") or {}
        cpu = parse_quantity(requests.get("cpu", "0"))
        memory = parse_quantity(requests.get("memory", "0"))
        names = candidates if candidates is not None else sorted(self.nodes)
        fitting = [n for n in names if self.free[n][0] >= cpu and self.free[n][1] >= memory and self.free[n][2] > 0]
        if not fitting:
            return None
        best = min(fitting, key=lambda n: (1 - self.free[n][0] / self.capacity[n], n))
        self.free[best][0] -= cpu
        self.free[best][1] -= memory
        self.free[best][2] -= 1
        return self.nodes[best]


class PodIPs:
    """Pod IPs from the private subnet of the node's AZ, skipping the nodes' own addresses."""

    def __init__(self, params: Params, nodes: list[dict[str, Any]]) -> None:
        self.subnets = dict(zip(params.network.azs, params.network.private_subnets, strict=True))
        self.taken = {n["private_ip"] for n in nodes}
        self.next: dict[str, int] = {}

    def allocate(self, az: str) -> str:
        if az not in self.subnets:
            raise OpsbookError(f"kube seed: node AZ {az} is not in params network.azs ({', '.join(self.subnets)})")
        subnet = ipaddress.IPv4Network(self.subnets[az])
        while True:
            offset = self.next.get(az, min(POD_IP_OFFSET, subnet.num_addresses // 2))
            self.next[az] = offset + 1
            ip = str(subnet[offset])
            if ip not in self.taken:
                self.taken.add(ip)
                return ip
