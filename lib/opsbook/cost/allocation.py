"""Kubernetes cost allocation by namespace and team, the OpenCost way, summing to the bill.

- Node cost (amortized, from the CUR by instance id) is split into CPU and memory by the
  node's vCPUs and GiB at OpenCost's default relative prices, then across namespaces by
  max(request, usage) of their pods on that node; what no pod claims is idle.
- Volume cost (by EBS volume id) goes to the namespace owning the PVC bound to it.
- Other cluster lines (nodes gone since, root volumes) are spread like the cluster's nodes.
- Shared pools (params `cost.allocation.shared`: EKS control plane, load balancer, NAT,
  the Datadog agent's and the add-ons' namespaces) are split over the team namespaces.
- Idle is shown as its own row, or shared (params `idle: share`).

The cluster's bill is every line tagged with the cluster, plus the lines a shared rule
matches in the cluster's region (or global) that no other cluster's tag claims; tax and
credits stay out (they are billed per product, not per resource). The allocation's rows
always add up to it.

Requests and usage are one snapshot of the cluster (metrics.k8s.io), applied to the
whole month: the notebook says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from kubernetes.utils.quantity import parse_quantity

from opsbook.cost.query import UNTAGGED, CostQuery, add_months
from opsbook.cost.sources import CostSource
from opsbook.errors import OpsbookError, UsageError
from opsbook.params import CostAllocation, Params, SharedCostRule

IDLE = "(idle)"
NO_TEAM = "(no team)"
GIB = 1024**3


# --- the cluster snapshot ----------------------------------------------------------------------


@dataclass
class ClusterSnapshot:
    nodes: pd.DataFrame  # node, instance_id, az, instance_type, node_group, cpu, memory_gib
    pods: pd.DataFrame  # namespace, pod, node, cpu_request, memory_request_gib, cpu_usage, memory_usage_gib
    volumes: pd.DataFrame  # volume_id, namespace, pvc, pv


def _instance_id(provider_id: str) -> str:
    """'aws:///eu-central-1a/i-0abc' -> 'i-0abc'."""
    if not provider_id.startswith("aws://"):
        return ""
    return provider_id.rstrip("/").rsplit("/", 1)[-1]


def _volume_id(pv: Any) -> str:
    spec = pv.spec
    if spec.csi is not None and spec.csi.volume_handle:
        return spec.csi.volume_handle
    if spec.aws_elastic_block_store is not None:
        return spec.aws_elastic_block_store.volume_id.rsplit("/", 1)[-1]
    return ""


def read_snapshot(api_client: Any) -> ClusterSnapshot:
    """Nodes, running pods with requests and usage, and bound EBS volumes, via the kubernetes client."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    nodes = []
    for node in core.list_node().items:
        labels = node.metadata.labels or {}
        capacity = node.status.capacity or {}
        nodes.append({
            "node": node.metadata.name,
            "instance_id": _instance_id(node.spec.provider_id or ""),
            "az": labels.get("topology.kubernetes.io/zone", ""),
            "instance_type": labels.get("node.kubernetes.io/instance-type", ""),
            "node_group": labels.get("eks.amazonaws.com/nodegroup", labels.get("nodegroup", "")),
            "cpu": float(parse_quantity(capacity.get("cpu", "0"))),
            "memory_gib": float(parse_quantity(capacity.get("memory", "0"))) / GIB,
        })
    try:
        metrics = client.CustomObjectsApi(api_client).list_cluster_custom_object("metrics.k8s.io", "v1beta1", "pods")
    except ApiException as exc:
        raise OpsbookError(
            f"metrics.k8s.io is not answering ({exc.status} {exc.reason}): allocation needs pod usage",
            remedy="check that metrics-server runs in the cluster (kubectl -n kube-system get deploy metrics-server)",
        ) from None
    usage: dict[tuple[str, str], tuple[float, float]] = {}
    for item in metrics.get("items", []):
        cpu = sum(float(parse_quantity(c["usage"].get("cpu", "0"))) for c in item.get("containers", []))
        mem = sum(float(parse_quantity(c["usage"].get("memory", "0"))) for c in item.get("containers", []))
        usage[(item["metadata"]["namespace"], item["metadata"]["name"])] = (cpu, mem / GIB)
    pods = []
    for pod in core.list_pod_for_all_namespaces().items:
        if (pod.status.phase or "") != "Running" or not pod.spec.node_name:
            continue
        cpu_req = mem_req = 0.0
        for container in pod.spec.containers:
            requests = (container.resources.requests if container.resources else None) or {}
            cpu_req += float(parse_quantity(requests.get("cpu", "0")))
            mem_req += float(parse_quantity(requests.get("memory", "0"))) / GIB
        cpu_use, mem_use = usage.get((pod.metadata.namespace, pod.metadata.name), (0.0, 0.0))
        pods.append({"namespace": pod.metadata.namespace, "pod": pod.metadata.name, "node": pod.spec.node_name,
                     "cpu_request": cpu_req, "memory_request_gib": mem_req,
                     "cpu_usage": cpu_use, "memory_usage_gib": mem_use})
    volumes = []
    for pv in core.list_persistent_volume().items:
        claim = pv.spec.claim_ref
        if claim is None or not _volume_id(pv):
            continue
        volumes.append({"volume_id": _volume_id(pv), "namespace": claim.namespace, "pvc": claim.name,
                        "pv": pv.metadata.name})
    return ClusterSnapshot(
        pd.DataFrame(nodes, columns=["node", "instance_id", "az", "instance_type", "node_group", "cpu", "memory_gib"]),
        pd.DataFrame(pods, columns=["namespace", "pod", "node", "cpu_request", "memory_request_gib",
                                    "cpu_usage", "memory_usage_gib"]),
        pd.DataFrame(volumes, columns=["volume_id", "namespace", "pvc", "pv"]),
    )


