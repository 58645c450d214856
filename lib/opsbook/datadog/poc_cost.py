"""The Datadog agent PoC: what the measured cluster cost, and what production would.

Billing rules (https://docs.datadoghq.com/account_management/billing/): hosts are
metered hourly and billed at the high-water mark of the lower 99% of the month's hours;
containers above the plan's per-host allotment are billed per hour above it (averaged
over the month); custom metrics are billed on their hourly average above the per-host
allotment of the billed hosts. Production is projected from the measured hours scaled
by the ratio of node counts in the two environments' params (hour by hour, so the
autoscaler's daily swing carries over); custom metrics scale the same way, an upper
bound, since part of them do not grow with nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from opsbook.datadog import usage as dd_usage
from opsbook.datadog import window as windows
from opsbook.datadog.client import Datadog
from opsbook.errors import OpsbookError, ParamsError
from opsbook.params import DatadogPricing, Params

COST_COLUMNS = ["scope", "plan", "billing", "billed_hosts", "host_cost", "extra_containers", "container_cost",
                "custom_metrics", "extra_custom_metrics", "custom_metric_cost", "monthly", "yearly"]


@dataclass
class MeasuredUsage:
    """One month of what Datadog metered for the measured cluster."""

    month: windows.Window
    hours: pd.DataFrame  # hour, host_count, container_count
    metrics: pd.DataFrame  # metric, category, avg_per_hour, max_per_hour
    summary: dict[str, Any]  # Datadog's own month summary

    @property
    def custom_metrics(self) -> float:
        """Billable custom metrics: the hourly average summed over custom metrics."""
        return float(self.metrics.loc[self.metrics["category"] == "custom", "avg_per_hour"].sum())


def measure(dd: Datadog, month: str = "") -> MeasuredUsage:
    """Read a month's usage (default: the last full month)."""
    window = windows.month(month)
    measured = MeasuredUsage(
        month=window, hours=dd_usage.hosts_hourly(dd, window), metrics=dd_usage.top_avg_metrics(dd, window),
        summary=dd_usage.month_summary(dd, window),
    )
    if measured.hours.empty:
        raise OpsbookError(
            f"Datadog metered no hosts in {windows.label(window)}: the agent did not report then",
            remedy="pick a month of the PoC with the month parameter (YYYY-MM)",
        )
    return measured


