"""Written conclusions for the finance notebooks, from their numbers (report.html hides code)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from IPython.display import Markdown

from opsbook.cost import gaps
from opsbook.cost.services import display
from opsbook.report.formatting import money, money_whole, pct


def _usd(value: float) -> str:
    return money_whole(value) if abs(value) >= 100 else money(value)


def monthly_review(totals: dict[str, Any], by_service: pd.DataFrame, movers: pd.DataFrame,
                   untagged: dict[str, Any], budgets: pd.DataFrame, reconciliation: dict[str, Any]) -> Markdown:
    direction = "up" if totals["change"] >= 0 else "down"
    lines = [f"**{totals['month']}: {_usd(totals['this'])}**, {direction} {_usd(abs(totals['change']))} "
             f"({pct(totals['change_pct'], signed=True)}) on the month before ({_usd(totals['previous'])})."
             if totals["change_pct"] is not None else f"**{totals['month']}: {_usd(totals['this'])}**."]
    if len(by_service):
        top = by_service.iloc[0]
        lines.append(f"- The biggest move: {display(top['service'])} ({_usd(top['change'])}).")
    if len(movers):
        first = movers.iloc[0]
        lines.append(f"- Behind it, usage type `{first['usage_type']}` changed by {_usd(first['change'])}.")
    lines.append(f"- {pct(untagged['untagged_pct'])} of taggable spend ({_usd(untagged['untagged'])}) carries no "
                 "team tag: tag those resources or they stay unattributed.")
    this_month = budgets[budgets["month"] == totals["month"]]
    for _, b in this_month.iterrows():
        state = "over" if b["over"] else "within"
        lines.append(f"- Budget `{b['budget']}`: {pct(b['used_pct'])} used, {state} its {_usd(b['limit'])} limit.")
    if reconciliation["all_ok"]:
        lines.append(f"- The CUR and Cost Explorer agree for {', '.join(reconciliation['months'])} "
                     f"(largest difference {_usd(reconciliation['max_abs_difference'])}).")
    else:
        lines.append("- **The CUR and Cost Explorer disagree** beyond tolerance: see the reconciliation table "
                     "before using these numbers.")
    return Markdown("\n".join(lines))


def allocation(table: pd.DataFrame, bill: float, teams: pd.DataFrame) -> Markdown:
    idle = float(table.loc[table["namespace"] == "(idle)", "total"].sum())
    top = teams.iloc[0] if len(teams) else None
    lines = [f"The cluster cost **{_usd(bill)}** this month; the allocation adds up to {_usd(table['total'].sum())}."]
    if top is not None:
        lines.append(f"- Largest team: **{top['team']}** with {_usd(top['total'])} ({pct(top['total'] / bill * 100)}).")
    if idle:
        lines.append(f"- **{_usd(idle)} ({pct(idle / bill * 100)}) is idle**: capacity no pod requests or uses. "
                     "Right-sizing node groups (see savings-opportunities) turns it into savings.")
    return Markdown("\n".join(lines))


def forecast(total: pd.DataFrame, backtest: dict[str, Any], chosen: pd.DataFrame, anomalies: pd.DataFrame,
             cost_explorer: pd.DataFrame) -> Markdown:
    months = ", ".join(f"{p:%b %Y} {_usd(v)} ({_usd(lo)} to {_usd(hi)})" for p, v, lo, hi in
                       zip(total["period"], total["forecast"], total["lower"], total["upper"], strict=True))
    lines = [f"Forecast with its {backtest['interval_pct']:.0f}% interval: {months}."]
    verdict = "**meets its goal**" if backtest["meets_goal"] else "**misses its goal** (" + "; ".join(backtest["misses"]) + ")"
    low, high = backtest["coverage_goal_pct"]
    lines.append(f"- Backtest from {backtest['origins']} origins ({backtest['first_origin']} to {backtest['last_origin']}), "
                 f"1 to {backtest['horizon_months']} months ahead: total MAPE {pct(backtest['mape_pct'])} (goal "
                 f"{pct(backtest['goal_mape_pct'])}), bias {pct(backtest['bias_pct'], signed=True)} (goal within "
                 f"{pct(backtest['goal_bias_pct'])}), interval coverage {pct(backtest['coverage_pct'])} (goal {low:.0f} "
                 f"to {high:.0f}%): it {verdict}.")
    if backtest.get("gaps"):
        lines.append(f"- {backtest['gaps']} item(s) could not be scored: see the table of what the backtest could not judge.")
    counts = chosen["model"].value_counts()
    lines.append("- Models chosen by backtest: " + ", ".join(f"{m} for {n} service(s)" for m, n in counts.items()) + ".")
    both = total.merge(cost_explorer, on="period")
    if len(both):
        gap = float((both["forecast"] - both["cost_explorer"]).sum())
        lines.append(f"- Cost Explorer's forecast for the same months differs by {_usd(gap)} in total.")
    if len(anomalies):
        a = anomalies.iloc[0]
        lines.append(f"- Largest anomaly: {a['name']} `{a['usage_type']}` from {a['start']} to {a['end']}, "
                     f"{_usd(a['impact'])} above normal. Check what changed then.")
    else:
        lines.append("- No cost anomaly above the threshold in the lookback window.")
    return Markdown("\n".join(lines))


def region_model(summary: pd.DataFrame, home: str, lines: pd.DataFrame | None = None) -> Markdown:
    totals = summary.loc["total"]
    scenarios = [name for name in totals.index if " with scenario" in name]
    home_name = next(n for n in scenarios if n.startswith(f"{home} "))
    base = totals[home_name]
    lines_out = [f"With the scenario, the estate would cost {_usd(base)} a month in {home}."]
    for name in scenarios:
        if name != home_name:
            region, _, unpriced = name.partition(" with scenario")
            left_out = f"; **{unpriced.strip(' ()')}: not in this total**" if unpriced else ""
            lines_out.append(f"- **{region}: {_usd(totals[name])} a month** "
                             f"({pct((totals[name] - base) / base * 100, signed=True)} against {home}{left_out}).")
    lines_out.append("- Prices are on-demand list prices from the AWS Price List; discounts (Savings Plans) "
                     "would apply in every region alike.")
    if lines is not None and (left := gaps.summary({"region model": lines})):
        lines_out.append(f"- {left}")
    return Markdown("\n".join(lines_out))


def unit_cost(table: pd.DataFrame, fit: pd.DataFrame) -> Markdown:
    last = table[table["month"] == table["month"].max()]
    known = last[last["cost_per_1000_sms"].notna()]
    lines = [f"Cost per 1,000 SMS in {last['month'].iloc[0]}: " + (", ".join(
        f"**{r['region']} {money(r['cost_per_1000_sms'], digits=4)}**" for _, r in known.iterrows()) or "unknown") + "."]
    for _, r in fit[fit["fixed_per_month"].notna()].iterrows():
        lines.append(f"- {r['region']}: about {_usd(r['fixed_per_month'])} a month is fixed and "
                     f"{money(r['variable_per_1000_sms'], digits=4)} per 1,000 SMS is variable "
                     f"({pct(r['variable_share_pct'])} of cost moves with volume; fit R² {r['r2']:.2f}).")
    lines.append("- A low variable share means more volume lowers the unit cost: the fixed part is spread thinner.")
    if left := gaps.summary({"unit cost": table, "fixed and variable": fit}):
        lines.append(f"- {left}")
    return Markdown("\n".join(lines))


def savings(summary: pd.DataFrame, found: dict[str, pd.DataFrame] | None = None) -> Markdown:
    total = float(summary["monthly_saving"].sum())
    lines = [f"Estimated savings: **{_usd(total)} a month** ({_usd(total * 12)} a year) across "
             f"{int((summary['monthly_saving'] > 0).sum())} kinds of opportunity."]
    for _, r in summary[summary["monthly_saving"] > 0].head(3).iterrows():
        lines.append(f"- {r['opportunity']}: {_usd(r['monthly_saving'])} a month — {r['how']}.")
    if found and (left := gaps.summary(found)):
        lines.append(f"- {left}")
    return Markdown("\n".join(lines))