# --- the cluster's lines ---------------------------------------------------------------------


def assign_rules(frame: pd.DataFrame, rules: list[SharedCostRule]) -> pd.Series:
    """The first shared rule matching each line (by product code or usage type), else None."""
    out = pd.Series(None, index=frame.index, dtype=object)
    for rule in reversed(rules):  # earlier rules win
        match = frame["service"].isin(rule.product_codes)
        for part in rule.usage_type_contains:
            match |= frame["usage_type"].str.contains(part, regex=False)
        out[match] = rule.name
    return out


def cluster_lines(source: CostSource, params: Params, month: date) -> pd.DataFrame:
    """The month's amortized CUR lines that make up the cluster's bill, by resource."""
    settings = params.cost.allocation
    tag = f"tag:{settings.cluster_tag}"
    frame = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY",
                                   ("resource_id", "service", "usage_type", "region", tag), "amortized",
                                   exclude={"record_type": ("Tax", "Credit")}))
    cluster = params.eks.cluster_name
    frame = frame.rename(columns={tag: "cluster"})
    frame["rule"] = assign_rules(frame, settings.shared)
    tagged = frame["cluster"] == cluster
    shared_here = frame["rule"].notna() & frame["region"].isin([params.region, "global"]) & (
        frame["cluster"] == UNTAGGED)
    return frame[tagged | shared_here].reset_index(drop=True)


# --- allocating ------------------------------------------------------------------------------


@dataclass
class Allocation:
    table: pd.DataFrame  # one row per namespace (+ idle, + unshared pools): cost columns and total
    shared: pd.DataFrame  # namespace x shared rule
    nodes: pd.DataFrame  # per node: cost, CPU and memory claimed, idle share
    lines: pd.DataFrame  # the cluster's lines and how each was treated
    cluster_bill: float
    notes: list[str] = field(default_factory=list)


def _split(pool: float, weights: pd.Series) -> pd.Series:
    total = float(weights.sum())
    if total <= 0:
        return weights * 0.0
    return weights / total * pool


def _treatment(lines: pd.DataFrame, snapshot: ClusterSnapshot) -> np.ndarray:
    """How each line is split: by its shared rule, as a running node, as a bound volume, or pooled.

    pooled: cluster EC2 lines with no running node or PV (nodes since removed, root volumes).
    """
    rid = lines["resource_id"]
    return np.select(
        [lines["rule"].notna().to_numpy(), rid.isin(snapshot.nodes["instance_id"]).to_numpy(),
         rid.isin(snapshot.volumes["volume_id"]).to_numpy()],
        ["shared", "node", "volume"], "pooled")