def high_water_mark(counts: pd.Series | list[int]) -> int:
    """The highest hourly count once the top 1% of hours are left out."""
    ordered = sorted(int(c) for c in counts)
    if not ordered:
        return 0
    return ordered[len(ordered) - len(ordered) // 100 - 1]


def node_scale(measured: Params, target: Params) -> float:
    """How many times more nodes the target runs (desired sizes summed over node groups)."""
    have = sum(g.desired_size for g in measured.eks.node_groups)
    want = sum(g.desired_size for g in target.eks.node_groups)
    return want / have


def measured_table(measured: MeasuredUsage) -> pd.DataFrame:
    """The month as measured, beside Datadog's own summary where it has one."""
    hosts, containers = measured.hours["host_count"], measured.hours["container_count"]
    summary = measured.summary
    rows = [
        ("hours metered", len(measured.hours), None),
        ("hosts: average", round(float(hosts.mean()), 1), None),
        ("hosts: highest hour", int(hosts.max()), None),
        ("hosts: billed (top of lower 99%)", high_water_mark(hosts), summary.get("host_top99p")),
        ("containers: average", round(float(containers.mean()), 1), summary.get("container_avg")),
        ("containers: top of lower 99%", high_water_mark(containers), summary.get("container_hwm")),
        ("custom metrics: hourly average", round(measured.custom_metrics), summary.get("custom_ts_avg")),
    ]
    return pd.DataFrame(rows, columns=["measure", "computed", "datadog summary"])


def scaled_hours(measured: MeasuredUsage, scale: float) -> pd.DataFrame:
    """The measured hours with hosts and containers scaled (rounded up: whole nodes)."""
    hours = measured.hours.copy()
    hours["host_count"] = [math.ceil(h * scale - 1e-9) for h in hours["host_count"]]
    hours["container_count"] = [math.ceil(c * scale - 1e-9) for c in hours["container_count"]]
    return hours


def costs(hours: pd.DataFrame, custom_metrics: float, pricing: DatadogPricing, scope: str) -> pd.DataFrame:
    """The monthly bill of every plan in `pricing` for these metered hours."""
    rows = []
    billed = high_water_mark(hours["host_count"])
    for price in pricing.plans:
        allotted = price.containers_per_host * hours["host_count"]
        extra_containers = float((hours["container_count"] - allotted).clip(lower=0).mean())
        extra_custom = max(0.0, custom_metrics - price.custom_metrics_per_host * billed)
        host_cost = billed * price.host_month
        container_cost = extra_containers * price.container_month
        custom_cost = extra_custom * price.custom_metric_month
        monthly = host_cost + container_cost + custom_cost
        rows.append((scope, price.plan, price.billing, billed, host_cost, extra_containers, container_cost,
                     custom_metrics, extra_custom, custom_cost, monthly, 12 * monthly))
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def _pricing(params: Params) -> DatadogPricing:
    if params.datadog.pricing is None:
        raise ParamsError(f"{params.source}: field 'datadog.pricing': required for the PoC cost projection but missing",
                          remedy="add datadog.pricing (source, as_of, plans, cloudwatch: the list prices the "
                                 "projection uses) to the params")
    return params.datadog.pricing


def project(measured: MeasuredUsage, params: Params, target: Params) -> pd.DataFrame:
    """The bill under every plan: as measured in `params`' env, and projected onto `target`."""
    pricing = _pricing(params)
    scale = node_scale(params, target)
    return pd.concat([
        costs(measured.hours, measured.custom_metrics, pricing, f"{params.env} (measured)"),
        costs(scaled_hours(measured, scale), math.ceil(measured.custom_metrics * scale - 1e-9), pricing,
              f"{target.env} (projected x{scale:g})"),
    ], ignore_index=True)


def cloudwatch_alternative(measured: MeasuredUsage, params: Params, target: Params) -> pd.DataFrame:
    """The same monitoring on CloudWatch only (Container Insights, custom metrics, alarms, dashboards)."""
    prices = _pricing(params).cloudwatch
    scale = node_scale(params, target)
    hours = scaled_hours(measured, scale)
    # CloudWatch prorates metrics by the hour: the average node count, not a high-water mark
    nodes = float(hours["host_count"].mean())
    insights = prices.container_insights_metrics_per_node * nodes
    custom = math.ceil(measured.custom_metrics * scale - 1e-9)
    alarms = len(params.datadog.monitors)
    insights_cost, custom_cost = insights * prices.metric_month, custom * prices.metric_month
    alarm_cost, dashboard_cost = alarms * prices.alarm_month, prices.dashboards * prices.dashboard_month
    monthly = insights_cost + custom_cost + alarm_cost + dashboard_cost
    return pd.DataFrame([{
        "scope": f"{target.env} (projected x{scale:g})", "average_nodes": round(nodes, 1),
        "container_insights_metrics": round(insights), "container_insights_cost": insights_cost,
        "custom_metrics": custom, "custom_metric_cost": custom_cost, "alarms": alarms, "alarm_cost": alarm_cost,
        "dashboard_cost": dashboard_cost, "monthly": monthly, "yearly": 12 * monthly,
    }])


PARTS = ("hosts / nodes", "containers", "custom metrics", "alarms & dashboards")


def comparison(projection: pd.DataFrame, cloudwatch: pd.DataFrame) -> pd.DataFrame:
    """Monthly cost of every option for the target environment, by what drives it, cheapest first."""
    target = projection[projection["scope"] == projection["scope"].iloc[-1]]
    rows = [
        {"option": f"Datadog {r.plan} ({r.billing})", "hosts / nodes": r.host_cost, "containers": r.container_cost,
         "custom metrics": r.custom_metric_cost, "alarms & dashboards": 0.0, "monthly": r.monthly}
        for r in target.itertuples()
    ]
    cw = cloudwatch.iloc[0]
    rows.append({"option": "CloudWatch only", "hosts / nodes": cw["container_insights_cost"], "containers": 0.0,
                 "custom metrics": cw["custom_metric_cost"],
                 "alarms & dashboards": cw["alarm_cost"] + cw["dashboard_cost"], "monthly": cw["monthly"]})
    return pd.DataFrame(rows).sort_values("monthly").reset_index(drop=True)


# --- charts ---------------------------------------------------------------------------------


def host_chart(measured: MeasuredUsage, params: Params, target: Params):
    """Hourly hosts as the autoscaler moves them, with what Datadog bills (the high-water mark)."""
    import matplotlib.pyplot as plt

    scale = node_scale(params, target)
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, hours, title in (
        (axes[0], measured.hours, f"{params.env}: measured"),
        (axes[1], scaled_hours(measured, scale), f"{target.env}: projected (x{scale:g})"),
    ):
        ax.step(hours["hour"], hours["host_count"], where="post", linewidth=0.8, label="hosts per hour")
        mark = high_water_mark(hours["host_count"])
        ax.axhline(mark, color="#cf222e", linestyle="--", label=f"billed: {mark} (top of lower 99%)")
        ax.axhline(hours["host_count"].mean(), color="#1a7f37", linestyle=":",
                   label=f"average: {hours['host_count'].mean():.1f}")
        ax.set_title(title)
        ax.set_ylabel("hosts")
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"Datadog hosts, {windows.label(measured.month)}")
    fig.tight_layout()
    plt.close(fig)
    return fig


