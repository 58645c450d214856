"""Forecast of the next months' cost by service, chosen by a rolling-origin backtest.

The history is every complete month (up to params `cost.forecast.history_months`) of cost
by service, with SMS volume, the business driver. The backtest puts a forecast origin at
each of the last `backtest_origins` months: every model of `forecast_models.MODELS` named
in params is fitted on the months before the origin and forecasts `horizon_months` ahead,
on each service and on the total. Each point is scored against what was billed: MAPE,
bias (mean signed percentage error) and interval coverage.

Each service takes the model with the lowest MAPE over its backtest points; the total is
the sum of the services' forecasts (so the table adds up). Cost Explorer's own forecast
cannot be asked about the past (GetCostForecast starts today), so it is scored from the
forecasts earlier runs recorded, where those months are now billed.

Intervals are empirical (split conformal), because the models' own intervals cover far
less than their level: with a year of history none of them can know the December peak or
a node group being added, and their parametric intervals come from in-sample residuals
that never saw such a month (the comparison table shows the parametric coverage beside).
A point's relative error, divided by its series' scale (the root mean square of that
series' relative errors), is pooled across series per horizon; the interval is the
forecast times 1 +/- (the conformal quantile of those pooled errors x the series' scale).
In the backtest, a point's interval is calibrated on the errors of the other target
months only (leave one month out, so a month's own shock never calibrates it); the
forecast's intervals use every backtest error.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from opsbook.cost.forecast_models import MODELS, Training
from opsbook.cost.query import CostQuery, add_months, month_start
from opsbook.cost.services import display
from opsbook.cost.sources import CostSource
from opsbook.cost.volume import monthly
from opsbook.errors import OpsbookError
from opsbook.params import CostForecast

CE_METRIC = {"unblended": "UNBLENDED_COST", "amortized": "AMORTIZED_COST", "net_unblended": "NET_UNBLENDED_COST"}
TOTAL = "total"
BEST = "best per service"
TIE_PCT = 0.1  # MAPE points within which models count as equal


def _days(period: pd.Timestamp) -> int:
    return calendar.monthrange(period.year, period.month)[1]


def history(source: CostSource, volume: pd.DataFrame, today: date, settings: CostForecast,
            metric: str = "amortized") -> pd.DataFrame:
    """Complete months before `today` that have cost and SMS: period, service, cost, days, sms."""
    end = month_start(today)
    start = add_months(end, -min(settings.history_months, source.history_months or settings.history_months))
    cost = source.costs(CostQuery(start, end, "MONTHLY", ("service",), metric))
    sms = monthly(volume, by_region=False)
    billed = cost.groupby("period")["cost"].sum()
    billed = billed[billed != 0]
    sms = sms[sms["period"].isin(billed.index)]
    frame = cost[cost["period"].isin(sms["period"])].merge(sms[["period", "sms"]], on="period")
    frame["days"] = frame["period"].map(_days)
    return frame[["period", "service", "cost", "days", "sms"]].sort_values(["period", "service"]).reset_index(drop=True)


@dataclass
class Series:
    """The history as one column per service (cost a month), with days and SMS a month."""

    periods: pd.DatetimeIndex
    cost: pd.DataFrame  # period x service
    days: np.ndarray
    sms: np.ndarray

    @classmethod
    def of(cls, hist: pd.DataFrame) -> Series:
        cost = hist.pivot_table(index="period", columns="service", values="cost", aggfunc="sum", fill_value=0.0)
        months = hist.groupby("period").agg(days=("days", "first"), sms=("sms", "first")).reindex(cost.index)
        return cls(pd.DatetimeIndex(cost.index), cost, months["days"].to_numpy(float), months["sms"].to_numpy(float))

    def training(self, service: str, origin: int) -> Training:
        y = self.cost[service].to_numpy() if service != TOTAL else self.cost.sum(axis=1).to_numpy()
        return Training(self.periods[:origin], y[:origin] / self.days[:origin], self.sms[:origin] / self.days[:origin])

    def actual(self, service: str) -> np.ndarray:
        return self.cost[service].to_numpy() if service != TOTAL else self.cost.sum(axis=1).to_numpy()


def _predict(series: Series, model: str, service: str, origin: int, horizon: int, level: float,
             future_days: np.ndarray) -> dict[str, np.ndarray]:
    train = series.training(service, origin)
    if not np.any(train.cost_per_day):
        zero = np.zeros(horizon)
        return {"forecast": zero, "own_lower": zero, "own_upper": zero}
    pred = MODELS.get(model)(train, horizon, level)
    return {"forecast": pred.mean * future_days, "own_lower": pred.lower * future_days,
            "own_upper": pred.upper * future_days}


def origins(n_months: int, settings: CostForecast) -> list[int]:
    """Indexes of the months the backtest forecasts from (each trains on the months before)."""
    return [o for o in range(n_months - settings.backtest_origins, n_months) if o >= settings.min_train_months]


def rolling_points(series: Series, settings: CostForecast) -> pd.DataFrame:
    """Every model's forecast of every series from every origin, against what was billed."""
    n = len(series.periods)
    rows = []
    for model in settings.models:
        for service in [*series.cost.columns, TOTAL]:
            actual = series.actual(service)
            for o in origins(n, settings):
                h = min(settings.horizon_months, n - o)
                pred = _predict(series, model, service, o, h, settings.interval, series.days[o:o + h])
                for k in range(h):
                    rows.append({"model": model, "series": service, "origin": series.periods[o],
                                 "period": series.periods[o + k], "h": k + 1, "actual": float(actual[o + k]),
                                 **{key: float(value[k]) for key, value in pred.items()}})
    return pd.DataFrame(rows, columns=["model", "series", "origin", "period", "h", "actual", "forecast",
                                       "own_lower", "own_upper"])


