"""The CUR generator's output: Data Exports layout, line item types, Savings Plan invariants, the
seeded anomaly, the SMS driver; and the DuckDB source against sums made with pyarrow/pandas."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from opsbook.cost.query import CostQuery
from opsbook.cost.sources import CurDuckDb
from opsbook.params import load_params
from opsbook.sandbox.cost.cur import date_range, generate

END = date(2025, 6, 11)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    params = load_params("sandbox")
    gen = params.cost.generator.model_copy(update={"end_date": END})
    params = params.model_copy(update={"cost": params.cost.model_copy(update={"generator": gen})})
    out = tmp_path_factory.mktemp("cur")
    summary = generate(params, out)
    export = out / params.cost.cur.prefix / params.cost.cur.export_name
    frame = pd.concat([pq.read_table(f).to_pandas() for f in sorted(export.glob("data/*/*.parquet"))])
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    return params, out, export, summary, frame


def test_layout_is_the_data_exports_one(generated) -> None:
    params, out, export, summary, _ = generated
    periods = sorted(p.name for p in (export / "data").iterdir())
    assert len(periods) == params.cost.generator.months == 13
    assert periods[0] == "BILLING_PERIOD=2024-06" and periods[-1] == "BILLING_PERIOD=2025-06"
    for period in periods:
        files = list((export / "data" / period).glob("*.parquet"))
        assert [f.name for f in files] == [f"{params.cost.cur.export_name}-00001.snappy.parquet"]
        manifest = json.loads((export / "metadata" / period / f"{params.cost.cur.export_name}-Manifest.json").read_text())
        assert manifest["dataFiles"][0].startswith(f"s3://{params.buckets.cur}/cur/")
    assert date_range(params.cost.generator) == (date(2024, 6, 1), END)
    assert (out / "drivers" / "sms-volume.csv").is_file()


def test_line_items_carry_the_types_and_tags_finance_needs(generated) -> None:
    params, _, _, _, frame = generated
    assert set(frame["line_item_line_item_type"]) == {
        "Usage", "Tax", "Credit", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee"}
    assert frame["line_item_usage_start_date"].min() == pd.Timestamp("2024-06-01")
    assert frame["line_item_usage_start_date"].max() < pd.Timestamp(END)
    tags = frame["resource_tags"].map(dict)
    teams = {t.get("user_team") for t in tags}
    assert {ns.team for ns in params.namespaces} - {"platform"} <= teams
    assert None in teams  # some spend is untagged
    assert set(frame["product_region_code"]) == {"eu-central-1", "eu-west-1", ""}


def test_savings_plan_lines_balance(generated) -> None:
    _, _, _, _, frame = generated
    covered = frame[frame["line_item_line_item_type"] == "SavingsPlanCoveredUsage"]
    negation = frame[frame["line_item_line_item_type"] == "SavingsPlanNegation"]
    fee = frame[frame["line_item_line_item_type"] == "SavingsPlanRecurringFee"]
    assert covered["line_item_unblended_cost"].sum() == pytest.approx(-negation["line_item_unblended_cost"].sum())
    # fully used commitment: what the fee commits equals the effective cost of the covered usage
    assert fee["savings_plan_total_commitment_to_date"].sum() == pytest.approx(
        covered["savings_plan_savings_plan_effective_cost"].sum())
    assert fee["savings_plan_used_commitment"].sum() == pytest.approx(fee["line_item_unblended_cost"].sum())


def test_anomaly_is_seeded_on_one_nat_gateway(generated) -> None:
    params, _, _, summary, frame = generated
    nat = frame[frame["line_item_usage_type"] == "EUC1-NatGateway-Bytes"]
    daily = nat.groupby(["line_item_resource_id", nat["line_item_usage_start_date"].dt.date])["line_item_usage_amount"].sum()
    start = END - timedelta(days=params.cost.generator.anomaly_days_ago)
    assert summary["anomaly"]["start"] == start.isoformat()
    spikes = {d for (_, d), v in daily.items() if v > 8 * daily.median()}
    assert spikes == {start + timedelta(days=i) for i in range(params.cost.generator.anomaly_days)}


def test_usage_follows_the_sms_driver(generated) -> None:
    _, out, _, _, frame = generated
    sms = pd.read_csv(out / "drivers" / "sms-volume.csv", parse_dates=["date"])
    sms = sms[sms["region"] == "eu-central-1"].set_index("date")["sms_count"]
    lcu = frame[frame["line_item_usage_type"] == "EUC1-LCUUsage"]
    lcu = lcu.groupby(lcu["line_item_usage_start_date"].dt.normalize())["line_item_usage_amount"].sum()
    assert sms.loc[lcu.index].corr(lcu) > 0.9
    weekday = sms[sms.index.day_of_week < 5].mean()
    weekend = sms[sms.index.day_of_week >= 5].mean()
    assert weekend < 0.7 * weekday


@pytest.mark.parametrize("metric", ["unblended", "amortized"])
def test_duckdb_source_matches_sums_made_with_pandas(generated, metric) -> None:
    _, _, export, _, frame = generated
    got = CurDuckDb(str(export)).costs(CostQuery(date(2025, 1, 1), date(2025, 4, 1), "MONTHLY", ("service",), metric))
    f = frame[(frame["line_item_usage_start_date"] >= "2025-01-01") & (frame["line_item_usage_start_date"] < "2025-04-01")]
    t = f["line_item_line_item_type"]
    cost = f["line_item_unblended_cost"].copy()
    if metric == "amortized":
        cost[t == "SavingsPlanCoveredUsage"] = f["savings_plan_savings_plan_effective_cost"]
        cost[t == "SavingsPlanNegation"] = 0.0
        fee = t == "SavingsPlanRecurringFee"
        cost[fee] = f["savings_plan_total_commitment_to_date"][fee] - f["savings_plan_used_commitment"][fee]
    service = f["line_item_product_code"].where(t != "Tax", "Tax")
    want = cost.groupby([f["line_item_usage_start_date"].dt.to_period("M").dt.to_timestamp(), service]).sum()
    got = got.set_index(["period", "service"])["cost"]
    assert len(got) == len(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_month_totals_agree_between_amortized_and_unblended(generated) -> None:
    # no upfront commitment: amortizing only moves cost between lines within a month
    _, _, export, _, _ = generated
    source = CurDuckDb(str(export))
    q = dict(start=date(2024, 7, 1), end=date(2025, 6, 1), granularity="MONTHLY")
    a = source.costs(CostQuery(**q, metric="amortized"))["cost"]
    u = source.costs(CostQuery(**q, metric="unblended"))["cost"]
    assert list(a.round(6)) == list(u.round(6))


def test_same_params_same_bill(generated, tmp_path) -> None:
    """The sandbox caches the generated files by fingerprint: the same params must give the same bill."""
    params, out, export, _, frame = generated
    generate(params, tmp_path)
    again = pd.concat([pq.read_table(f).to_pandas() for f in sorted(
        (tmp_path / params.cost.cur.prefix / params.cost.cur.export_name).glob("data/*/*.parquet"))])
    for col in again.columns:
        if isinstance(again[col].dtype, pd.CategoricalDtype):
            again[col] = again[col].astype(str)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), again.reset_index(drop=True))
    assert (tmp_path / "drivers" / "sms-volume.csv").read_text() == (out / "drivers" / "sms-volume.csv").read_text()


def test_added_node_group_is_a_step(generated) -> None:
    params, _, _, _, frame = generated
    gen = params.cost.generator
    step = END - timedelta(days=gen.added_node_group_days_ago)
    home = frame[frame["product_region_code"] == params.region]  # the duplicate in another region has its own groups
    tags = home["resource_tags"].map(dict)
    group = home[tags.map(lambda t: t.get("user_eks_nodegroup_name")) == gen.added_node_group]
    days = group["line_item_usage_start_date"].dt.date
    assert days.min() == step  # nothing of the group before it was added, its nodes every day after
    others = home[(tags.map(lambda t: t.get("user_eks_nodegroup_name")) != gen.added_node_group)
                  & home["line_item_usage_type"].str.contains("BoxUsage")]
    assert others["line_item_usage_start_date"].dt.date.min() == date(2024, 6, 1)
    hosts = frame[frame["line_item_usage_type"] == "Datadog-Pro-Hosts"]
    per_month = hosts.groupby(hosts["line_item_usage_start_date"].dt.strftime("%Y-%m"))["line_item_usage_amount"].sum()
    added = sum(g.desired_size for g in params.eks.node_groups if g.name == gen.added_node_group)
    everyone = sum(g.desired_size for g in params.eks.node_groups)
    first_full = (step.replace(day=1) + timedelta(days=32)).replace(day=1).strftime("%Y-%m")
    assert per_month["2024-06"] == everyone - added and per_month[first_full] == everyone


def test_weekday_and_month_profiles_come_from_params() -> None:
    from opsbook.sandbox.cost.cur import sms_series

    gen = load_params("sandbox").cost.generator.model_copy(update={
        "sms_noise": 0.0, "sms_growth_per_month": 0.0, "sms_per_day": 1000.0,
        "weekday_profile": [1, 1, 1, 1, 1, 0.5, 0.25], "month_profile": [1] * 11 + [2]})
    days = np.arange(np.datetime64("2025-11-01"), np.datetime64("2026-01-01"))
    sms = pd.Series(sms_series(gen, days, 1.0), index=pd.DatetimeIndex(days))
    # in November Saturdays at half, Sundays at a quarter of a weekday; December at twice November
    nov, dec = sms["2025-11"], sms["2025-12"]
    assert set(nov[nov.index.day_of_week == 5]) == {500.0} and set(nov[nov.index.day_of_week == 6]) == {250.0}
    assert set(nov[nov.index.day_of_week < 5]) == {1000.0}
    assert dec[dec.index.day_of_week == 0].iloc[0] == 2 * nov[nov.index.day_of_week == 0].iloc[0] == 2000.0