def cost_chart(compared: pd.DataFrame, currency: str = "USD"):
    """Monthly cost of every option, split by what drives it."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    left = pd.Series(0.0, index=compared.index)
    for part, colour in zip(PARTS, ("#0969da", "#bf8700", "#8250df", "#57606a"), strict=True):
        ax.barh(compared["option"], compared[part], left=left, color=colour, label=part)
        left += compared[part]
    for y, total in enumerate(compared["monthly"]):
        ax.text(total, y, f"  {total:,.0f}", va="center", fontsize=8)
    ax.set_xlabel(f"{currency} per month")
    ax.invert_yaxis()
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Monitoring cost per month (target environment)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def conclusion(compared: pd.DataFrame, projection: pd.DataFrame, params: Params) -> str:
    """A short written conclusion for a finance reader (Markdown)."""
    pricing = _pricing(params)
    cheapest, dearest = compared.iloc[0], compared.iloc[-1]
    target = projection[projection["scope"] == projection["scope"].iloc[-1]]
    scope = target["scope"].iloc[0]
    custom_over = target.loc[target["extra_custom_metrics"] > 0, ["plan", "billing"]]
    lines = [
        f"**For {scope}, the cheapest option is {cheapest['option']} at about "
        f"{cheapest['monthly']:,.0f} {pricing.currency} a month ({12 * cheapest['monthly']:,.0f} a year)**; "
        f"the dearest is {dearest['option']} at {dearest['monthly']:,.0f}.",
        f"Hosts are billed at {int(target['billed_hosts'].iloc[0])}, the high-water mark of the autoscaled "
        "node count, not its average: a busier peak raises the whole month's bill.",
    ]
    if not custom_over.empty:
        plans = ", ".join(sorted({f"{r.plan}" for r in custom_over.itertuples()}))
        lines.append(f"Custom metrics exceed the per-host allotment under {plans}: trimming tag cardinality "
                     "(see the top metrics above) lowers that line.")
    lines.append(f"Prices: {pricing.source}, as of {pricing.as_of}; list prices, before any negotiated discount.")
    return "\n\n".join(lines)