def _split_nodes(node_cost: pd.Series, snapshot: ClusterSnapshot,
                 ratio: float) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame]:
    """Each node's cost split into CPU and memory, then over the namespaces claiming them.

    Vectorized over all (node, namespace) claims at once: a loop per node filtering the pods
    grows with nodes x pods. Returns the per-namespace cpu/memory cost (namespaces in order of
    first claim, node by node), the idle cpu/memory cost and one row per node.
    """
    info = snapshot.nodes.set_index("instance_id", drop=False).loc[node_cost.index]
    cost = node_cost.to_numpy(dtype=float)
    cpu_w, mem_w = info["cpu"].to_numpy(dtype=float) * ratio, info["memory_gib"].to_numpy(dtype=float)
    part = {"cpu": cost * cpu_w / (cpu_w + mem_w), "memory": cost * mem_w / (cpu_w + mem_w)}
    capacity = {"cpu": info["cpu"].to_numpy(dtype=float), "memory": info["memory_gib"].to_numpy(dtype=float)}
    pods = snapshot.pods.assign(
        cpu=snapshot.pods[["cpu_request", "cpu_usage"]].max(axis=1),
        memory=snapshot.pods[["memory_request_gib", "memory_usage_gib"]].max(axis=1),
    )
    # one row per (node, namespace), in the nodes' cost order, namespaces sorted within a node
    claims = pods.groupby(["node", "namespace"])[["cpu", "memory"]].sum().reset_index()
    position = pd.DataFrame({"node": info["node"].to_numpy(), "pos": np.arange(len(info))})
    claims = claims.merge(position, on="node").sort_values("pos", kind="stable")
    pos = claims["pos"].to_numpy()
    per_ns: dict[str, pd.Series] = {}
    idle: dict[str, float] = {}
    claimed: dict[str, np.ndarray] = {}
    for res in ("cpu", "memory"):
        cap = capacity[res][pos]
        amount = claims[res].to_numpy(dtype=float)
        share = np.divide(amount, cap, out=amount * 0, where=cap != 0)
        total = np.bincount(pos, weights=share, minlength=len(info))
        # usage above capacity: the node is fully claimed, nothing idle
        share = share / np.where(total > 1, total, 1.0)[pos]
        claimed[res] = np.bincount(pos, weights=share, minlength=len(info))
        per_ns[res] = pd.Series(part[res][pos] * share).groupby(claims["namespace"].to_numpy(), sort=False).sum()
        idle[res] = float((part[res] * (1 - claimed[res])).sum())
    node_rows = pd.DataFrame({
        "node": info["node"].to_numpy(), "instance_id": node_cost.index.to_numpy(),
        "node_group": info["node_group"].to_numpy(), "instance_type": info["instance_type"].to_numpy(),
        "cost": cost, "cpu_claimed_pct": claimed["cpu"] * 100, "memory_claimed_pct": claimed["memory"] * 100,
    })
    return pd.DataFrame(per_ns), idle, node_rows


