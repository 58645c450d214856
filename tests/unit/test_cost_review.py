"""The monthly review on a CUR made by hand: totals, movers and untagged share worked out here."""

from __future__ import annotations

import math
from datetime import date

import pytest
from opsbook.cost import review

from tests.unit.hand_cur import line, write_cur

SEP, OCT = date(2025, 9, 1), date(2025, 10, 1)
A, B = {"user_team": "a"}, {"user_team": "b"}


@pytest.fixture()
def source(tmp_path):
    return write_cur(tmp_path, [
        # September: EC2 instances $100 (team a), S3 $40 untagged
        line(date(2025, 9, 3), usage_type="EUC1-BoxUsage:m6i.large", cost=100.0, tags=A),
        line(date(2025, 9, 3), product="AmazonS3", usage_type="EUC1-TimedStorage-ByteHrs", cost=40.0),
        # October: EC2 instances $120 and NAT data $30 (team a), S3 $30 untagged, RDS $20 new (team b),
        # and $46 of tax on EC2 (no tags: tax is not taggable)
        line(date(2025, 10, 2), usage_type="EUC1-BoxUsage:m6i.large", cost=120.0, tags=A),
        line(date(2025, 10, 9), usage_type="EUC1-NatGateway-Bytes", cost=30.0, tags=A),
        line(date(2025, 10, 2), product="AmazonS3", usage_type="EUC1-TimedStorage-ByteHrs", cost=30.0),
        line(date(2025, 10, 5), product="AmazonRDS", usage_type="EUC1-InstanceUsage:db.t4g.micro", cost=20.0, tags=B),
        line(date(2025, 10, 1), type="Tax", cost=46.0),
        # a Savings Plan fee that nets to a rounding residue both months: no percentage change of it
        line(date(2025, 9, 1), product="ComputeSavingsPlans", type="SavingsPlanRecurringFee", cost=1e-12),
        line(date(2025, 10, 1), product="ComputeSavingsPlans", type="SavingsPlanRecurringFee", cost=2e-12),
    ])


def test_totals_of_the_month_and_the_one_before(source) -> None:
    got = review.totals(source, OCT)
    # October 120 + 30 + 30 + 20 + 46 = 246; September 100 + 40 = 140; change 106 = 75.71 % of 140
    assert got == {"month": "2025-10", "this": 246.0, "previous": 140.0, "change": 106.0,
                   "change_pct": round(106 / 140 * 100, 2)}


def test_services_ordered_by_the_size_of_their_change(source) -> None:
    table = review.by_dimension(source, OCT, "service")
    # EC2 150 - 100 = +50, Tax +46, RDS +20 (new: no percentage), S3 30 - 40 = -10 (-25 %), SP fee ~0
    assert list(table["service"]) == ["AmazonEC2", "Tax", "AmazonRDS", "AmazonS3", "ComputeSavingsPlans"]
    assert list(table["change"]) == pytest.approx([50.0, 46.0, 20.0, -10.0, 0.0])
    assert math.isnan(table.set_index("service").loc["ComputeSavingsPlans", "change_pct"])
    s3 = table.set_index("service").loc["AmazonS3"]
    assert s3["change_pct"] == pytest.approx(-25.0)
    assert math.isnan(table.set_index("service").loc["AmazonRDS", "change_pct"])


def test_movers_explained_by_usage_type(source) -> None:
    movers = review.top_movers(source, OCT, n=1)
    # the biggest mover is EC2 (+50): NAT data 0 -> 30 (+30) before instances 100 -> 120 (+20)
    assert list(movers["usage_type"]) == ["EUC1-NatGateway-Bytes", "EUC1-BoxUsage:m6i.large"]
    assert list(movers["change"]) == pytest.approx([30.0, 20.0])
    assert set(movers["service_change"]) == {50.0}


def test_untagged_share_of_taggable_spend(source) -> None:
    summary, where = review.untagged(source, OCT)
    # taggable October spend is usage only: 120 + 30 + 30 + 20 = 200 (the $46 tax is not taggable);
    # untagged: S3's 30 -> 15 % of it, all of it in S3
    assert summary == {"taggable": 200.0, "untagged": 30.0, "untagged_pct": 15.0}
    assert list(where["service"]) == ["AmazonS3"] and where["share_of_untagged_pct"].iloc[0] == pytest.approx(100.0)


def test_review_month_defaults_to_the_last_complete_one() -> None:
    assert review.review_month(date(2025, 11, 14)) == OCT
    with pytest.raises(Exception, match="not complete yet"):
        review.review_month(date(2025, 11, 14), "2025-11")
