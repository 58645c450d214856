"""Each savings opportunity and its monthly saving, on a CUR made by hand (October 2025: 744 hours)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from opsbook.cost import savings
from opsbook.cost.allocation import ClusterSnapshot
from opsbook.cost.pricebook import PriceBook
from opsbook.params import CostSavings

from tests.unit.hand_cur import line, write_cur

OCT = date(2025, 10, 1)
DAY = date(2025, 10, 10)
HOURS = 31 * 24
SETTINGS = CostSavings()  # NAT idle under 50 GB, NLB under 10 LCU-hours, SP target 80 %, discount 28 %
NAT = "arn:aws:ec2:eu-central-1:111122223333:natgateway/"
NLB = "arn:aws:elasticloadbalancing:eu-central-1:111122223333:loadbalancer/net/ingress/0123456789abcdef"
BOOK = PriceBook.of({("AmazonEC2", "eu-central-1", "EUC1-EBS:VolumeUsage.gp2", ""): 0.119,
                     ("AmazonEC2", "eu-central-1", "EUC1-EBS:VolumeUsage.gp3", ""): 0.0952})


@pytest.fixture()
def source(tmp_path):
    return write_cur(tmp_path, [
        line(DAY, usage_type="EUC1-EBS:VolumeUsage.gp2", resource="vol-1", amount=100.0, cost=11.9),
        line(DAY, usage_type="EUC1-NatGateway-Hours", resource=NAT + "nat-idle", amount=HOURS, cost=HOURS * 0.052),
        line(DAY, usage_type="EUC1-NatGateway-Bytes", resource=NAT + "nat-idle", amount=10.0, cost=0.52),
        line(DAY, usage_type="EUC1-NatGateway-Hours", resource=NAT + "nat-busy", amount=HOURS, cost=HOURS * 0.052),
        line(DAY, usage_type="EUC1-NatGateway-Bytes", resource=NAT + "nat-busy", amount=500.0, cost=26.0),
        line(DAY, product="AWSELB", usage_type="EUC1-LoadBalancerUsage", resource=NLB, amount=HOURS, cost=HOURS * 0.027),
        line(DAY, product="AWSELB", usage_type="EUC1-LCUUsage", resource=NLB, amount=5.0, cost=0.03),
        # three nodes of $100 each; one on demand ($40 of it here) and covered usage worth $60 on demand
        *[line(DAY, usage_type="EUC1-BoxUsage:m6i.xlarge", resource=f"i-{k}", amount=HOURS, cost=100.0)
          for k in (1, 2, 3)],
        line(DAY, usage_type="EUC1-BoxUsage:r6i.large", resource="i-sp", amount=HOURS, cost=60.0,
             type="SavingsPlanCoveredUsage", effective=43.2),
    ])


def test_gp2_volumes_priced_as_gp3(source) -> None:
    table = savings.gp2_to_gp3(source, OCT, BOOK)
    # 100 GB-months at $0.0952 = $9.52 as gp3 against $11.90 billed as gp2: $2.38 a month
    row = table.set_index("volume_id").loc["vol-1"]
    assert row["gp3_cost"] == pytest.approx(9.52)
    assert row["monthly_saving"] == pytest.approx(2.38)


def test_idle_nat_gateway_and_load_balancer(source) -> None:
    table = savings.idle_network(source, OCT, SETTINGS).set_index("resource")
    # nat-idle moved 10 GB (< 50): its hours 744 x $0.052 = $38.688 plus data $0.52 -> $39.208; nat-busy stays
    assert set(table.index) == {"nat-idle", "ingress"}
    assert table.loc["nat-idle", "monthly_saving"] == pytest.approx(HOURS * 0.052 + 0.52)
    # the NLB used 5 LCU-hours (< 10): 744 x $0.027 + $0.03 = $20.118
    assert table.loc["ingress", "monthly_saving"] == pytest.approx(HOURS * 0.027 + 0.03)
    assert table.loc["ingress", "kind"] == "load balancer"


def test_savings_plan_coverage_gap_and_its_saving(source) -> None:
    got = savings.savings_plan_coverage(source, OCT, SETTINGS)
    # on-demand equivalent: covered $60, on demand $300 -> eligible $360, coverage 16.67 %
    # the 80 % target needs $288 covered: $228 more on-demand, which saves 28 % = $63.84 a month and
    # commits $228 x 0.72 / 744 h = $0.2206 an hour
    assert got["coverage_pct"] == pytest.approx(60 / 360 * 100)
    assert got["monthly_saving"] == pytest.approx(228 * 0.28)
    assert got["extra_commitment_per_hour"] == pytest.approx(228 * 0.72 / HOURS)


def test_node_group_over_capacity(source) -> None:
    nodes = pd.DataFrame([{"node": f"n{k}", "instance_id": f"i-{k}", "az": "a", "instance_type": "m6i.xlarge",
                           "node_group": "general", "cpu": 4.0, "memory_gib": 16.0} for k in (1, 2, 3)])
    pods = pd.DataFrame([{"namespace": "x", "pod": "p", "node": "n1", "cpu_request": 2.0, "memory_request_gib": 4.0,
                          "cpu_usage": 1.0, "memory_usage_gib": 1.0}])
    snapshot = ClusterSnapshot(nodes, pods, pd.DataFrame(columns=["volume_id", "namespace", "pvc", "pv"]))
    row = savings.node_groups(snapshot, source, OCT, SETTINGS).iloc[0]
    # requests 2 of 12 CPUs, 4 of 48 GiB: packing 16.7 %; at 70 % one node would do, two stay for
    # availability, so one $100 node can go
    assert row["packing_pct"] == pytest.approx(2 / 12 * 100)
    assert (row["nodes_needed"], row["removable"]) == (2, 1)
    assert row["monthly_saving"] == pytest.approx(100.0)


def test_summary_adds_each_opportunity(source) -> None:
    found = {"gp2 to gp3": savings.gp2_to_gp3(source, OCT, BOOK),
             "idle NAT gateways / load balancers": savings.idle_network(source, OCT, SETTINGS)}
    table = savings.summary(found, savings.savings_plan_coverage(source, OCT, SETTINGS)).set_index("opportunity")
    assert table.loc["gp2 to gp3", "monthly_saving"] == pytest.approx(2.38)
    assert table.loc["idle NAT gateways / load balancers", "items"] == 2
    assert table.loc["idle NAT gateways / load balancers", "monthly_saving"] == pytest.approx(39.208 + 20.118)
    assert table.loc["Savings Plans coverage", "monthly_saving"] == pytest.approx(63.84)
    assert list(table.index)[0] == "Savings Plans coverage"  # biggest first
