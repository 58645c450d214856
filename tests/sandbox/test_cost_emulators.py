"""The cost emulators through real boto3 clients: Cost Explorer (shapes, paging, errors),
Pricing, Athena (same results as DuckDB), and the CUR and budget the sandbox puts in place."""

from __future__ import annotations

import json
from datetime import date, timedelta

import botocore.session
import pytest
import sqlglot
from botocore.exceptions import ClientError
from opsbook.cost.query import CostQuery, add_months, month_start
from opsbook.cost.sources import CostExplorer, CurAthena, CurDuckDb, open_source
from opsbook.cost.sql import cost_sql
from opsbook.errors import OpsbookError, UsageError
from opsbook.sandbox.cost.prices import price_table


def walk(value, shape, path="$"):
    """Check a parsed response against a botocore output shape, recursively."""
    check = SHAPE_CHECKS.get(shape.type_name)
    if check is not None:
        check(value, shape, path)


def _walk_structure(value, shape, path):
    assert isinstance(value, dict), f"{path}: expected an object"
    for name in shape.required_members:
        assert name in value, f"{path}: required member {name} missing"
    for name, item in value.items():
        if name == "ResponseMetadata" and path == "$":
            continue
        assert name in shape.members, f"{path}: {name} is not a member of {shape.name}"
        walk(item, shape.members[name], f"{path}.{name}")


def _walk_list(value, shape, path):
    assert isinstance(value, list), f"{path}: expected a list"
    for i, item in enumerate(value):
        walk(item, shape.member, f"{path}[{i}]")


def _walk_map(value, shape, path):
    assert isinstance(value, dict), f"{path}: expected a map"
    for k, item in value.items():
        walk(k, shape.key, f"{path}.key")
        walk(item, shape.value, f"{path}[{k}]")


def _check_string(value, shape, path):
    assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
    if shape.enum:
        assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"


def _check_timestamp(value, shape, path):
    assert hasattr(value, "year"), f"{path}: expected a timestamp"


def _is(types, what):
    def check(value, shape, path):
        assert isinstance(value, types), f"{path}: expected {what}"
    return check


SHAPE_CHECKS = {
    "structure": _walk_structure, "list": _walk_list, "map": _walk_map, "string": _check_string,
    "double": _is(float | int, "a number"), "float": _is(float | int, "a number"),
    "integer": _is(int, "an integer"), "long": _is(int, "an integer"),
    "boolean": _is(bool, "a boolean"), "timestamp": _check_timestamp,
}


def output_shape(service: str, operation: str):
    return botocore.session.get_session().get_service_model(service).operation_model(operation).output_shape


@pytest.fixture()
def ce(sandbox_env):
    return sandbox_env.aws("ce", region="us-east-1")


@pytest.fixture()
def today(sandbox_env):
    return sandbox_env.now().date()


def test_cost_explorer_answers_in_botocore_shapes(ce, today) -> None:
    start = add_months(month_start(today), -2)
    calls = {
        "GetCostAndUsage": ce.get_cost_and_usage(TimePeriod={"Start": str(start), "End": str(today)}, Granularity="MONTHLY",
                                                 Metrics=["AmortizedCost", "UsageQuantity"]),
        "GetCostForecast": ce.get_cost_forecast(TimePeriod={"Start": str(today), "End": str(add_months(month_start(today), 2))},
                                                Granularity="MONTHLY", Metric="UNBLENDED_COST"),
        "GetAnomalies": ce.get_anomalies(DateInterval={"StartDate": str(today - timedelta(days=90))}),
        "GetAnomalyMonitors": ce.get_anomaly_monitors(),
        "GetDimensionValues": ce.get_dimension_values(TimePeriod={"Start": str(start), "End": str(today)}, Dimension="SERVICE"),
    }
    calls["GetCostAndUsage (grouped)"] = ce.get_cost_and_usage(
        TimePeriod={"Start": str(start), "End": str(today)}, Granularity="DAILY", Metrics=["UnblendedCost"],
        GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "TAG", "Key": "team"}])
    for name, answer in calls.items():
        walk(answer, output_shape("ce", name.split()[0]))
    grouped = calls["GetCostAndUsage (grouped)"]
    keys = {g["Keys"][1] for r in grouped["ResultsByTime"] for g in r["Groups"]}
    assert "team$" in keys and "team$messaging" in keys  # untagged and tagged, as Cost Explorer names them
    assert grouped["DimensionValueAttributes"]
    assert calls["GetAnomalies"]["Anomalies"], "the seeded anomaly should be reported"


