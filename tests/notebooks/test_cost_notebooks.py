"""The six finance notebooks run against the sandbox, and their recorded numbers are checked
against totals recomputed here straight from the CUR objects in S3 (boto3 + pyarrow + pandas,
no opsbook query code), the SMS CSV and the price table. Their reports are read as finance
reads them: report.html without a Python repr and with the data's freshness at the top,
report.xlsx with the same numbers as results.json."""

from __future__ import annotations

import html
import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from opsbook.runner import RunResult
from opsbook.sandbox.cost.prices import price_table

from tests.notebook_runs import run_passing

ROOT = Path(__file__).resolve().parents[2]
FINANCE = ("cost-monthly-review", "cost-allocation-by-team", "cost-forecast", "region-duplication-model",
           "unit-cost-per-sms", "savings-opportunities")
# what a Python object's repr looks like in a page: a dict, an object, pandas/numpy/datetime values
REPRS = ("{'", '{"', "<object", "object at 0x", "Timestamp(", "datetime.date(", "datetime.datetime(", "np.float",
         "dtype:", "$-")


@pytest.fixture(scope="module")
def finance(sandbox, tmp_path_factory):
    """Each finance notebook run once on the sandbox (on first use), into one runs folder."""
    root = tmp_path_factory.mktemp("finance-runs")
    done: dict[str, RunResult] = {}

    def run(name: str) -> RunResult:
        if name not in done:
            done[name] = run_passing(name, root)
        return done[name]

    return run


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


def test_monthly_review_numbers_are_the_bill(truth, finance) -> None:
    df, _ = truth
    rec = finance("cost-monthly-review").records
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


def test_allocation_sums_to_the_clusters_bill(truth, finance, sandbox_params) -> None:
    df, _ = truth
    rec = finance("cost-allocation-by-team").records
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


def test_forecast_backtest_and_anomaly(truth, finance, sandbox_params) -> None:
    df, _ = truth
    rec = finance("cost-forecast").records
    settings = sandbox_params.cost.forecast
    actual = df.groupby("month")["amortized"].sum()
    errors = []
    for row in rec["backtest_table"]:
        assert row["actual"] == pytest.approx(actual[row["month"]], abs=0.01)
        errors.append((row["forecast"] - actual[row["month"]]) / actual[row["month"]] * 100)
    backtest = rec["backtest"]
    assert backtest["origins"] >= 6 and {r["horizon"] for r in rec["backtest_table"]} == {1, 2, 3}
    assert backtest["mape_pct"] == pytest.approx(np.mean(np.abs(errors)), abs=0.01)
    assert backtest["bias_pct"] == pytest.approx(np.mean(errors), abs=0.01)
    assert len(rec["forecast"]) == settings.horizon_months
    assert all(f["lower"] < f["forecast"] < f["upper"] for f in rec["forecast"])
    models = {r["model"] for r in rec["model_comparison"]}
    assert {"seasonal_naive", "driver_regression", "ets", "Cost Explorer", "best per service"} <= models
    assert {r["service"] for r in rec["models_chosen"]} == {r["service"] for r in rec["forecast_by_service"]}
    seeded = datetime.now(UTC).date() - timedelta(days=sandbox_params.cost.generator.anomaly_days_ago)
    ours = [a for a in rec["anomalies"] if a["usage_type"].endswith("NatGateway-Bytes")]
    assert ours and ours[0]["start"] == seeded.isoformat()
    assert ours[0]["days"] == sandbox_params.cost.generator.anomaly_days
    nat = df[(df["line_item_usage_type"].str.endswith("NatGateway-Bytes"))
             & (df["line_item_usage_start_date"].dt.date >= seeded)
             & (df["line_item_usage_start_date"].dt.date < seeded + timedelta(days=ours[0]["days"]))]
    assert ours[0]["actual"] == pytest.approx(nat[nat["region"] == sandbox_params.region]["line_item_unblended_cost"].sum(), abs=0.01)
    assert any(a["start"] == seeded.isoformat() for a in rec["cost_explorer_anomalies"])


def test_forecast_intervals_cover_70_to_90_percent_of_the_backtest(truth, finance, sandbox_params) -> None:
    """Across origins, horizons, services and the total: the billed month inside the 80 % interval
    between 70 and 90 % of the time; each point's billed amount is the bill's, recomputed here."""
    df, _ = truth
    rec = finance("cost-forecast").records
    settings = sandbox_params.cost.forecast
    by_service = df.groupby(["service", "month"])["amortized"].sum()
    total = df.groupby("month")["amortized"].sum()
    points = pd.DataFrame(rec["backtest_points"])
    points["month"] = points["period"].str[:7]
    for row in points.itertuples():
        want = total[row.month] if row.series == "total" else by_service.get((row.series, row.month), 0.0)
        assert row.actual == pytest.approx(want, abs=0.01), (row.series, row.month)
    billed = points[points["actual"] != 0]
    coverage = ((billed["actual"] >= billed["lower"]) & (billed["actual"] <= billed["upper"])).mean() * 100
    low, high = (settings.interval - settings.coverage_tolerance) * 100, (settings.interval + settings.coverage_tolerance) * 100
    assert low <= coverage <= high, f"{coverage:.1f}% of {len(billed)} backtest points inside the interval"
    assert rec["backtest"]["coverage_pct"] == pytest.approx(coverage, abs=1e-3)
    total_points = billed[billed["series"] == "total"]
    error = (total_points["forecast"] - total_points["actual"]) / total_points["actual"] * 100
    meets = (error.abs().mean() <= settings.goal_mape * 100 and abs(error.mean()) <= settings.goal_bias * 100
             and low <= coverage <= high and rec["backtest"]["origins"] >= settings.backtest_origins)
    assert rec["backtest"]["meets_goal"] is bool(meets)


