"""The monthly review: a month against the one before, by service, team, account, region;
top movers explained by usage type; untagged share; budgets; CUR against Cost Explorer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from opsbook.cost import services
from opsbook.cost.query import UNTAGGED, CostQuery, add_months, month_start
from opsbook.cost.sources import CostSource
from opsbook.errors import UsageError

# Line items a tag can sit on; tax, credits and Savings Plan fees carry none.
TAGGABLE = ("Usage", "SavingsPlanCoveredUsage")
CENT = 0.01


def review_month(today: date, month: str = "") -> date:
    """The month to review: 'YYYY-MM', or by default the last complete month before `today`."""
    if not month:
        return add_months(month_start(today), -1)
    try:
        chosen = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise UsageError(f"month: expected YYYY-MM such as 2025-03, got {month!r}") from None
    if chosen >= month_start(today):
        raise UsageError(f"month: {month} is not complete yet (today is {today})", remedy="pick an earlier month")
    return chosen


def by_dimension(source: CostSource, month: date, dim: str, metric: str = "amortized") -> pd.DataFrame:
    """Cost of `month` and the month before by one dimension, biggest change first."""
    prev = add_months(month, -1)
    frame = source.costs(CostQuery(prev, add_months(month, 1), "MONTHLY", (dim,), metric))
    table = frame.pivot_table(index=dim, columns="period", values="cost", aggfunc="sum", fill_value=0.0)
    table = table.reindex(columns=[pd.Timestamp(prev), pd.Timestamp(month)], fill_value=0.0)
    table.columns = ["previous", "this"]
    table["change"] = table["this"] - table["previous"]
    # no percentage on a month billed nothing (under half a cent: rounding residue of credits and fees)
    table["change_pct"] = (table["change"] / table["previous"].where(table["previous"].abs() >= CENT / 2)) * 100
    table = table.reset_index().rename(columns={dim: dim})
    if dim == "service":
        table.insert(1, "name", table["service"].map(services.display))
    return table.sort_values("change", key=abs, ascending=False).reset_index(drop=True)


def totals(source: CostSource, month: date, metric: str = "amortized") -> dict[str, float]:
    prev = add_months(month, -1)
    frame = source.costs(CostQuery(prev, add_months(month, 1), "MONTHLY", (), metric))
    values = {p.date(): c for p, c in zip(frame["period"], frame["cost"], strict=True)}
    this, before = values.get(month, 0.0), values.get(prev, 0.0)
    return {"month": month.strftime("%Y-%m"), "this": round(this, 2), "previous": round(before, 2),
            "change": round(this - before, 2), "change_pct": round((this - before) / before * 100, 2) if before else None}


def top_movers(source: CostSource, month: date, n: int = 5, per_service: int = 3,
               metric: str = "amortized") -> pd.DataFrame:
    """The `n` services that moved most, each with the usage types behind its move."""
    movers = by_dimension(source, month, "service", metric).head(n)
    prev = add_months(month, -1)
    detail = source.costs(CostQuery(prev, add_months(month, 1), "MONTHLY", ("service", "usage_type"), metric,
                                    include={"service": tuple(movers["service"])}))
    table = detail.pivot_table(index=["service", "usage_type"], columns="period", values="cost",
                               aggfunc="sum", fill_value=0.0)
    table = table.reindex(columns=[pd.Timestamp(prev), pd.Timestamp(month)], fill_value=0.0)
    table.columns = ["previous", "this"]
    table["change"] = table["this"] - table["previous"]
    table = table.reset_index()
    rows = []
    for _, mover in movers.iterrows():
        part = table[table["service"] == mover["service"]]
        part = part.reindex(part["change"].abs().sort_values(ascending=False).index).head(per_service)
        for _, row in part.iterrows():
            rows.append({"service": services.display(mover["service"]), "service_change": mover["change"],
                         "usage_type": row["usage_type"] or "(none)", "previous": row["previous"],
                         "this": row["this"], "change": row["change"]})
    return pd.DataFrame(rows, columns=["service", "service_change", "usage_type", "previous", "this", "change"])


def untagged(source: CostSource, month: date, metric: str = "amortized") -> tuple[dict[str, Any], pd.DataFrame]:
    """Share of taggable spend without a team tag, and where that untagged spend sits."""
    frame = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY", ("service", "team"), metric,
                                   include={"record_type": TAGGABLE}))
    total = float(frame["cost"].sum())
    loose = frame[frame["team"] == UNTAGGED]
    untagged_cost = float(loose["cost"].sum())
    where = (loose.groupby("service", as_index=False)["cost"].sum().sort_values("cost", ascending=False))
    where.insert(1, "name", where["service"].map(services.display))
    where["share_of_untagged_pct"] = where["cost"] / untagged_cost * 100 if untagged_cost else 0.0
    summary = {"taggable": round(total, 2), "untagged": round(untagged_cost, 2),
               "untagged_pct": round(untagged_cost / total * 100, 2) if total else 0.0}
    return summary, where.reset_index(drop=True)


def budgets_vs_actual(budgets_client: Any, account_id: str, source: CostSource, month: date, months: int = 6,
                      metric: str = "amortized") -> pd.DataFrame:
    """Each monthly cost budget (AWS Budgets) against the actual of the last `months` months."""
    found = []
    for page in budgets_client.get_paginator("describe_budgets").paginate(AccountId=account_id):
        found += [b for b in page.get("Budgets", []) if b["BudgetType"] == "COST" and b["TimeUnit"] == "MONTHLY"]
    start = add_months(month, -(months - 1))
    actual = source.costs(CostQuery(start, add_months(month, 1), "MONTHLY", (), metric))
    rows = []
    for budget in found:
        limit = float(budget["BudgetLimit"]["Amount"])
        for period, cost in zip(actual["period"], actual["cost"], strict=True):
            rows.append({"budget": budget["BudgetName"], "month": period.strftime("%Y-%m"), "limit": limit,
                         "actual": cost, "remaining": limit - cost, "used_pct": cost / limit * 100,
                         "over": cost > limit})
    return pd.DataFrame(rows, columns=["budget", "month", "limit", "actual", "remaining", "used_pct", "over"])


def reconcile(cur: CostSource, ce: CostSource, month: date, months: int = 3, metric: str = "unblended",
              tolerance_usd: float = 1.0, tolerance_pct: float = 0.5) -> tuple[dict[str, Any], pd.DataFrame]:
    """CUR against Cost Explorer by month and service; a difference within tolerance is 'ok'."""
    query = CostQuery(add_months(month, -(months - 1)), add_months(month, 1), "MONTHLY", ("service",), metric)
    a, b = cur.costs(query), ce.costs(query)
    table = a.merge(b, on=["period", "service"], how="outer", suffixes=("_cur", "_ce")).fillna(0.0)
    table = table.rename(columns={"cost_cur": "cur", "cost_ce": "cost_explorer"})
    table["difference"] = table["cur"] - table["cost_explorer"]
    limit = (table[["cur", "cost_explorer"]].abs().max(axis=1) * tolerance_pct / 100).clip(lower=tolerance_usd)
    table["ok"] = table["difference"].abs() <= limit
    table["month"] = table["period"].dt.strftime("%Y-%m")
    table.insert(2, "name", table["service"].map(services.display))
    table = table[["month", "service", "name", "cur", "cost_explorer", "difference", "ok"]]
    summary = {
        "months": sorted(table["month"].unique().tolist()),
        "cur_total": round(float(table["cur"].sum()), 2),
        "cost_explorer_total": round(float(table["cost_explorer"].sum()), 2),
        "max_abs_difference": round(float(table["difference"].abs().max()), 6) if len(table) else 0.0,
        "all_ok": bool(table["ok"].all()),
    }
    return summary, table.reset_index(drop=True)
