"""Unit cost's per-region figures and fixed/variable split, and an anomaly's dollar impact and
cause, on CURs made by hand; every expected number is worked out in the comments."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from opsbook.cost import anomaly, unit_cost
from opsbook.params import CostAnomaly

from tests.unit.hand_cur import line, write_cur

OCT, NOV = date(2025, 10, 1), date(2025, 11, 1)


def test_cost_per_1000_sms_spreads_global_charges_by_sms_share(tmp_path) -> None:
    source = write_cur(tmp_path, [
        line(date(2025, 10, 4), usage_type="EUC1-BoxUsage:m6i.large", cost=300.0),
        line(date(2025, 10, 4), usage_type="EU-BoxUsage:m6i.large", region="eu-west-1", cost=100.0),
        line(date(2025, 10, 1), product="AmazonRoute53", usage_type="HostedZone", region="", cost=50.0),
    ])
    volume = pd.DataFrame({"date": pd.to_datetime(["2025-10-04", "2025-10-04"]),
                           "region": ["eu-central-1", "eu-west-1"], "sms_count": [2_000_000.0, 500_000.0]})
    table = unit_cost.monthly_unit_cost(source, volume, OCT, NOV).set_index("region")
    # SMS shares 80 % / 20 %: the $50 global splits 40 / 10
    # eu-central-1: (300 + 40) / 2,000 thousand SMS = $0.17; eu-west-1: (100 + 10) / 500 = $0.22
    assert table.loc["eu-central-1", "shared_cost"] == pytest.approx(40.0)
    assert table.loc["eu-central-1", "cost_per_1000_sms"] == pytest.approx(0.17)
    assert table.loc["eu-west-1", "cost_per_1000_sms"] == pytest.approx(0.22)


def test_fixed_and_variable_split(tmp_path) -> None:
    # 20 days: NAT hours $10 a day (fixed), NAT data $0.02 per 1,000 SMS (variable), and a hosted zone
    # charged once, on the 1st ($0.50: a monthly lump, counted as fixed)
    sms = [1_000_000 + 50_000 * (k % 7) for k in range(20)]
    rows = [line(date(2025, 10, 1), product="AmazonRoute53", usage_type="HostedZone", cost=0.5)]
    for k, n in enumerate(sms):
        day = OCT + timedelta(days=k)
        rows += [line(day, usage_type="EUC1-NatGateway-Hours", cost=10.0),
                 line(day, usage_type="EUC1-NatGateway-Bytes", cost=0.02 * n / 1000)]
    source = write_cur(tmp_path, rows)
    volume = pd.DataFrame({"date": pd.date_range(OCT, periods=20), "region": "eu-central-1", "sms_count": sms})
    fit = unit_cost.fixed_variable(source, volume, OCT, NOV).iloc[0]
    # daily cost = 10 + 0.00002 x SMS exactly: R² 1, $0.02 per 1,000 SMS
    # fixed a month = $10 x 30.4375 days + the lump spread over the 20 days' share of a month:
    # 304.375 + 0.5 / (20 / 30.4375) = 304.375 + 0.7609 = 305.136
    assert fit["variable_per_1000_sms"] == pytest.approx(0.02)
    assert fit["fixed_per_month"] == pytest.approx(304.375 + 0.5 * 30.4375 / 20)
    assert fit["r2"] == pytest.approx(1.0)
    # variable share at the average volume: 1,150,000 x 30.4375 / 1000 x 0.02 = $700.06 of $1,005.20
    average = sum(sms) / 20 * 30.4375
    variable = average / 1000 * 0.02
    assert fit["variable_share_pct"] == pytest.approx(variable / (variable + fit["fixed_per_month"]) * 100)


def _daily(days: int, spike_from: int, spike: float) -> pd.DataFrame:
    """NAT data at $9, $10, $11 in turn (median $10), jumping to `spike` for three days."""
    rows = []
    for k in range(days):
        cost = spike if spike_from <= k < spike_from + 3 else 9.0 + k % 3
        rows.append({"period": pd.Timestamp(OCT) + pd.Timedelta(days=k), "service": "AmazonEC2",
                     "usage_type": "EUC1-NatGateway-Bytes", "cost": cost, "usage_quantity": 0.0})
        rows.append({"period": pd.Timestamp(OCT) + pd.Timedelta(days=k), "service": "AmazonRDS",
                     "usage_type": "EUC1-InstanceUsage:db.r6g.large", "cost": 20.0, "usage_quantity": 0.0})
    return pd.DataFrame(rows)


def test_anomaly_impact_is_the_cost_above_the_median_and_names_its_cause() -> None:
    # the median needs 14 days and the MAD 14 more of it: the spike comes on day 35 (5 November)
    found = anomaly.detect(_daily(45, 35, 100.0), CostAnomaly())
    assert len(found) == 1
    a = found.iloc[0]
    # three days at $100 where the trailing 14 days' median is $10: 3 x (100 - 10) = $270 above normal
    assert (a["service"], a["usage_type"]) == ("AmazonEC2", "EUC1-NatGateway-Bytes")
    assert (a["start"], a["end"], a["days"]) == (date(2025, 11, 5), date(2025, 11, 7), 3)
    assert a["actual"] == pytest.approx(300.0) and a["expected"] == pytest.approx(30.0)
    assert a["impact"] == pytest.approx(270.0)


def test_small_jumps_and_monthly_lumps_are_not_anomalies() -> None:
    # $13 a day is (13 - 10) / (1.4826 x MAD $1) = 2.0 robust sd above $10: below the threshold of 5
    assert anomaly.detect(_daily(45, 35, 13.0), CostAnomaly()).empty
    # a charge only on the 1st of each month (a hosted zone) is a lump by design
    lump = pd.DataFrame([{"period": pd.Timestamp(day), "service": "AmazonRoute53", "usage_type": "HostedZone",
                          "cost": 0.5, "usage_quantity": 1.0} for day in ("2025-10-01", "2025-11-01", "2025-12-01")])
    assert anomaly.monthly_lumps(pd.concat([_daily(30, 40, 0.0), lump])) == {"HostedZone"}
    assert anomaly.detect(pd.concat([_daily(30, 40, 0.0), lump]), CostAnomaly()).empty


def test_anomalies_from_a_cur_name_the_service(tmp_path) -> None:
    daily = _daily(40, 30, 100.0)
    source = write_cur(tmp_path, [line(p.date(), product=s, usage_type=u, cost=c, amount=1.0)
                                  for p, s, u, c in zip(daily["period"], daily["service"], daily["usage_type"],
                                                        daily["cost"], strict=True)])
    found = anomaly.anomalies(source, date(2025, 11, 10), CostAnomaly(lookback_days=30))
    assert list(found["name"]) == ["EC2 (instances, EBS, NAT)"]
    assert found["impact"].iloc[0] == pytest.approx(270.0)