def test_region_model_reprices_the_actual_usage(truth, finance, sandbox_params) -> None:
    df, _ = truth
    rec = finance("region-duplication-model").records
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


def test_unit_cost_per_sms(truth, finance) -> None:
    df, sms = truth
    rec = finance("unit-cost-per-sms").records
    assert len({r["month"] for r in rec["unit_cost"]}) == 12
    for row in rec["unit_cost"]:
        month = df[df["month"] == row["month"]]
        volume = sms[sms["month"] == row["month"]]
        share = volume[volume["region"] == row["region"]]["sms_count"].sum() / volume["sms_count"].sum()
        cost = month[month["region"] == row["region"]]["amortized"].sum() + share * month[month["region"] == "global"]["amortized"].sum()
        assert row["sms"] == volume[volume["region"] == row["region"]]["sms_count"].sum()
        assert row["cost_per_1000_sms"] == pytest.approx(cost / row["sms"] * 1000, rel=1e-9)
    # the fixed/variable split: daily usage cost against daily SMS with a fixed level per month,
    # recomputed here; usage types billed on one day a month at most count as fixed lumps
    first, last = min(r["month"] for r in rec["unit_cost"]), max(r["month"] for r in rec["unit_cost"])
    usage = df[df["line_item_line_item_type"].isin(["Usage", "SavingsPlanCoveredUsage"])
               & (df["month"] >= first) & (df["month"] <= last)]
    usage = usage.assign(day=usage["line_item_usage_start_date"].dt.normalize())
    charged = usage[usage["amortized"] != 0].groupby(["line_item_usage_type", "month"])["day"].nunique()
    lumps = set(charged[charged.groupby(level=0).transform("max") <= 1].index.get_level_values(0))
    for fit in rec["fixed_variable"]:
        mine = usage[usage["region"] == fit["region"]]
        spread = mine[~mine["line_item_usage_type"].isin(lumps)].groupby("day")["amortized"].sum()
        daily_sms = sms[sms["region"] == fit["region"]].set_index("date")["sms_count"]
        joined = pd.concat([spread.rename("cost"), daily_sms.rename("sms")], axis=1, sort=True).dropna()
        # least squares with one fixed level per month (a dummy column each), solved by lstsq
        month_of = joined.index.to_period("M")
        dummies = pd.get_dummies(month_of).to_numpy(dtype=float)
        design = np.column_stack([joined["sms"].to_numpy(), dummies])
        coef, *_ = np.linalg.lstsq(design, joined["cost"].to_numpy(), rcond=None)
        slope, last_level = coef[0], coef[-1]
        fitted = design @ coef
        r2 = 1 - ((joined["cost"] - fitted) ** 2).sum() / ((joined["cost"] - joined["cost"].mean()) ** 2).sum()
        lump = mine[mine["line_item_usage_type"].isin(lumps)]["amortized"].sum()
        assert fit["variable_per_1000_sms"] == pytest.approx(slope * 1000, rel=1e-6)
        assert fit["fixed_per_month"] == pytest.approx(last_level * 30.4375 + lump / (len(joined) / 30.4375), rel=1e-6)
        assert fit["r2"] == pytest.approx(r2, rel=1e-6)
        assert fit["fixed_per_month"] > 0 and fit["variable_per_1000_sms"] > 0
        assert fit["r2"] > 0.5, "a fixed level per month should explain the bill's steps (a node group added)"


def test_savings_opportunities(truth, finance, sandbox_params) -> None:
    df, _ = truth
    rec = finance("savings-opportunities").records
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


def _numbers(value: object) -> list[float]:
    """Every number in a JSON value (booleans are not numbers here)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [float(value)] if math.isfinite(value) else []
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


@pytest.mark.parametrize("name", FINANCE)
def test_report_html_has_no_python_repr_and_says_how_fresh_the_data_is(finance, name) -> None:
    result = finance(name)
    page = (result.run_dir / "report.html").read_text()
    for marker in REPRS:
        assert marker not in page and html.escape(marker) not in page, f"{name}: report.html shows {marker!r}"
    about = result.records["about"]
    assert html.escape(about["line"]) in page
    assert about["months_complete"] >= 12 and about["last_export"]


@pytest.mark.parametrize("name", FINANCE)
def test_report_xlsx_holds_the_results_figures(finance, name) -> None:
    result = finance(name)
    results = json.loads((result.run_dir / "results.json").read_text())
    known = np.array(sorted(_numbers(results["records"])))
    book = openpyxl.load_workbook(result.run_dir / "report.xlsx")
    about = {row[0]: row[1] for row in book["about"].iter_rows(min_row=2, values_only=True)}
    assert about["run id"] == results["run_id"] and about["notebook"] == name
    assert about["months complete"] == results["records"]["about"]["months_complete"]
    assert about["data freshness"] == results["records"]["about"]["line"]
    assert len(book.sheetnames) > 1
    for sheet in book.sheetnames[1:]:
        ws = book[sheet]
        assert ws.freeze_panes == "A2", sheet
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                if "$" in cell.number_format or "%" in cell.number_format:
                    assert isinstance(cell.value, int | float) or cell.value in (None, "unpriced"), (sheet, cell.coordinate)
                if isinstance(cell.value, bool) or not isinstance(cell.value, int | float):
                    continue
                i = np.searchsorted(known, cell.value)
                near = known[max(i - 1, 0): i + 1]
                assert np.isclose(near, cell.value, rtol=1e-9, atol=1e-9).any(), \
                    f"{name} {sheet}!{cell.coordinate} = {cell.value} is in no record of results.json"
