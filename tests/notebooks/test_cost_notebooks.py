"""The six finance notebooks run against the sandbox, and their recorded numbers are checked
against totals recomputed here straight from the CUR objects in S3 (boto3 + pyarrow + pandas,
no opsbook query code), the SMS CSV and the price table."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from opsbook.sandbox.cost.prices import price_table

from tests.notebook_runs import run_passing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def truth(sandbox, sandbox_params):
    """Every CUR line item in the sandbox bucket, with the amortized cost worked out here."""
    import boto3

    s3 = boto3.client("s3", region_name=sandbox_params.region)
    cur = sandbox_params.cost.cur
    prefix = f"{cur.prefix}/{cur.export_name}/data/"
    frames = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sandbox_params.buckets.cur, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=sandbox_params.buckets.cur, Key=obj["Key"])["Body"].read()
            frames.append(pq.read_table(io.BytesIO(body)).to_pandas())
    df = pd.concat(frames, ignore_index=True)
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(str)
    t = df["line_item_line_item_type"]
    df["amortized"] = df["line_item_unblended_cost"]
    df.loc[t == "SavingsPlanCoveredUsage", "amortized"] = df["savings_plan_savings_plan_effective_cost"]
    df.loc[t == "SavingsPlanNegation", "amortized"] = 0.0
    fee = t == "SavingsPlanRecurringFee"
    df.loc[fee, "amortized"] = df["savings_plan_total_commitment_to_date"] - df["savings_plan_used_commitment"]
    df["month"] = df["line_item_usage_start_date"].dt.strftime("%Y-%m")
    df["tags"] = df["resource_tags"].map(lambda items: dict(items) if items is not None else {})
    df["team"] = df["tags"].map(lambda t: t.get("user_team") or "(untagged)")
    df["region"] = df["product_region_code"].replace("", "global")
    df["service"] = df["line_item_product_code"].where(t != "Tax", "Tax")
    sms_key = sandbox_params.cost.sms_volume.csv.removeprefix(f"s3://{sandbox_params.buckets.cur}/")
    sms = pd.read_csv(io.BytesIO(s3.get_object(Bucket=sandbox_params.buckets.cur, Key=sms_key)["Body"].read()),
                      parse_dates=["date"])
    sms["month"] = sms["date"].dt.strftime("%Y-%m")
    return df, sms


def months_before(n: int) -> str:
    d = datetime.now(UTC).date().replace(day=1)
    for _ in range(n):
        d = (d - timedelta(days=1)).replace(day=1)
    return d.strftime("%Y-%m")


def test_monthly_review_numbers_are_the_bill(truth, tmp_path) -> None:
    df, _ = truth
    rec = run_passing("cost-monthly-review", tmp_path).records
    month, prev = rec["month"], months_before(2)
    assert month == months_before(1)
    this_month, last_month = df[df["month"] == month], df[df["month"] == prev]
    assert rec["totals"]["this"] == pytest.approx(this_month["amortized"].sum(), abs=0.01)
    assert rec["totals"]["previous"] == pytest.approx(last_month["amortized"].sum(), abs=0.01)
    for key, column in (("by_service", "service"), ("by_team", "team"), ("by_region", "region"),
                        ("by_account", "line_item_usage_account_id")):
        want = this_month.groupby(column)["amortized"].sum()
        got = {r[key.removeprefix("by_")]: r["this"] for r in rec[key]}
        assert set(got) == set(want.index), key
        for name, value in want.items():
            assert got[name] == pytest.approx(value, abs=1e-6), (key, name)
    taggable = this_month[this_month["line_item_line_item_type"].isin(["Usage", "SavingsPlanCoveredUsage"])]
    untagged = taggable[taggable["team"] == "(untagged)"]["amortized"].sum()
    assert rec["untagged"]["untagged_pct"] == pytest.approx(untagged / taggable["amortized"].sum() * 100, abs=0.01)
    assert rec["reconciliation"]["all_ok"] is True
    budget = [b for b in rec["budgets"] if b["month"] == month][0]
    assert budget["actual"] == pytest.approx(this_month["amortized"].sum(), abs=1e-6)


def test_allocation_sums_to_the_clusters_bill(truth, tmp_path, sandbox_params) -> None:
    df, _ = truth
    rec = run_passing("cost-allocation-by-team", tmp_path).records
    # the cluster's bill: its tagged lines, and shared-rule lines here no other cluster claims; no tax or credits
    month = df[(df["month"] == rec["month"]) & ~df["line_item_line_item_type"].isin(["Tax", "Credit"])]
    cluster = month["tags"].map(lambda t: t.get("user_eks_cluster_name")) == sandbox_params.eks.cluster_name
    untagged_cluster = month["tags"].map(lambda t: "user_eks_cluster_name" not in t)
    rules = sandbox_params.cost.allocation.shared
    shared = month.apply(lambda r: r["line_item_product_code"] in {c for x in rules for c in x.product_codes}
                         or any(s in r["line_item_usage_type"] for x in rules for s in x.usage_type_contains), axis=1)
    here = month["region"].isin([sandbox_params.region, "global"])
    bill = month[cluster | (shared & here & untagged_cluster)]["amortized"].sum()
    assert bill > 0
    assert rec["cluster_bill"] == pytest.approx(bill, abs=0.01)
    assert rec["allocated_total"] == pytest.approx(bill, abs=0.01)
    namespaces = {r["namespace"] for r in rec["by_namespace"]}
    assert {"sms-gateway", "billing", "(idle)"} <= namespaces
    assert not namespaces & {"datadog", "kube-system"}  # shared by the rules, not billed to themselves


def test_forecast_backtest_and_anomaly(truth, tmp_path, sandbox_params) -> None:
    df, _ = truth
    rec = run_passing("cost-forecast", tmp_path).records
    actual = df.groupby("month")["amortized"].sum()
    errors = []
    for row in rec["backtest_table"]:
        assert row["actual"] == pytest.approx(actual[row["month"]], abs=0.01)
        errors.append(abs(row["forecast"] - actual[row["month"]]) / actual[row["month"]] * 100)
    assert rec["backtest"]["mape_pct"] == pytest.approx(sum(errors) / len(errors), abs=0.01)
    assert len(rec["forecast"]) == sandbox_params.cost.forecast.horizon_months
    assert all(f["lower"] < f["forecast"] < f["upper"] for f in rec["forecast"])
    seeded = datetime.now(UTC).date() - timedelta(days=sandbox_params.cost.generator.anomaly_days_ago)
    ours = [a for a in rec["anomalies"] if a["usage_type"].endswith("NatGateway-Bytes")]
    assert ours and ours[0]["start"] == seeded.isoformat()
    assert ours[0]["days"] == sandbox_params.cost.generator.anomaly_days
    nat = df[(df["line_item_usage_type"].str.endswith("NatGateway-Bytes"))
             & (df["line_item_usage_start_date"].dt.date >= seeded)
             & (df["line_item_usage_start_date"].dt.date < seeded + timedelta(days=ours[0]["days"]))]
    assert ours[0]["actual"] == pytest.approx(nat[nat["region"] == sandbox_params.region]["line_item_unblended_cost"].sum(), abs=0.01)
    assert any(a["start"] == seeded.isoformat() for a in rec["cost_explorer_anomalies"])


def test_region_model_reprices_the_actual_usage(truth, tmp_path, sandbox_params) -> None:
    df, _ = truth
    rec = run_passing("region-duplication-model", tmp_path).records
    month = df[(df["month"] == rec["month"]) & df["line_item_line_item_type"].isin(["Usage", "SavingsPlanCoveredUsage"])]
    home = month[month["region"].isin([sandbox_params.region, "global"])]
    assert rec["totals"][f"{sandbox_params.region} as billed"] == pytest.approx(home["pricing_public_on_demand_cost"].sum(), abs=0.01)
    # eu-west-1 recomputed from the price table: same amounts, prefix EUC1- -> EU-, scenario = the estate as is
    prices = price_table()
    lookup = {(r.service_code, r.region_code, r.usage_type): r.price_usd for r in prices.itertuples()}
    total = 0.0
    for r in home.itertuples():
        if r.line_item_product_code == "datadog-pro-marketplace":
            total += r.line_item_usage_amount * sandbox_params.cost.region_model.datadog_host_month_usd
        elif r.region == "global":
            total += r.line_item_usage_amount * lookup[(r.line_item_product_code, "global", r.line_item_usage_type)]
        else:
            ut = r.line_item_usage_type
            ut = "eu-west-1-" + ut.removeprefix("eu-central-1-") if ut.startswith("eu-central-1-") else "EU-" + ut.removeprefix("EUC1-")
            total += r.line_item_usage_amount * lookup[(r.line_item_product_code, "eu-west-1", ut)]
    assert rec["totals"]["eu-west-1 with scenario"] == pytest.approx(total, rel=1e-6)


def test_unit_cost_per_sms(truth, tmp_path) -> None:
    df, sms = truth
    rec = run_passing("unit-cost-per-sms", tmp_path).records
    assert len({r["month"] for r in rec["unit_cost"]}) == 12
    for row in rec["unit_cost"]:
        month = df[df["month"] == row["month"]]
        volume = sms[sms["month"] == row["month"]]
        share = volume[volume["region"] == row["region"]]["sms_count"].sum() / volume["sms_count"].sum()
        cost = month[month["region"] == row["region"]]["amortized"].sum() + share * month[month["region"] == "global"]["amortized"].sum()
        assert row["sms"] == volume[volume["region"] == row["region"]]["sms_count"].sum()
        assert row["cost_per_1000_sms"] == pytest.approx(cost / row["sms"] * 1000, rel=1e-9)
    for fit in rec["fixed_variable"]:
        assert fit["fixed_per_month"] > 0 and fit["variable_per_1000_sms"] > 0 and fit["r2"] > 0.5


def test_savings_opportunities(truth, tmp_path, sandbox_params) -> None:
    df, _ = truth
    rec = run_passing("savings-opportunities", tmp_path).records
    month = df[df["month"] == rec["month"]]
    prices = price_table().set_index("usage_type")["price_usd"]
    gp2 = month[month["line_item_usage_type"].str.endswith("EBS:VolumeUsage.gp2")]
    want = sum(r.line_item_usage_amount * (prices[r.line_item_usage_type] - prices[r.line_item_usage_type.replace(".gp2", ".gp3")])
               for r in gp2.itertuples())
    assert sum(r["monthly_saving"] for r in rec["gp2_to_gp3"]) == pytest.approx(want, rel=1e-9)
    box = month[month["line_item_usage_type"].str.contains("BoxUsage")]
    covered = box[box["line_item_line_item_type"] == "SavingsPlanCoveredUsage"]["line_item_unblended_cost"].sum()
    eligible = covered + box[box["line_item_line_item_type"] == "Usage"]["line_item_unblended_cost"].sum()
    assert rec["savings_plan_coverage"]["coverage_pct"] == pytest.approx(covered / eligible * 100, rel=1e-9)
    assert any(v["name"].endswith("debug-reports-db-copy") for v in rec["unattached"])
    assert sum(s["drill_leftover"] for s in rec["old_snapshots"]) == 2
    idle_az = sandbox_params.cost.generator.idle_nat_az
    assert [n["kind"] for n in rec["idle_network"]] == ["NAT gateway"] and idle_az
    assert {s["opportunity"] for s in rec["summary"]} >= {"gp2 to gp3", "Savings Plans coverage"}
