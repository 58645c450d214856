"""Cost anomalies: days whose cost of one usage type jumps far above its recent norm.

A day is anomalous when its cost exceeds the median of the previous `baseline_days` days
by more than `threshold` robust standard deviations (1.4826 x MAD) and by a dollar floor;
consecutive days form one anomaly, its impact the cost above the median. Charges billed
once a month (tax, credits, hosted zones, subscriptions) are left out: they are lumps by
design. Cost Explorer's own anomalies (GetAnomalies) are read beside them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from opsbook.cost.query import CostQuery
from opsbook.cost.services import display
from opsbook.cost.sources import CostSource
from opsbook.params import CostAnomaly

SPREAD_RECORDS = ("Usage", "SavingsPlanCoveredUsage")


def daily_usage(source: CostSource, start: date, end: date, metric: str = "unblended") -> pd.DataFrame:
    """Daily cost by service and usage type of usage line items."""
    return source.costs(CostQuery(start, end, "DAILY", ("service", "usage_type"), metric,
                                  include={"record_type": SPREAD_RECORDS}))


def monthly_lumps(daily: pd.DataFrame) -> set[str]:
    """Usage types charged on at most one day of each month (billed monthly)."""
    frame = daily[daily["cost"] != 0].assign(month=daily["period"].dt.to_period("M"))
    days = frame.groupby(["usage_type", "month"])["period"].nunique()
    return set(days[days.groupby(level=0).transform("max") <= 1].index.get_level_values(0))


def detect(daily: pd.DataFrame, settings: CostAnomaly) -> pd.DataFrame:
    """Anomalies in a daily (service, usage_type) cost frame."""
    lumps = monthly_lumps(daily)
    frame = daily[~daily["usage_type"].isin(lumps)]
    wide = frame.pivot_table(index="period", columns=["service", "usage_type"], values="cost",
                             aggfunc="sum", fill_value=0.0).sort_index()
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="D"), fill_value=0.0)
    window = wide.shift(1).rolling(settings.baseline_days, min_periods=settings.baseline_days)
    median = window.median()
    mad = (wide.shift(1) - median).abs().rolling(settings.baseline_days, min_periods=settings.baseline_days).median()
    scale = np.maximum(1.4826 * mad, np.maximum(0.01 * median.abs(), 0.5))
    score = (wide - median) / scale
    flagged = (score > settings.threshold) & ((wide - median) > 0)
    rows = []
    for column in wide.columns:
        days = list(wide.index[flagged[column].fillna(False)])
        run: list[pd.Timestamp] = []
        for day in [*days, None]:
            if run and (day is None or day - run[-1] != pd.Timedelta(days=1)):
                actual = float(wide.loc[run, column].sum())
                expected = float(median.loc[run, column].sum())
                if actual - expected >= settings.min_impact_usd:
                    rows.append({"start": run[0].date(), "end": run[-1].date(), "days": len(run),
                                 "service": column[0], "usage_type": column[1], "actual": actual,
                                 "expected": expected, "impact": actual - expected,
                                 "max_score": float(score.loc[run, column].max())})
                run = []
            if day is not None:
                run.append(day)
    out = pd.DataFrame(rows, columns=["start", "end", "days", "service", "usage_type", "actual", "expected",
                                      "impact", "max_score"])
    return out.sort_values("impact", ascending=False).reset_index(drop=True)


def anomalies(source: CostSource, today: date, settings: CostAnomaly) -> pd.DataFrame:
    """Anomalies over the lookback window, grouped into incidents with their usage types."""
    start = today - timedelta(days=settings.lookback_days + settings.baseline_days)
    found = detect(daily_usage(source, start, today), settings)
    found = found[found["start"] >= today - timedelta(days=settings.lookback_days)]
    if found.empty:
        return found.assign(name=[])
    found = found.assign(name=found["service"].map(display))
    return found[["start", "end", "days", "service", "name", "usage_type", "actual", "expected", "impact",
                  "max_score"]].reset_index(drop=True)


def cost_explorer_anomalies(ce: Any, start: date, end: date) -> pd.DataFrame:
    """Cost Explorer's anomalies (GetAnomalies, every page) with impact and root causes."""
    rows, token = [], None
    while True:
        kwargs: dict[str, Any] = {"DateInterval": {"StartDate": start.isoformat(), "EndDate": end.isoformat()},
                                  "MaxResults": 100}
        if token:
            kwargs["NextPageToken"] = token
        page = ce.get_anomalies(**kwargs)
        for a in page.get("Anomalies", []):
            causes = a.get("RootCauses", [])
            rows.append({
                "start": a.get("AnomalyStartDate", "")[:10], "end": a.get("AnomalyEndDate", "")[:10],
                "service": a.get("DimensionValue", ""),
                "usage_types": ", ".join(c.get("UsageType", "") for c in causes),
                "impact": a["Impact"].get("TotalImpact", a["Impact"]["MaxImpact"]),
                "actual": a["Impact"].get("TotalActualSpend"), "expected": a["Impact"].get("TotalExpectedSpend"),
                "score": a["AnomalyScore"]["MaxScore"],
            })
        token = page.get("NextPageToken")
        if not token:
            break
    return pd.DataFrame(rows, columns=["start", "end", "service", "usage_types", "impact", "actual", "expected",
                                       "score"])