def test_cost_explorer_pages_and_the_client_reads_every_page(ce, sandbox_env, today) -> None:
    start = add_months(month_start(today), -3)
    request = {"TimePeriod": {"Start": str(start), "End": str(today)}, "Granularity": "DAILY",
               "Metrics": ["UnblendedCost"], "GroupBy": [{"Type": "DIMENSION", "Key": "USAGE_TYPE"}]}
    first = ce.get_cost_and_usage(**request)
    assert "NextPageToken" in first
    query = CostQuery(start, today, "DAILY", ("usage_type",), "unblended")
    via_ce = CostExplorer(ce).costs(query)
    via_cur = CurDuckDb.from_env(sandbox_env).costs(query)
    assert len(via_ce) == len(via_cur) > 200 * 2  # more groups than one page holds
    assert (via_ce["cost"] - via_cur["cost"]).abs().max() < 1e-6


@pytest.mark.parametrize("kwargs, message", [
    ({"TimePeriod": {"Start": "2025-03-01", "End": "2025-02-01"}, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost"]},
     "before end date"),
    ({"TimePeriod": {"Start": "2025-01-01", "End": "2025-02-01"}, "Granularity": "MONTHLY", "Metrics": ["Dollars"]},
     "Invalid metrics"),
    ({"TimePeriod": {"Start": "2025-01-01", "End": "2025-02-01"}, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost"],
      "GroupBy": [{"Type": "DIMENSION", "Key": "COLOUR"}]}, "not allowed"),
])
def test_cost_explorer_refuses_bad_requests_like_aws(ce, kwargs, message) -> None:
    with pytest.raises(ClientError) as info:
        ce.get_cost_and_usage(**kwargs)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert message in info.value.response["Error"]["Message"]


def test_forecast_of_the_past_is_refused(ce, today) -> None:
    with pytest.raises(ClientError, match="current date"):
        ce.get_cost_forecast(TimePeriod={"Start": str(today - timedelta(days=5)), "End": str(today + timedelta(days=5))},
                             Granularity="DAILY", Metric="UNBLENDED_COST")


@pytest.mark.parametrize("dims", [("service",), ("team",), ("region", "account"), ("record_type",), ("service", "usage_type")])
def test_cur_and_cost_explorer_give_the_same_frame(sandbox_env, today, dims) -> None:
    query = CostQuery(add_months(month_start(today), -3), month_start(today), "MONTHLY", dims, "amortized")
    a = open_source(sandbox_env, "cur").costs(query)
    b = open_source(sandbox_env, "cost_explorer").costs(query)
    assert list(a.columns) == list(b.columns) == query.columns
    assert a[list(dims)].equals(b[list(dims)])
    assert (a["cost"] - b["cost"]).abs().max() < 1e-6


def test_cost_explorer_has_no_resources(sandbox_env, today) -> None:
    with pytest.raises(UsageError, match="resource-level"):
        open_source(sandbox_env, "cost_explorer").costs(CostQuery(today - timedelta(days=3), today, group_by=("resource_id",)))


QUERIES = [
    CostQuery(date(2000, 1, 1), date(2000, 2, 1)),  # dates replaced per test run below
    CostQuery(date(2000, 1, 1), date(2000, 2, 1), "MONTHLY", ("service", "team"), "unblended"),
    CostQuery(date(2000, 1, 1), date(2000, 2, 1), "DAILY", ("region", "usage_type"), "amortized",
              include={"record_type": ("Usage", "SavingsPlanCoveredUsage")}),
    CostQuery(date(2000, 1, 1), date(2000, 2, 1), "MONTHLY", ("resource_id", "tag:eks:cluster-name"), "amortized",
              include={"usage_type": ("%BoxUsage%", "%EBS:Volume%")}, exclude={"team": ("(untagged)",)}),
    CostQuery(date(2000, 1, 1), date(2000, 2, 1), "DAILY", ("resource_id",), "net_unblended"),
]


@pytest.mark.parametrize("index", range(len(QUERIES)))
def test_athena_sql_parses_as_trino_and_gives_the_duckdb_result(sandbox_env, today, index) -> None:
    base = QUERIES[index]
    query = CostQuery(add_months(month_start(today), -2), month_start(today), base.granularity, base.group_by,
                      base.metric, base.include, base.exclude)
    athena = CurAthena.from_env(sandbox_env)
    trino = athena.render(cost_sql(query))
    sqlglot.parse_one(trino, read="trino")
    a = athena.costs(query)
    d = CurDuckDb.from_env(sandbox_env).costs(query)
    assert len(a) == len(d) > 0
    assert a[list(query.group_by)].equals(d[list(query.group_by)])
    assert (a["period"] == d["period"]).all()
    assert (a["cost"] - d["cost"]).abs().max() < 1e-9
    assert (a["usage_quantity"] - d["usage_quantity"]).abs().max() < 1e-6


def test_athena_results_page_and_land_in_s3(sandbox_env, today) -> None:
    athena = CurAthena.from_env(sandbox_env)
    frame = athena.run(athena.render(cost_sql(CostQuery(add_months(month_start(today), -2), today, "DAILY",
                                                        ("resource_id",)))), page_size=100)
    assert len(frame) > 1000  # several pages of GetQueryResults
    bucket, _, prefix = athena.output_location.removeprefix("s3://").partition("/")
    keys = [o["Key"] for o in sandbox_env.aws("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    assert any(k.endswith(".csv") for k in keys)


def test_athena_reports_a_bad_query(sandbox_env) -> None:
    athena = CurAthena.from_env(sandbox_env)
    with pytest.raises(OpsbookError, match="failed"):
        athena.run("SELECT nothing_here FROM cur.nope")


def test_pricing_serves_the_price_table(sandbox_env) -> None:
    pricing = sandbox_env.aws("pricing", region="us-east-1")
    table = price_table()
    row = table[(table.usage_type == "EU-BoxUsage:m6i.xlarge")].iloc[0]
    answer = pricing.get_products(ServiceCode="AmazonEC2", Filters=[
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
        {"Type": "TERM_MATCH", "Field": "usagetype", "Value": "EU-BoxUsage:m6i.xlarge"}])
    walk(answer, output_shape("pricing", "GetProducts"))
    products = [json.loads(p) for p in answer["PriceList"]]
    assert len(products) == 1
    dims = next(iter(products[0]["terms"]["OnDemand"].values()))["priceDimensions"]
    assert float(next(iter(dims.values()))["pricePerUnit"]["USD"]) == row["price_usd"]
    assert products[0]["product"]["attributes"]["instanceType"] == "m6i.xlarge"
    # a region's whole EC2 catalogue: every instance type moto knows, cited rows at their cited price,
    # every other product marked derived (attribute and price dimension description)
    pages = list(pricing.get_paginator("get_products").paginate(
        ServiceCode="AmazonEC2", Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"}],
        PaginationConfig={"PageSize": 100}))
    assert len(pages) > 1
    products = [json.loads(p) for page in pages for p in page["PriceList"]]
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    boxes = [p["product"]["attributes"] for p in products if ":" in p["product"]["attributes"]["usagetype"]
             and p["product"]["attributes"]["usagetype"].split("-", 1)[1].startswith("BoxUsage:")]
    assert sorted(a["instanceType"] for a in boxes) == sorted(INSTANCE_TYPES)
    cited = table[(table.region_code == "eu-west-1") & (table.service_code == "AmazonEC2")]
    cited = dict(zip(cited.usage_type, cited.price_usd, strict=True))
    for p in products:
        attrs = p["product"]["attributes"]
        dim = next(iter(next(iter(p["terms"]["OnDemand"].values()))["priceDimensions"].values()))
        derived = attrs["usagetype"] not in cited
        assert (attrs.get("priceBasis") == "derived") == derived and ("derived price" in dim["description"]) == derived
        assert float(dim["pricePerUnit"]["USD"]) > 0
        if not derived:
            assert float(dim["pricePerUnit"]["USD"]) == pytest.approx(cited[attrs["usagetype"]])
    walk(pricing.describe_services(ServiceCode="AmazonRDS"), output_shape("pricing", "DescribeServices"))


def test_the_cur_and_budget_are_in_place(sandbox_env) -> None:
    params = sandbox_env.params
    s3 = sandbox_env.aws("s3")
    prefix = f"{params.cost.cur.prefix}/{params.cost.cur.export_name}/"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=params.buckets.cur, Prefix=prefix)
            for o in page.get("Contents", [])]
    data = [k for k in keys if "/data/BILLING_PERIOD=" in k and k.endswith(".snappy.parquet")]
    manifests = [k for k in keys if "/metadata/BILLING_PERIOD=" in k and k.endswith("-Manifest.json")]
    assert len(data) == len(manifests) == params.cost.generator.months
    budgets = sandbox_env.aws("budgets", region="us-east-1").describe_budgets(AccountId=params.account_id)["Budgets"]
    assert {b["BudgetName"] for b in budgets} >= {b.name for b in params.cost.budgets}


def test_the_cur_bills_the_clusters_own_instances_and_volumes(sandbox_env, today) -> None:
    from opsbook.cost.allocation import read_snapshot

    snapshot = read_snapshot(sandbox_env.kube)
    frame = CurDuckDb.from_env(sandbox_env).costs(
        CostQuery(add_months(month_start(today), -1), month_start(today), group_by=("resource_id",)))
    billed = set(frame["resource_id"])
    assert set(snapshot.nodes["instance_id"]) <= billed
    assert set(snapshot.volumes["volume_id"]) <= billed
