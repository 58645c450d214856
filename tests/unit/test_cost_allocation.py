"""The allocation on a cluster built by hand: each number worked out independently here."""

from __future__ import annotations

import pandas as pd
import pytest
from opsbook.cost.allocation import IDLE, ClusterSnapshot, allocate
from opsbook.params import CostAllocation, SharedCostRule

# one node of 4 vCPU / 16 GiB costing $100, equal CPU and memory weights for easy arithmetic
SETTINGS = CostAllocation(cpu_core_hour_usd=4.0, ram_gib_hour_usd=1.0, shared=[
    SharedCostRule(name="control-plane", product_codes=["AmazonEKS"]),
    SharedCostRule(name="agent", namespaces=["datadog"]),
])


def snapshot() -> ClusterSnapshot:
    nodes = pd.DataFrame([{"node": "n1", "instance_id": "i-1", "az": "a", "instance_type": "x", "node_group": "g",
                           "cpu": 4.0, "memory_gib": 16.0}])
    pods = pd.DataFrame([
        # team-a: requests 1 CPU, uses 2 -> claims 2 (max); memory requests 4, uses 2 -> claims 4
        {"namespace": "team-a", "pod": "a", "node": "n1", "cpu_request": 1.0, "memory_request_gib": 4.0,
         "cpu_usage": 2.0, "memory_usage_gib": 2.0},
        {"namespace": "team-b", "pod": "b", "node": "n1", "cpu_request": 1.0, "memory_request_gib": 4.0,
         "cpu_usage": 0.5, "memory_usage_gib": 1.0},
        {"namespace": "datadog", "pod": "d", "node": "n1", "cpu_request": 0.0, "memory_request_gib": 0.0,
         "cpu_usage": 0.0, "memory_usage_gib": 0.0},
    ])
    volumes = pd.DataFrame([{"volume_id": "vol-1", "namespace": "team-b", "pvc": "data", "pv": "pv-1"}])
    return ClusterSnapshot(nodes, pods, volumes)


def lines(extra: list[dict] | None = None) -> pd.DataFrame:
    rows = [
        {"resource_id": "i-1", "service": "AmazonEC2", "usage_type": "EUC1-BoxUsage:x", "cost": 100.0, "rule": None},
        {"resource_id": "vol-1", "service": "AmazonEC2", "usage_type": "EUC1-EBS:VolumeUsage.gp3", "cost": 10.0, "rule": None},
        {"resource_id": "cluster", "service": "AmazonEKS", "usage_type": "EUC1-AmazonEKS-Hours:perCluster", "cost": 30.0,
         "rule": "control-plane"},
        *(extra or []),
    ]
    return pd.DataFrame(rows).astype({"rule": object})


def row(result, ns):
    return result.table.set_index("namespace").loc[ns]


def test_node_volume_and_shared_costs_split_as_worked_out_by_hand() -> None:
    result = allocate(lines(), snapshot(), SETTINGS, {"team-a": "A", "team-b": "B"})
    # CPU half of $100 = $50: team-a claims 2/4 -> 25, team-b 1/4 -> 12.5, idle 12.5
    # memory half $50: team-a 4/16 -> 12.5, team-b 4/16 -> 12.5, idle 25
    assert row(result, "team-a")["cpu"] == pytest.approx(25.0)
    assert row(result, "team-b")["cpu"] == pytest.approx(12.5)
    assert row(result, "team-a")["memory"] == pytest.approx(12.5)
    assert row(result, "team-b")["volumes"] == pytest.approx(10.0)
    # the $30 control plane splits by direct cost: team-a 37.5, team-b 35 -> 30 * 37.5/72.5 and 30 * 35/72.5
    assert row(result, "team-a")["shared"] == pytest.approx(30 * 37.5 / 72.5)
    assert row(result, "team-b")["shared"] == pytest.approx(30 * 35 / 72.5)
    assert row(result, IDLE)["total"] == pytest.approx(37.5)
    assert result.table["total"].sum() == pytest.approx(140.0) == pytest.approx(result.cluster_bill)
    assert row(result, "team-a")["team"] == "A"


def test_departed_nodes_spread_like_the_running_ones_and_idle_can_be_shared() -> None:
    gone = [{"resource_id": "i-gone", "service": "AmazonEC2", "usage_type": "EUC1-BoxUsage:x", "cost": 20.0, "rule": None}]
    settings = SETTINGS.model_copy(update={"idle": "share"})
    result = allocate(lines(gone), snapshot(), settings, {})
    assert IDLE not in set(result.table["namespace"])
    # $20 spread by the node's split: team-a 37.5%, team-b 25%, idle 37.5% (then shared with the idle)
    assert row(result, "team-a")["other_node_costs"] == pytest.approx(20 * 0.375)
    assert result.table["total"].sum() == pytest.approx(160.0)


def test_even_and_weighted_splits() -> None:
    for split, weights, expect_a in (("even", {}, 15.0), ("weights", {"team-a": 3, "team-b": 1}, 22.5)):
        rule = SharedCostRule(name="control-plane", product_codes=["AmazonEKS"], split=split, weights=weights)
        result = allocate(lines(), snapshot(), SETTINGS.model_copy(update={"shared": [rule]}), {})
        assert row(result, "team-a")["shared"] == pytest.approx(expect_a)
        assert result.table["total"].sum() == pytest.approx(140.0)


def test_usage_above_capacity_leaves_no_idle_and_still_sums() -> None:
    snap = snapshot()
    snap.pods.loc[0, "cpu_usage"] = 6.0  # more than the node has
    result = allocate(lines(), snap, SETTINGS, {})
    assert row(result, IDLE)["cpu"] == pytest.approx(0.0)
    assert result.table["total"].sum() == pytest.approx(140.0)