# --- intervals ---------------------------------------------------------------------------------


def _relative_error(points: pd.DataFrame) -> pd.Series:
    return (points["actual"] - points["forecast"]) / points["forecast"].abs().where(points["forecast"] != 0)


def conformal_quantile(values: np.ndarray, level: float) -> float:
    """The ceil((n+1) level)-th smallest value (split conformal), the largest when n is small."""
    values = np.sort(values[np.isfinite(values)])
    if not len(values):
        return float("nan")
    rank = min(len(values), int(np.ceil((len(values) + 1) * level)))
    return float(values[rank - 1])


def calibration(errors: pd.DataFrame, level: float) -> tuple[pd.Series, pd.Series]:
    """(scale per series, quantile per horizon) from points with `series`, `h` and relative `error`."""
    errors = errors[np.isfinite(errors["error"])]
    scale = errors.groupby("series")["error"].apply(lambda e: float(np.sqrt(np.mean(e**2)))).clip(lower=1e-6)
    z = (errors["error"] / errors["series"].map(scale)).abs()
    quantile = z.groupby(errors["h"]).apply(lambda v: conformal_quantile(v.to_numpy(), level))
    return scale, quantile


def with_intervals(points: pd.DataFrame, level: float, errors: pd.DataFrame | None = None) -> pd.DataFrame:
    """`lower`/`upper` for each point: calibrated on `errors` (default: the points' own errors
    at the other target months, leaving each month out)."""
    out = points.copy()
    out["lower"] = out["upper"] = np.nan
    if errors is not None:
        groups, own = [(None, out.index)], errors
    else:
        groups = list(out.groupby("period").groups.items())
        own = points.assign(error=_relative_error(points))[["series", "h", "period", "error"]]
    for period, index in groups:
        pool = own if errors is not None else own[own["period"] != period]
        scale, quantile = calibration(pool, level)
        part = out.loc[index]
        half = part["h"].map(quantile) * part["series"].map(scale) * part["forecast"].abs()
        out.loc[index, "lower"] = part["forecast"] - half
        out.loc[index, "upper"] = part["forecast"] + half
    return out


# --- scoring -----------------------------------------------------------------------------------


def _inside(points: pd.DataFrame, lower: str, upper: str) -> pd.Series:
    slack = 1e-9 * points["actual"].abs()
    return (points["actual"] >= points[lower] - slack) & (points["actual"] <= points[upper] + slack)


def scores(points: pd.DataFrame, lower: str = "lower", upper: str = "upper") -> dict[str, float]:
    """MAPE, bias and interval coverage (%) over the points billed something (actual != 0)."""
    billed = points[points["actual"] != 0]
    if billed.empty:
        return {"mape_pct": float("nan"), "bias_pct": float("nan"), "coverage_pct": float("nan"), "points": 0}
    error = (billed["forecast"] - billed["actual"]) / billed["actual"].abs() * 100
    with_interval = billed[billed[lower].notna() & billed[upper].notna()]
    coverage = float(_inside(with_interval, lower, upper).mean() * 100) if len(with_interval) else float("nan")
    return {"mape_pct": float(error.abs().mean()), "bias_pct": float(error.mean()), "coverage_pct": coverage,
            "points": len(billed)}


