"""The forecast on its own: a synthetic series with known trend and seasonality, the backtest's
arithmetic on hand-made points, and the rolling backtest on generated estates of other shapes
(test-local params that `extends: sandbox`), whose 80 % intervals must cover 70 to 90 % of the
backtest points across origins and services."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from opsbook.cost import forecast
from opsbook.cost.forecast_models import Training, driver_regression, ets, seasonal_naive
from opsbook.cost.sources import CurDuckDb
from opsbook.cost.volume import parse_csv
from opsbook.errors import UsageError
from opsbook.params import CostForecast, load_params
from opsbook.sandbox.cost.cur import generate

MONTHS = pd.date_range("2023-01-01", periods=36, freq="MS")


def test_ets_recovers_a_known_trend_and_season() -> None:
    # cost a day = 100 + 2 per month + 10 x sin(2 pi month / 12), no noise: three years of it.
    # With two years or more ETS fits an additive yearly season; the next three months must come
    # back within 2 % of the series' own continuation.
    t = np.arange(39)
    truth = 100 + 2 * t + 10 * np.sin(2 * np.pi * t / 12)
    train = Training(MONTHS, truth[:36], np.full(36, 1000.0))
    got = ets(train, 3, 0.8).mean
    assert got == pytest.approx(truth[36:], rel=0.02)


def test_driver_regression_recovers_fixed_variable_and_trend() -> None:
    # cost a day = 50 + 0.002 x SMS a day + 1.5 x month; SMS grows 3 % a month from 100,000 a day.
    # Exact data: the coefficients come back exactly, and the forecast is the formula at the
    # projected SMS (100,000 x 1.03^12 in the first month after twelve).
    t = np.arange(12)
    sms = 100_000 * 1.03**t
    train = Training(MONTHS[:12], 50 + 0.002 * sms + 1.5 * t, sms)
    got = driver_regression(train, 2, 0.8)
    want = 50 + 0.002 * 100_000 * 1.03 ** np.array([12, 13]) + 1.5 * np.array([12, 13])
    assert got.mean == pytest.approx(want, rel=1e-6)
    assert np.all(got.lower <= got.mean) and np.all(got.mean <= got.upper)


def test_seasonal_naive_takes_the_month_a_year_before_else_the_last() -> None:
    y = np.arange(1.0, 14.0)  # 13 months: 1..13
    train = Training(pd.date_range("2024-01-01", periods=13, freq="MS"), y, np.ones(13))
    # months 14, 15, 16 -> a year before are months 2, 3, 4 (values 2, 3, 4)
    assert list(seasonal_naive(train, 3, 0.8).mean) == [2.0, 3.0, 4.0]
    short = Training(pd.date_range("2024-01-01", periods=5, freq="MS"), y[:5], np.ones(5))
    assert list(seasonal_naive(short, 2, 0.8).mean) == [5.0, 5.0]


def test_scores_are_mape_bias_and_coverage() -> None:
    # three points: errors +10 %, -20 %, and one on a month billed $0 (left out of everything)
    points = pd.DataFrame({"actual": [100.0, 50.0, 0.0], "forecast": [110.0, 40.0, 5.0],
                           "lower": [105.0, 30.0, 0.0], "upper": [120.0, 45.0, 9.0]})
    got = forecast.scores(points)
    assert got["points"] == 2
    assert got["mape_pct"] == pytest.approx((10 + 20) / 2)  # |+10| and |-20|
    assert got["bias_pct"] == pytest.approx((10 - 20) / 2)  # -5: forecasts too low on average
    assert got["coverage_pct"] == 0.0  # 100 is below [105, 120] and 50 above [30, 45]
    assert forecast.scores(points.assign(upper=[120.0, 55.0, 9.0]))["coverage_pct"] == pytest.approx(50.0)
    assert forecast.scores(points.assign(lower=[95.0, 30.0, 0.0], upper=[120.0, 55.0, 9.0]))["coverage_pct"] == 100.0


def test_conformal_quantile_is_the_ceil_n_plus_one_level_th_value() -> None:
    values = np.arange(1.0, 10.0)  # 9 values: ceil(10 x 0.8) = 8th smallest = 8
    assert forecast.conformal_quantile(values, 0.8) == 8.0
    assert forecast.conformal_quantile(np.array([1.0, 2.0]), 0.8) == 2.0  # ceil(3 x 0.8) = 3 > 2: the largest


def test_intervals_leave_the_target_month_out() -> None:
    # one series, three target months with relative errors 10 %, 20 %, 40 % (actual above forecast).
    # For month 1 the pool is months 2 and 3: scale = sqrt((0.2^2 + 0.4^2) / 2) = 0.3162; |z| = 0.632, 1.265;
    # quantile (n=2, level 0.8) = the largest, 1.265; half width = 1.265 x 0.3162 x 100 = 40.
    points = pd.DataFrame({"series": "s", "h": 1, "period": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]),
                           "forecast": [100.0, 100.0, 100.0], "actual": [110.0, 120.0, 140.0]})
    got = forecast.with_intervals(points, 0.8)
    assert got.loc[0, "upper"] - got.loc[0, "forecast"] == pytest.approx(40.0)
    # month 3 (40 % error): pool 10 % and 20 %: scale 0.1581, |z| 0.632, 1.265 -> 1.265 x 0.1581 x 100 = 20
    assert got.loc[2, "upper"] - got.loc[2, "forecast"] == pytest.approx(20.0)


def test_unknown_model_is_refused_naming_the_known_ones() -> None:
    hist = pd.DataFrame({"period": MONTHS[:12], "service": "AmazonEC2", "cost": 100.0, "days": 30, "sms": 1e6})
    with pytest.raises(UsageError, match="driver_regression"):
        forecast.backtest(hist, CostForecast(models=["prophet"]))


def test_too_little_history_is_a_row_and_no_pass() -> None:
    # 9 months, 6 origins wanted with 6 months to train: only origins 6, 7, 8 exist
    hist = pd.DataFrame({"period": MONTHS[:9], "service": "AmazonEC2", "cost": 3000.0 + 10 * np.arange(9),
                         "days": [d.days_in_month for d in MONTHS[:9]], "sms": 1e6})
    result = forecast.backtest(hist, CostForecast(models=["seasonal_naive"]))
    assert result.summary["origins"] == 3
    assert result.summary["meets_goal"] is False
    assert any("too little history" in m for m in result.summary["misses"])
    row = result.gaps[result.gaps["what"] == "backtest origins"]
    assert len(row) == 1 and "9 complete months give 3 origins" in row["why"].iloc[0]


def test_cost_explorer_is_scored_from_earlier_runs_forecasts() -> None:
    hist = pd.DataFrame({"period": MONTHS[:3], "service": "AmazonEC2", "cost": [100.0, 200.0, 400.0], "days": 30,
                         "sms": 1.0})
    earlier = [{"started_at": "2023-01-15T00:00:00", "value": [
        {"period": "2023-02-01T00:00:00", "cost_explorer": 180.0, "cost_explorer_lower": 150.0, "cost_explorer_upper": 210.0},
        {"period": "2023-03-01T00:00:00", "cost_explorer": 500.0, "cost_explorer_lower": 450.0, "cost_explorer_upper": 550.0},
        {"period": "2023-04-01T00:00:00", "cost_explorer": 9.0}]}]  # April is not billed yet: not scored
    row, gaps = forecast.cost_explorer_track_record(earlier, hist)
    assert gaps == [] and row["points"] == 2
    assert row["total_mape_pct"] == pytest.approx((10 + 25) / 2)  # 180 vs 200: -10 %; 500 vs 400: +25 %
    assert row["total_bias_pct"] == pytest.approx((-10 + 25) / 2)
    assert row["own_interval_coverage_pct"] == pytest.approx(50.0)  # 200 in [150, 210]; 400 not in [450, 550]
    row, gaps = forecast.cost_explorer_track_record([], hist)
    assert row["points"] == 0 and gaps[0]["what"] == "Cost Explorer"


# --- generated estates ------------------------------------------------------------------------

ESTATES = {
    # three node groups, the third added 100 days ago; a fast-growing business in three regions
    "three-groups-fast-growth": {"end": date(2026, 2, 11), "params": {
        "other_regions": ["eu-west-1", "eu-north-1"],
        "eks": {"node_groups": [
            {"name": "general", "instance_type": "m6i.xlarge", "min_size": 3, "max_size": 9, "desired_size": 3},
            {"name": "stateful", "instance_type": "r6i.large", "min_size": 3, "max_size": 6, "desired_size": 3},
            {"name": "batch", "instance_type": "m6i.2xlarge", "min_size": 1, "max_size": 8, "desired_size": 4}]},
        "cost": {"generator": {"seed": 3, "sms_growth_per_month": 0.05, "added_node_group": "batch",
                               "added_node_group_days_ago": 100, "anomaly_days_ago": 70, "other_region_share": 0.1}}}},
    # one region, one node group, volume shrinking, a flatter week and another yearly shape
    "one-region-shrinking": {"end": date(2025, 8, 20), "params": {
        "other_regions": [],
        "eks": {"node_groups": [
            {"name": "general", "instance_type": "m6i.large", "min_size": 2, "max_size": 8, "desired_size": 5}]},
        "cost": {"generator": {"seed": 21, "sms_growth_per_month": -0.01, "savings_plan_node_group": None,
                               "added_node_group": None, "anomaly_factor": 30,
                               "weekday_profile": [1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.85],
                               "month_profile": [1.1, 1.05, 1.0, 0.95, 0.9, 0.9, 0.95, 1.0, 1.0, 1.05, 1.1, 1.15],
                               "sms_noise": 0.08}}}},
    # two years of history: the yearly season is learnable, the step is older
    "two-years": {"end": date(2027, 5, 3), "params": {
        "cost": {"generator": {"seed": 5, "months": 25, "added_node_group_days_ago": 400}}}},
}


@pytest.fixture(scope="module", params=list(ESTATES))
def estate(request, tmp_path_factory):
    """A generated estate: params file extending sandbox, its CUR and SMS CSV, the backtest."""
    spec = ESTATES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    params_file = folder / f"{request.param}.yaml"
    data = {"extends": "sandbox", "env": request.param, **spec["params"]}
    data["cost"]["generator"]["end_date"] = spec["end"].isoformat()
    params_file.write_text(yaml.safe_dump(data))
    params = load_params(params_file)
    generate(params, folder / "bill")
    export = folder / "bill" / params.cost.cur.prefix / params.cost.cur.export_name
    sms = parse_csv((folder / "bill" / "drivers" / "sms-volume.csv").read_text(), "sms-volume.csv")
    hist = forecast.history(CurDuckDb(str(export)), sms, spec["end"], params.cost.forecast)
    return params, export, hist, forecast.backtest(hist, params.cost.forecast)


def test_generated_estates_intervals_cover_70_to_90_percent(estate) -> None:
    params, export, hist, result = estate
    settings = params.cost.forecast
    best = result.best[result.best["actual"] != 0]
    # recomputed here: the share of backtest points (origins x horizons x services and total) inside
    inside = (best["actual"] >= best["lower"]) & (best["actual"] <= best["upper"])
    coverage = inside.mean() * 100
    assert len(best["origin"].unique()) >= settings.backtest_origins
    assert 70 <= coverage <= 90, f"coverage {coverage:.1f}% of {len(best)} points"
    assert result.summary["coverage_pct"] == pytest.approx(coverage, abs=1e-3)
    assert set(best["h"]) == set(range(1, settings.horizon_months + 1))


def test_generated_estates_actuals_are_the_bill(estate) -> None:
    params, export, hist, result = estate
    frames = [pd.read_parquet(f, columns=["line_item_usage_start_date", "line_item_line_item_type",
                                          "line_item_unblended_cost", "savings_plan_savings_plan_effective_cost",
                                          "savings_plan_total_commitment_to_date", "savings_plan_used_commitment"])
              for f in sorted(Path(export).glob("data/*/*.parquet"))]
    df = pd.concat(frames)
    t = df["line_item_line_item_type"].astype(str)
    cost = df["line_item_unblended_cost"].where(t != "SavingsPlanCoveredUsage", df["savings_plan_savings_plan_effective_cost"])
    cost = cost.where(t != "SavingsPlanNegation", 0.0)
    cost = cost.where(t != "SavingsPlanRecurringFee",
                      df["savings_plan_total_commitment_to_date"] - df["savings_plan_used_commitment"])
    billed = cost.groupby(df["line_item_usage_start_date"].dt.to_period("M").dt.to_timestamp()).sum()
    total = result.best[result.best["series"] == forecast.TOTAL]
    for period, actual in zip(total["period"], total["actual"], strict=True):
        assert actual == pytest.approx(billed[period], abs=0.01)


def test_forecast_of_a_generated_estate_has_intervals_around_it(estate) -> None:
    params, _, hist, result = estate
    got = forecast.forecast(hist, result, params.cost.forecast)
    assert len(got.total) == params.cost.forecast.horizon_months
    assert (got.total["lower"] <= got.total["forecast"]).all() and (got.total["forecast"] <= got.total["upper"]).all()
    summed = got.by_service.groupby("period")["forecast"].sum().to_numpy()
    assert got.total["forecast"].to_numpy() == pytest.approx(summed)  # the total is the services' sum
    json.dumps(result.summary)  # the record is plain JSON


def test_earlier_runs_cost_explorer_forecasts_are_found_beside_this_run(tmp_path, monkeypatch) -> None:
    from opsbook import results

    notebook_runs = tmp_path / "runs" / "sandbox" / "cost-forecast"
    for stamp, status in (("20251002T060000Z-aaaa", "passed"), ("20251101T060000Z-bbbb", "failed"),
                          ("20250901T060000Z-cccc", "passed")):
        (notebook_runs / stamp).mkdir(parents=True)
        (notebook_runs / stamp / "results.json").write_text(json.dumps({
            "run_id": stamp[-4:], "started_at": stamp[:15], "status": status,
            "records": {"cost_explorer_forecast": [{"period": "2025-10-01T00:00:00", "cost_explorer": 1.0}]}}))
    this = notebook_runs / "20251201T060000Z-dddd"
    this.mkdir()
    monkeypatch.setenv(results.RESULTS_FILE_ENV, str(this / "records.jsonl"))
    found = results.earlier_records("cost_explorer_forecast")
    assert [r["run_id"] for r in found] == ["cccc", "aaaa"]  # passed runs only, oldest first
    assert found[0]["value"][0]["cost_explorer"] == 1.0