def allocate(lines: pd.DataFrame, snapshot: ClusterSnapshot, settings: CostAllocation,
             teams: dict[str, str]) -> Allocation:
    """Split the cluster's lines over namespaces (see the module's docstring)."""
    lines = lines.copy()
    lines["treated_as"] = _treatment(lines, snapshot)
    cols = ["cpu", "memory", "volumes", "other_node_costs"]
    ratio = settings.cpu_core_hour_usd / settings.ram_gib_hour_usd
    node_cost = lines[lines["treated_as"] == "node"].groupby("resource_id")["cost"].sum()
    compute, idle, node_rows = _split_nodes(node_cost, snapshot, ratio)
    pv_owner = dict(zip(snapshot.volumes["volume_id"], snapshot.volumes["namespace"], strict=True))
    vol = lines[lines["treated_as"] == "volume"]
    volumes = vol["cost"].groupby(vol["resource_id"].map(pv_owner).to_numpy(), sort=False).sum()
    names = list(dict.fromkeys([*compute.index, *volumes.index]))
    direct = pd.DataFrame({"cpu": compute.get("cpu"), "memory": compute.get("memory"), "volumes": volumes,
                           "other_node_costs": 0.0}, index=pd.Index(names, dtype=object), columns=cols)
    direct = direct.fillna(0.0).astype(float)
    # pooled node costs go where the nodes' cost went, idle included
    pooled = float(lines.loc[lines["treated_as"] == "pooled", "cost"].sum())
    node_alloc = direct["cpu"] + direct["memory"]
    node_total = float(node_alloc.sum()) + idle["cpu"] + idle["memory"]
    notes = []
    if node_total > 0:
        direct["other_node_costs"] = node_alloc / node_total * pooled
        idle_pooled = (idle["cpu"] + idle["memory"]) / node_total * pooled
    else:
        idle_pooled = pooled
        if pooled:
            notes.append("no running node matched the CUR's instances: all node costs are shown as idle")
    direct["direct"] = direct[cols].sum(axis=1)
    # shared pools: namespaces named by rules hand their cost over; product rules bring their lines
    shared_ns = {ns for rule in settings.shared for ns in rule.namespaces}
    # the team namespaces: everything not itself shared that has a cost of its own
    targets = direct.loc[[ns for ns in direct.index if ns not in shared_ns and direct.at[ns, "direct"] > 0], "direct"]
    shared = pd.DataFrame(0.0, index=targets.index, columns=[r.name for r in settings.shared])
    unshared: dict[str, float] = {}
    for rule in settings.shared:
        pool = float(lines.loc[lines["rule"] == rule.name, "cost"].sum())
        pool += float(direct.loc[[ns for ns in rule.namespaces if ns in direct.index], "direct"].sum())
        if pool == 0:
            continue
        if rule.split == "even":
            weights = pd.Series(1.0, index=targets.index)
        elif rule.split == "weights":
            weights = pd.Series({ns: rule.weights.get(ns, 0.0) for ns in targets.index}, dtype=float)
        else:
            weights = targets.clip(lower=0)
        if weights.sum() <= 0:
            unshared[f"(shared: {rule.name})"] = pool
            continue
        shared[rule.name] = _split(pool, weights)
    table = direct.loc[targets.index, cols].copy()
    table["shared"] = shared.sum(axis=1)
    idle_total = idle["cpu"] + idle["memory"] + idle_pooled
    if settings.idle == "share" and targets.sum() > 0:
        table["idle"] = _split(idle_total, targets.clip(lower=0))
    else:
        table["idle"] = 0.0
        table.loc[IDLE] = 0.0
        table.loc[IDLE, "cpu"], table.loc[IDLE, "memory"] = idle["cpu"], idle["memory"]
        table.loc[IDLE, "other_node_costs"] = idle_pooled
    for name, pool in unshared.items():
        table.loc[name] = 0.0
        table.loc[name, "shared"] = pool
    table["total"] = table[[*cols, "shared", "idle"]].sum(axis=1)
    table.insert(0, "team", [teams.get(ns, NO_TEAM) if not ns.startswith("(") else "" for ns in table.index])
    table = table.rename_axis("namespace").reset_index()
    table = table.sort_values("total", ascending=False).reset_index(drop=True)
    return Allocation(table, shared.rename_axis("namespace").reset_index(), node_rows, lines,
                      float(lines["cost"].sum()), notes)


def by_team(allocation: Allocation) -> pd.DataFrame:
    table = allocation.table
    out = table.assign(team=table["team"].where(table["team"] != "", table["namespace"]))
    return out.groupby("team", as_index=False)["total"].sum().sort_values("total", ascending=False)


def allocate_month(source: CostSource, params: Params, api_client: Any, month: date, idle: str = "") -> Allocation:
    """The month's cluster bill from the CUR, split with the cluster's current snapshot.

    `idle`: "show" or "share" overrides params `cost.allocation.idle`.
    """
    settings = params.cost.allocation
    if idle:
        if idle not in ("show", "share"):
            raise UsageError(f"idle: expected 'show' or 'share', got {idle!r}")
        settings = settings.model_copy(update={"idle": idle})
    lines = cluster_lines(source, params, month)
    if lines.empty:
        raise OpsbookError(
            f"no CUR lines for cluster {params.eks.cluster_name} in {month:%Y-%m} (none carry the "
            f"'{params.cost.allocation.cluster_tag}' tag)",
            remedy=f"check that the '{params.cost.allocation.cluster_tag}' tag is activated as a cost allocation "
                   "tag (Billing console, Cost allocation tags); it shows in the CUR from its activation on",
        )
    teams = {ns.name: ns.team for ns in params.namespaces}
    return allocate(lines, read_snapshot(api_client), settings, teams)