def choose(points: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Each service's model with the lowest MAPE, and why; within TIE_PCT of the lowest, the
    earlier in params wins (the simpler model, when params list the baseline first)."""
    rows = []
    for service, part in points[points["series"] != TOTAL].groupby("series"):
        mape = {m: scores(part[part["model"] == m])["mape_pct"] for m in models}
        scored = {m: v for m, v in mape.items() if np.isfinite(v)}
        if not scored:
            best, why = models[0], "billed $0.00 in every backtest month: nothing to score, the first model is used"
        else:
            lowest = min(scored.values())
            best = next(m for m in models if m in scored and scored[m] <= lowest + TIE_PCT)
            others = ", ".join(f"{m} {v:.1f}%" for m, v in scored.items() if m != best)
            why = f"lowest backtest MAPE, {scored[best]:.1f}%" + (f" (against {others})" if others else "")
        rows.append({"service": service, "name": display(service), "model": best, "why": why,
                     **{f"{m}_mape_pct": mape[m] for m in models}})
    return pd.DataFrame(rows)


def best_points(points: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The chosen model's points per service, and their sum as the total."""
    pick = dict(zip(chosen["service"], chosen["model"], strict=True))
    services = points[(points["series"] != TOTAL) & (points["model"] == points["series"].map(pick))]
    total = services.groupby(["origin", "period", "h"], as_index=False)[["actual", "forecast"]].sum()
    total = total.assign(series=TOTAL, own_lower=np.nan, own_upper=np.nan)
    return pd.concat([services, total], ignore_index=True).assign(model=BEST)


@dataclass
class Backtest:
    points: pd.DataFrame  # every model's points with conformal intervals
    best: pd.DataFrame  # the chosen models' points (services and their total)
    chosen: pd.DataFrame  # service, name, model, why, <model>_mape_pct
    comparison: pd.DataFrame  # one row per model
    summary: dict[str, Any]
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)  # what, why

    def table(self) -> pd.DataFrame:
        """The total's backtest points: origin, month, horizon, billed, forecast, interval, error."""
        total = self.best[self.best["series"] == TOTAL].sort_values(["origin", "h"])
        return pd.DataFrame({
            "origin": total["origin"].dt.strftime("%Y-%m"), "month": total["period"].dt.strftime("%Y-%m"),
            "horizon": total["h"], "actual": total["actual"], "forecast": total["forecast"],
            "lower": total["lower"], "upper": total["upper"],
            "error_pct": (total["forecast"] - total["actual"]) / total["actual"] * 100,
            "inside": _inside(total, "lower", "upper"),
        }).reset_index(drop=True)


def _comparison_row(name: str, points: pd.DataFrame) -> dict[str, Any]:
    total = scores(points[points["series"] == TOTAL])
    services = scores(points[points["series"] != TOTAL])
    return {"model": name, "total_mape_pct": total["mape_pct"], "total_bias_pct": total["bias_pct"],
            "services_mape_pct": services["mape_pct"], "coverage_pct": scores(points)["coverage_pct"],
            "own_interval_coverage_pct": scores(points, "own_lower", "own_upper")["coverage_pct"],
            "points": scores(points)["points"], "note": ""}


def _verdict(summary: dict[str, Any], settings: CostForecast, enough: bool) -> list[str]:
    """What keeps the backtest from meeting its goal (empty: it meets it)."""
    misses = [] if enough else [f"too little history for {settings.backtest_origins} origins"]
    if not summary["mape_pct"] <= settings.goal_mape * 100:
        misses.append(f"total MAPE {summary['mape_pct']:.1f}% above the {settings.goal_mape:.0%} goal")
    if not abs(summary["bias_pct"]) <= settings.goal_bias * 100:
        misses.append(f"bias {summary['bias_pct']:+.1f}% beyond +/-{settings.goal_bias:.0%}")
    low, high = (settings.interval - settings.coverage_tolerance) * 100, (settings.interval + settings.coverage_tolerance) * 100
    if not low <= summary["coverage_pct"] <= high:
        misses.append(f"coverage {summary['coverage_pct']:.1f}% outside {low:.0f}-{high:.0f}%")
    return misses


def _history_gaps(series: Series, settings: CostForecast) -> list[dict[str, str]]:
    n, found = len(series.periods), len(origins(len(series.periods), settings))
    gaps = []
    if found < settings.backtest_origins:
        need = settings.min_train_months + settings.backtest_origins
        gaps.append({"what": "backtest origins",
                     "why": f"too little history: {n} complete months give {found} origins with at least "
                            f"{settings.min_train_months} months to train on; {settings.backtest_origins} origins "
                            f"need {need} months (params cost.forecast.backtest_origins, min_train_months)"})
    for service in series.cost.columns:
        if not series.cost[service].iloc[-settings.backtest_origins:].any():
            gaps.append({"what": display(service), "why": "billed $0.00 in every backtest month: no percentage "
                                                          "error, left out of MAPE, bias and coverage"})
    return gaps


