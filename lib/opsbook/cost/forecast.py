"""Forecast of the next months' cost by service, driven by SMS volume, with a backtest.

Per service, cost a day = a + b x SMS a day (least squares over complete months); SMS a
day is projected with a log-linear trend over the same months; a month's forecast is that
times its days. The prediction interval carries both uncertainties: the regression's own
(prediction variance of a new observation) and the SMS trend's (its prediction variance
in log space, carried through the slope), with Student's t quantile for the small number
of months (Cornish-Fisher expansion; no scipy needed). The backtest fits on all but the last `backtest_months` complete months and
reports the error against what was billed (MAPE), beside Cost Explorer's own forecast.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from opsbook.cost.query import CostQuery, add_months, month_start
from opsbook.cost.services import display
from opsbook.cost.sources import CostSource
from opsbook.cost.volume import monthly
from opsbook.errors import OpsbookError
from opsbook.params import CostForecast

CE_METRIC = {"unblended": "UNBLENDED_COST", "amortized": "AMORTIZED_COST", "net_unblended": "NET_UNBLENDED_COST"}


def _days(period: pd.Timestamp) -> int:
    return calendar.monthrange(period.year, period.month)[1]


def history(source: CostSource, volume: pd.DataFrame, today: date, months: int = 12,
            metric: str = "amortized") -> pd.DataFrame:
    """Complete months: period, service, cost, days, SMS (all regions) of that month."""
    end = month_start(today)
    start = add_months(end, -months)
    cost = source.costs(CostQuery(start, end, "MONTHLY", ("service",), metric))
    sms = monthly(volume, by_region=False)
    sms = sms[(sms["period"] >= pd.Timestamp(start)) & (sms["period"] < pd.Timestamp(end))]
    frame = cost.merge(sms, on="period", how="inner")
    frame["days"] = frame["period"].map(_days)
    return frame[["period", "service", "cost", "days", "sms"]]


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float, int]:
    """(slope, intercept, residual sd, mean x, Sxx, n) of y = intercept + slope x."""
    n = len(x)
    if n < 3 or np.ptp(x) == 0:
        return 0.0, float(np.mean(y)), float(np.std(y, ddof=1)) if n > 1 else 0.0, float(np.mean(x)), 0.0, n
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    return float(slope), float(intercept), float(np.sqrt((resid**2).sum() / (n - 2))), float(x.mean()), \
        float(((x - x.mean()) ** 2).sum()), n


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile by the Cornish-Fisher expansion around the normal (good for dof >= 3)."""
    z = NormalDist().inv_cdf(p)
    if dof <= 0:
        return z
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def project_sms(months: pd.DataFrame, targets: list[pd.Timestamp]) -> pd.DataFrame:
    """SMS a day in the target months from a log-linear trend over the history's months,
    with the standard error of that projection (in SMS a day)."""
    t = np.array([(p.year * 12 + p.month) for p in months["period"]], float)
    y = np.log(months["sms"].to_numpy() / months["days"].to_numpy())
    slope, intercept, sd, tm, stt, n = _fit(t, y)
    rows = {}
    for p in targets:
        t0 = p.year * 12 + p.month
        x0 = float(np.exp(intercept + slope * t0))
        se_log = sd * np.sqrt(1 + 1 / max(n, 1) + ((t0 - tm) ** 2 / stt if stt else 0.0))
        rows[p] = {"sms_per_day": x0, "se": x0 * se_log}
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class Forecast:
    by_service: pd.DataFrame  # period, service, name, forecast, lower, upper
    total: pd.DataFrame  # period, forecast, lower, upper, sms_per_day


