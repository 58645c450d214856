"""CostQuery validation, the SQL and its Trino rendering, usage-type prefixes, the price table."""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot
from opsbook.cost.query import CostQuery, cur_tag_key, periods
from opsbook.cost.sql import cost_sql, from_trino, to_trino
from opsbook.errors import UsageError
from opsbook.formats.aws_usage import region_of_usage_type, strip_region, usage_type_in
from opsbook.params import load_params
from opsbook.sandbox.cost.prices import price_table

Q = CostQuery(date(2025, 1, 1), date(2025, 3, 1), "MONTHLY", ("service", "team", "tag:eks:cluster-name"),
              include={"usage_type": ("%NatGateway%",)}, exclude={"record_type": ("Tax",)})


@pytest.mark.parametrize("kwargs, message", [
    ({"start": date(2025, 2, 1), "end": date(2025, 1, 1)}, "must be before end"),
    ({"granularity": "HOURLY"}, "MONTHLY or DAILY"),
    ({"metric": "blended"}, "metric must be one of"),
    ({"group_by": ("service", "service")}, "repeats"),
    ({"group_by": ("colour",)}, "unknown dimension 'colour'"),
    ({"include": {"service": "AmazonEC2"}}, "non-empty tuple"),
])
def test_bad_queries_are_refused_with_the_reason(kwargs, message) -> None:
    base = {"start": date(2025, 1, 1), "end": date(2025, 2, 1)}
    with pytest.raises(UsageError, match=message):
        CostQuery(**{**base, **kwargs})


def test_periods_cover_the_months_touched() -> None:
    assert periods(date(2024, 12, 15), date(2025, 2, 2)) == ["2024-12", "2025-01", "2025-02"]
    assert cur_tag_key("eks:cluster-name") == "user_eks_cluster_name"


def test_trino_rendering_parses_as_trino_and_uses_element_at() -> None:
    trino = to_trino(cost_sql(Q), "cur.cur2")
    tree = sqlglot.parse_one(trino, read="trino")  # raises on a syntax error
    assert "ELEMENT_AT(resource_tags, 'user_team')" in trino  # a missing key is NULL, not an error
    assert '"cur"."cur2"' in trino and "billing_period IN ('2025-01', '2025-02')" in trino
    assert tree.find(sqlglot.exp.Bracket) is not None


def test_trino_sql_goes_back_to_duckdb_over_the_local_view() -> None:
    back = from_trino(to_trino(cost_sql(Q), "cur.cur2"), "cur.cur2")
    assert "FROM cur" in back and "resource_tags['user_team']" in back


@pytest.mark.parametrize("usage_type, base, region", [
    ("EUC1-BoxUsage:m6i.large", "BoxUsage:m6i.large", "eu-central-1"),
    ("EU-NatGateway-Bytes", "NatGateway-Bytes", "eu-west-1"),
    ("eu-north-1-KMS-Keys", "KMS-Keys", "eu-north-1"),
    ("HostedZone", "HostedZone", None),
])
def test_region_prefixes(usage_type, base, region) -> None:
    assert strip_region(usage_type) == base
    assert region_of_usage_type(usage_type) == region


def test_usage_types_move_between_regions_in_their_own_style() -> None:
    assert usage_type_in("EUC1-EBS:VolumeUsage.gp3", "eu-west-1") == "EU-EBS:VolumeUsage.gp3"
    assert usage_type_in("eu-central-1-KMS-Requests", "eu-north-1") == "eu-north-1-KMS-Requests"
    assert usage_type_in("DNS-Queries", "eu-west-1") == "DNS-Queries"


def test_price_table_rows_have_source_and_date_and_cover_the_estate() -> None:
    table = price_table()
    assert (table["source"].str.startswith("https://")).all() and (table["as_of"] != "").all()
    assert (table["price_usd"] > 0).all()
    assert {"eu-central-1", "eu-west-1", "eu-north-1"} <= set(table["region_code"])
    types = {g.instance_type for env in ("sandbox", "prod-pl") for g in load_params(env).eks.node_groups}
    classes = {r.instance_class for env in ("sandbox", "prod-pl") for r in load_params(env).rds}
    for region, prefix in (("eu-central-1", "EUC1"), ("eu-west-1", "EU"), ("eu-north-1", "EUN1")):
        have = set(table[table["region_code"] == region]["usage_type"])
        wanted = {f"{prefix}-BoxUsage:{t}" for t in types} | {f"{prefix}-Multi-AZUsage:{c}" for c in classes}
        wanted |= {f"{prefix}-{u}" for u in ("EBS:VolumeUsage.gp2", "EBS:VolumeUsage.gp3", "EBS:SnapshotUsage",
                                             "NatGateway-Hours", "NatGateway-Bytes", "LoadBalancerUsage",
                                             "AmazonEKS-Hours:perCluster", "TimedStorage-ByteHrs",
                                             "DataTransfer-Out-Bytes", "RDS:Multi-AZ-GP2-Storage")}
        wanted |= {f"{region}-KMS-Keys", f"{prefix}-DataEventsRecorded"}
        assert wanted <= have, sorted(wanted - have)
    assert {"HostedZone", "DNS-Queries"} <= set(table["usage_type"])