def backtest(hist: pd.DataFrame, settings: CostForecast, cost_explorer_runs: list[dict[str, Any]] = ()) -> Backtest:
    """Rolling-origin backtest of every model; each service's best; intervals; the verdict.
    `cost_explorer_runs`: earlier runs' recorded Cost Explorer forecasts (see
    `cost_explorer_track_record`)."""
    for model in settings.models:
        MODELS.get(model)  # an unknown name fails here, naming the known ones
    series = Series.of(hist)
    if not origins(len(series.periods), settings):
        raise OpsbookError(f"no backtest origin: {len(series.periods)} complete months, and the first origin "
                           f"needs {settings.min_train_months + 1}",
                           remedy="lower params cost.forecast.min_train_months, or wait for more history")
    points = rolling_points(series, settings)
    points = pd.concat([with_intervals(part, settings.interval) for _, part in points.groupby("model")],
                       ignore_index=True)
    chosen = choose(points, settings.models)
    best = with_intervals(best_points(points, chosen), settings.interval)
    ce_row, ce_gaps = cost_explorer_track_record(list(cost_explorer_runs), hist)
    comparison = pd.DataFrame([*(_comparison_row(m, points[points["model"] == m]) for m in settings.models),
                               ce_row, {**_comparison_row(BEST, best), "note": "the forecast opsbook gives"}])
    total, everything = scores(best[best["series"] == TOTAL]), scores(best)
    found = points["origin"].drop_duplicates().sort_values()
    summary = {
        "origins": len(found), "first_origin": found.iloc[0].strftime("%Y-%m"),
        "last_origin": found.iloc[-1].strftime("%Y-%m"), "horizon_months": settings.horizon_months,
        "points": everything["points"], "mape_pct": round(total["mape_pct"], 3), "bias_pct": round(total["bias_pct"], 3),
        "coverage_pct": round(everything["coverage_pct"], 3), "interval_pct": settings.interval * 100,
        "goal_mape_pct": settings.goal_mape * 100, "goal_bias_pct": settings.goal_bias * 100,
        "coverage_goal_pct": [round((settings.interval - settings.coverage_tolerance) * 100, 3),
                              round((settings.interval + settings.coverage_tolerance) * 100, 3)],
    }
    gaps = _history_gaps(series, settings) + ce_gaps
    misses = _verdict(summary, settings, enough=not any(g["what"] == "backtest origins" for g in gaps))
    summary |= {"meets_goal": not misses, "misses": misses, "gaps": len(gaps)}
    return Backtest(points, best, chosen, comparison, summary, pd.DataFrame(gaps, columns=["what", "why"]))


# --- the forecast ------------------------------------------------------------------------------


@dataclass
class Forecast:
    by_service: pd.DataFrame  # period, service, name, model, forecast, lower, upper
    total: pd.DataFrame  # period, forecast, lower, upper


def forecast(hist: pd.DataFrame, result: Backtest, settings: CostForecast) -> Forecast:
    """The next `horizon_months` after the history: each service with its chosen model, the
    total as their sum, intervals calibrated on every backtest error of those forecasts."""
    series = Series.of(hist)
    n, h = len(series.periods), settings.horizon_months
    targets = pd.DatetimeIndex([pd.Timestamp(add_months(series.periods[-1].date(), k + 1)) for k in range(h)])
    days = np.array([_days(p) for p in targets], float)
    rows = []
    for _, pick in result.chosen.iterrows():
        pred = _predict(series, pick["model"], pick["service"], n, h, settings.interval, days)
        rows += [{"period": targets[k], "series": pick["service"], "h": k + 1, "forecast": pred["forecast"][k]}
                 for k in range(h)]
    points = pd.DataFrame(rows)
    total = points.groupby(["period", "h"], as_index=False)["forecast"].sum().assign(series=TOTAL)
    points = pd.concat([points, total], ignore_index=True)
    errors = result.best.assign(error=_relative_error(result.best))[["series", "h", "period", "error"]]
    points = with_intervals(points, settings.interval, errors)
    by_service = points[points["series"] != TOTAL].rename(columns={"series": "service"})
    by_service.insert(2, "name", by_service["service"].map(display))
    by_service.insert(3, "model", by_service["service"].map(dict(zip(result.chosen["service"], result.chosen["model"],
                                                                     strict=True))))
    columns = ["period", "service", "name", "model", "forecast", "lower", "upper"]
    total = points[points["series"] == TOTAL][["period", "forecast", "lower", "upper"]]
    return Forecast(by_service[columns].reset_index(drop=True), total.reset_index(drop=True))