def forecast(hist: pd.DataFrame, horizon: int, level: float) -> Forecast:
    """The `horizon` months after the history, by service and in total."""
    last = hist["period"].max()
    targets = [pd.Timestamp(add_months(last.date(), k + 1)) for k in range(horizon)]
    months = hist.groupby("period", as_index=False).agg(sms=("sms", "first"), days=("days", "first"))
    sms_day = project_sms(months, targets)
    rows = []
    series = {name: part for name, part in hist.groupby("service")}
    series["__total__"] = hist.groupby("period", as_index=False).agg(
        cost=("cost", "sum"), days=("days", "first"), sms=("sms", "first"))
    for service, part in series.items():
        x = (part["sms"] / part["days"]).to_numpy()
        y = (part["cost"] / part["days"]).to_numpy()
        slope, intercept, sd, xm, sxx, n = _fit(x, y)
        q = t_quantile(0.5 + level / 2, n - 2)
        for p in targets:
            x0, x0_se, days = sms_day.at[p, "sms_per_day"], sms_day.at[p, "se"], _days(p)
            mean = (intercept + slope * x0) * days
            regression_var = sd**2 * (1 + 1 / max(n, 1) + ((x0 - xm) ** 2 / sxx if sxx else 0.0))
            se = np.sqrt(regression_var + (slope * x0_se) ** 2) * days
            rows.append({"period": p, "service": service, "forecast": mean, "lower": mean - q * se,
                         "upper": mean + q * se, "sms_per_day": x0})
    frame = pd.DataFrame(rows)
    total = frame[frame["service"] == "__total__"].drop(columns="service").reset_index(drop=True)
    by_service = frame[frame["service"] != "__total__"].drop(columns="sms_per_day").reset_index(drop=True)
    by_service.insert(2, "name", by_service["service"].map(display))
    return Forecast(by_service, total)


def backtest(hist: pd.DataFrame, months: int, level: float) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit without the last `months` months, forecast them, compare with what was billed."""
    periods = sorted(hist["period"].unique())
    if len(periods) < months + 4:
        raise OpsbookError(f"a backtest of {months} months needs at least {months + 4} complete months, "
                           f"the data has {len(periods)}",
                           remedy="lower params cost.forecast.backtest_months, or wait for more history")
    cut = periods[-months]
    train, test = hist[hist["period"] < cut], hist[hist["period"] >= cut]
    result = forecast(train, months, level)
    actual = test.groupby("period", as_index=False)["cost"].sum().rename(columns={"cost": "actual"})
    table = result.total.merge(actual, on="period")
    table["error_pct"] = (table["forecast"] - table["actual"]) / table["actual"] * 100
    table["within_interval"] = (table["actual"] >= table["lower"]) & (table["actual"] <= table["upper"])
    by_service = result.by_service.merge(test[["period", "service", "cost"]], on=["period", "service"], how="left")
    by_service = by_service.rename(columns={"cost": "actual"}).fillna({"actual": 0.0})
    weighted = float((by_service["forecast"] - by_service["actual"]).abs().sum() / by_service["actual"].abs().sum() * 100)
    summary = {
        "months": [p.strftime("%Y-%m") for p in table["period"]],
        "mape_pct": round(float(table["error_pct"].abs().mean()), 3),
        "service_wape_pct": round(weighted, 3),
        "within_interval": int(table["within_interval"].sum()),
    }
    table["month"] = table["period"].dt.strftime("%Y-%m")
    return summary, table[["month", "actual", "forecast", "lower", "upper", "error_pct", "within_interval"]]


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


def next_months(source: CostSource, volume: pd.DataFrame, today: date, settings: CostForecast,
                metric: str = "amortized") -> tuple[Forecast, dict[str, Any], pd.DataFrame]:
    """Forecast, backtest summary and backtest table from 12 complete months of history."""
    hist = history(source, volume, today, metric=metric)
    if hist.empty:
        raise OpsbookError("no complete month of cost with SMS volume to forecast from")
    summary, table = backtest(hist, settings.backtest_months, settings.interval)
    summary["goal_pct"] = settings.goal_mape * 100
    summary["meets_goal"] = summary["mape_pct"] <= settings.goal_mape * 100
    return forecast(hist, settings.horizon_months, settings.interval), summary, table
