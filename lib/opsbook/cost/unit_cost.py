"""Cost per 1,000 SMS by month and region, and its fixed and variable parts.

A region's cost is what the CUR bills in that region; global charges (Route 53, tax,
Marketplace, Savings Plan fees) are spread over regions by their share of the month's SMS.
Fixed and variable cost come from a least-squares line through the days: daily cost =
fixed + variable x daily SMS. Charges billed once a month count as fixed.

A month or region without SMS volume, or a region with too few days for the fit, is a
row with its `gap` reason and no unit cost; `headline` counts them.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from opsbook.cost import gaps
from opsbook.cost.anomaly import daily_usage, monthly_lumps
from opsbook.cost.gaps import GAP
from opsbook.cost.query import CostQuery
from opsbook.cost.sources import CostSource
from opsbook.cost.volume import monthly

GLOBAL = "global"
MIN_FIT_DAYS = 14


def monthly_unit_cost(source: CostSource, volume: pd.DataFrame, start: date, end: date,
                      metric: str = "amortized") -> pd.DataFrame:
    """month, region, direct cost, spread global cost, SMS, cost per 1,000 SMS."""
    cost = source.costs(CostQuery(start, end, "MONTHLY", ("region",), metric))
    sms = monthly(volume)
    table = sms.merge(cost.rename(columns={"cost": "direct_cost"})[["period", "region", "direct_cost"]],
                      on=["period", "region"], how="left").fillna({"direct_cost": 0.0})
    glob = cost[cost["region"] == GLOBAL].set_index("period")["cost"]
    # regions billed without SMS (if any) are spread like the global charges
    orphan = cost[~cost["region"].isin([*sms["region"].unique(), GLOBAL])].groupby("period")["cost"].sum()
    shared = glob.add(orphan, fill_value=0.0)
    share = table["sms"] / table.groupby("period")["sms"].transform("sum")
    table["shared_cost"] = share * table["period"].map(shared).fillna(0.0)
    table["cost"] = table["direct_cost"] + table["shared_cost"]
    table["cost_per_1000_sms"] = (table["cost"] / table["sms"].where(table["sms"] > 0)) * 1000
    table["month"] = table["period"].dt.strftime("%Y-%m")
    table[GAP] = [f"{m} {r}: no SMS volume" if not n > 0 else ""
                  for m, r, n in zip(table["month"], table["region"], table["sms"], strict=True)]
    table = pd.concat([table, _months_without_volume(cost, sms)], ignore_index=True)
    return table[["month", "region", "days", "sms", "direct_cost", "shared_cost", "cost",
                  "cost_per_1000_sms", GAP]].reset_index(drop=True)


def _months_without_volume(cost: pd.DataFrame, sms: pd.DataFrame) -> pd.DataFrame:
    """Billed months the SMS volume does not cover: a row per billed region, unit cost unknown."""
    billed = cost[~cost["period"].isin(sms["period"]) & (cost["region"] != GLOBAL) & (cost["cost"] != 0)]
    return pd.DataFrame({
        "month": billed["period"].dt.strftime("%Y-%m"), "region": billed["region"], "days": float("nan"),
        "sms": float("nan"), "direct_cost": billed["cost"], "shared_cost": float("nan"), "cost": billed["cost"],
        "cost_per_1000_sms": float("nan"),
        GAP: [f"{p:%Y-%m} {r}: no SMS volume for the month" for p, r in zip(billed["period"], billed["region"],
                                                                           strict=True)],
    })


def _within_month_fit(joined: pd.DataFrame) -> tuple[float, float, float]:
    """Daily cost = slope x daily SMS + a fixed level of its month: (slope, the last month's level, R²).

    A fixed level per month, not one for the whole range: the fixed part of a real bill moves in
    steps (a node group added, an instance resized), and one straight line through a year with
    such a step reads the step as traffic. Within a month, days differ in SMS (weekdays) while the
    fixed part stays, which is what measures the variable rate.
    """
    month = joined.index.to_period("M")
    x, y = joined["sms"], joined["cost"]
    dx = x - x.groupby(month).transform("mean")
    dy = y - y.groupby(month).transform("mean")
    slope = float((dx * dy).sum() / (dx * dx).sum()) if (dx * dx).sum() > 0 else 0.0
    levels = (y - slope * x).groupby(month).mean()
    fitted = slope * x + levels.reindex(month).to_numpy()
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1 - ((y - fitted) ** 2).sum() / total) if total > 0 else 1.0
    return slope, float(levels.iloc[-1]), r2


def fixed_variable(source: CostSource, volume: pd.DataFrame, start: date, end: date,
                   metric: str = "amortized") -> pd.DataFrame:
    """Per region: the fixed cost a month (at the last month's level), the variable cost per
    1,000 SMS, and the fit's R² (see `_within_month_fit`)."""
    daily = daily_usage(source, start, end, metric)
    lumps = monthly_lumps(daily)
    region_daily = source.costs(CostQuery(start, end, "DAILY", ("region", "usage_type"), metric,
                                          include={"record_type": ("Usage", "SavingsPlanCoveredUsage")}))
    rows = []
    for region, sms in volume.groupby("region"):
        part = region_daily[(region_daily["region"] == region) & ~region_daily["usage_type"].isin(lumps)]
        spread = part.groupby("period")["cost"].sum()
        lump = region_daily[(region_daily["region"] == region) & region_daily["usage_type"].isin(lumps)]["cost"].sum()
        days = sms.set_index("date")["sms_count"]
        joined = pd.concat([spread.rename("cost"), days.rename("sms")], axis=1).dropna()
        if len(joined) < MIN_FIT_DAYS:
            rows.append({"region": region, "days": len(joined), GAP: f"{region}: {len(joined)} days with both cost "
                         f"and SMS volume; the fit needs {MIN_FIT_DAYS}"})
            continue
        slope, level, r2 = _within_month_fit(joined)
        months = len(joined) / 30.4375
        x = joined["sms"].to_numpy()
        rows.append({
            "region": region,
            "fixed_per_month": level * 30.4375 + lump / months,
            "variable_per_1000_sms": slope * 1000,
            "r2": r2,
            "days": len(joined),
            "avg_sms_per_month": float(x.mean() * 30.4375),
            GAP: "",
        })
    out = pd.DataFrame(rows, columns=["region", "fixed_per_month", "variable_per_1000_sms", "r2", "days",
                                      "avg_sms_per_month", GAP])
    out["variable_share_pct"] = (out["variable_per_1000_sms"] * out["avg_sms_per_month"] / 1000
                                 / (out["fixed_per_month"] + out["variable_per_1000_sms"] * out["avg_sms_per_month"] / 1000)
                                 * 100)
    return out


def headline(table: pd.DataFrame, fit: pd.DataFrame | None = None) -> dict[str, object]:
    """The latest month's cost per 1,000 SMS per region, and what could not be computed, for the run index."""
    latest = table[table["month"] == table["month"].max()]
    per_region = dict(zip(latest["region"], latest["cost_per_1000_sms"].round(4), strict=True))
    tables = {"unit cost": table, **({"fixed and variable": fit} if fit is not None else {})}
    return {"month": latest["month"].iloc[0], **{f"{r} per 1000 SMS": c for r, c in per_region.items()},
            **gaps.headline(tables)}