def monthly_totals(hist: pd.DataFrame) -> pd.DataFrame:
    """period, cost: the history's billed total a month."""
    return hist.groupby("period", as_index=False)["cost"].sum()


# --- Cost Explorer ------------------------------------------------------------------------------


def cost_explorer_forecast(ce: Any, source: CostSource, today: date, horizon: int, level: float,
                           metric: str) -> pd.DataFrame:
    """Cost Explorer's own monthly forecast (GetCostForecast) for this month and the next.

    Its forecast starts today, so this month's figure is the month-to-date bill plus the
    forecast of the rest, as the Cost Explorer console shows it.
    """
    first = month_start(today)
    end = add_months(first, horizon)
    answer = ce.get_cost_forecast(
        TimePeriod={"Start": today.isoformat(), "End": end.isoformat()}, Granularity="MONTHLY",
        Metric=CE_METRIC[metric], PredictionIntervalLevel=int(round(level * 100)),
    )
    mtd = 0.0
    if today > first:
        billed = source.costs(CostQuery(first, today, "MONTHLY", (), metric))
        mtd = float(billed["cost"].sum())
    rows = []
    for r in answer["ForecastResultsByTime"]:
        start = pd.Timestamp(r["TimePeriod"]["Start"]).to_period("M").to_timestamp()
        add = mtd if start == pd.Timestamp(first) else 0.0
        rows.append({"period": start, "cost_explorer": float(r["MeanValue"]) + add,
                     "cost_explorer_lower": float(r["PredictionIntervalLowerBound"]) + add,
                     "cost_explorer_upper": float(r["PredictionIntervalUpperBound"]) + add})
    return pd.DataFrame(rows, columns=["period", "cost_explorer", "cost_explorer_lower", "cost_explorer_upper"])


def cost_explorer_track_record(earlier: list[dict[str, Any]], hist: pd.DataFrame) -> tuple[dict[str, Any], list[dict]]:
    """Cost Explorer's forecasts that earlier runs recorded, scored on the months now billed.

    `earlier`: [{"started_at": ISO time, "value": [{period, cost_explorer, ...}, ...]}, ...]
    (results.earlier_records). Returns its comparison row and the gaps (why it has no score).
    """
    billed = monthly_totals(hist).set_index("period")["cost"]
    rows = []
    for run in earlier:
        for item in run["value"] or []:
            period = pd.Timestamp(item["period"]).to_period("M").to_timestamp()
            if period in billed.index and item.get("cost_explorer") is not None:
                rows.append({"series": TOTAL, "period": period, "actual": float(billed[period]),
                             "forecast": float(item["cost_explorer"]), "own_lower": item.get("cost_explorer_lower"),
                             "own_upper": item.get("cost_explorer_upper")})
    row = {"model": "Cost Explorer", "total_mape_pct": np.nan, "total_bias_pct": np.nan, "services_mape_pct": np.nan,
           "coverage_pct": np.nan, "own_interval_coverage_pct": np.nan, "points": 0,
           "note": "GetCostForecast forecasts only from today: scored on earlier runs' forecasts of months now billed"}
    if not rows:
        why = (f"no earlier run recorded a Cost Explorer forecast of a month now billed ({len(earlier)} earlier runs "
               "found); its score appears once a forecast month is complete")
        return row | {"note": why}, [{"what": "Cost Explorer", "why": why}]
    points = pd.DataFrame(rows).astype({"own_lower": float, "own_upper": float})
    total = scores(points, "own_lower", "own_upper")
    row |= {"total_mape_pct": total["mape_pct"], "total_bias_pct": total["bias_pct"],
            "own_interval_coverage_pct": total["coverage_pct"], "points": total["points"]}
    return row, []


def headline(result: Forecast, summary: dict[str, Any]) -> dict[str, Any]:
    """Next month's forecast and the backtest's verdict, for the run index."""
    first = result.total.iloc[0]
    return {"month": first["period"].strftime("%Y-%m"), "forecast": round(float(first["forecast"]), 2),
            "lower": round(float(first["lower"]), 2), "upper": round(float(first["upper"]), 2),
            "backtest MAPE %": summary["mape_pct"], "coverage %": summary["coverage_pct"],
            "meets goal": summary["meets_goal"]}
