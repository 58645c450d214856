"""What the estate would cost in other regions: actual usage priced per region, plus a scenario.

The basket is a month's usage in the home region from the CUR (usage types with their
region prefix stripped, amounts as billed). Each line is priced with the Pricing API in
each target region; the scenario (params `cost.region_model.scenario`) changes node counts
and types, the RDS class, NAT gateways, data transfer and Datadog hosts. Global lines
(Route 53) cost the same everywhere; Datadog is priced per host from params. The home
region priced without a scenario reproduces its on-demand bill: the model's check.

A line the Pricing API has no price for in a region (or whose usage type has no form
there) is a row with its `gap` reason and no cost; a scenario with such lines is labelled
"(N lines unpriced)" wherever its total shows, a component none of whose lines could be
priced is empty (not zero), and `headline` and the conclusion name the items.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from opsbook.cost import gaps
from opsbook.cost.gaps import GAP
from opsbook.cost.pricebook import PriceBook
from opsbook.cost.query import CostQuery, add_months
from opsbook.cost.sources import CostSource
from opsbook.errors import OpsbookError
from opsbook.formats.aws_usage import REGION_PREFIX, strip_region, usage_type_in
from opsbook.params import Params, RegionScenario

COMPONENTS = [  # (component, test on service and base usage type), first match wins
    ("compute nodes", lambda s, u: u.startswith("BoxUsage")),
    ("EBS volumes", lambda s, u: u.startswith("EBS:VolumeUsage")),
    ("EBS snapshots", lambda s, u: u.startswith("EBS:Snapshot")),
    ("NAT gateways", lambda s, u: u.startswith("NatGateway")),
    ("RDS", lambda s, u: s == "AmazonRDS"),
    ("load balancer", lambda s, u: s == "AWSELB"),
    ("EKS control plane", lambda s, u: s == "AmazonEKS"),
    ("S3", lambda s, u: s == "AmazonS3"),
    ("data transfer", lambda s, u: s == "AWSDataTransfer"),
    ("Datadog", lambda s, u: "datadog" in s.lower()),
]


def component(service: str, usage_type: str) -> str:
    base = strip_region(usage_type)
    for name, test in COMPONENTS:
        if test(service, base):
            return name
    return "other (KMS, CloudTrail, Route 53)"


def basket(source: CostSource, params: Params, month: date) -> pd.DataFrame:
    """The month's usage lines in the home region (and global ones), with what they cost."""
    frame = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY",
                                   ("service", "usage_type", "operation", "region"), "unblended",
                                   include={"record_type": ("Usage", "SavingsPlanCoveredUsage"),
                                            "region": (params.region, "global")}))
    frame = frame[frame["cost"] != 0].copy()
    frame["component"] = [component(s, u) for s, u in zip(frame["service"], frame["usage_type"], strict=True)]
    frame["base_usage_type"] = frame["usage_type"].map(strip_region)
    return frame.rename(columns={"usage_quantity": "amount"})[
        ["service", "usage_type", "base_usage_type", "operation", "region", "component", "amount", "cost"]
    ].reset_index(drop=True)


@dataclass
class Knobs:
    """The scenario resolved against the actual estate (every knob has a value)."""

    node_groups: dict[str, tuple[int, str]]  # name -> (count, instance type)
    rds_instance_class: str | None  # None: every instance's class as billed
    nat_gateways: int
    data_transfer_out_gb: float
    datadog_hosts: int
    traffic: float = 1.0  # multiplier on usage that follows traffic


def actual_knobs(params: Params, lines: pd.DataFrame) -> Knobs:
    hours = lines[lines["base_usage_type"] == "NatGateway-Hours"]["amount"].sum()
    days = lines.attrs.get("hours_in_month", 730.0)
    dt = lines[lines["base_usage_type"] == "DataTransfer-Out-Bytes"]["amount"].sum()
    dd = lines[lines["component"] == "Datadog"]["amount"].sum()
    return Knobs({g.name: (g.desired_size, g.instance_type) for g in params.eks.node_groups},
                 None, round(hours / days) if hours else 0, float(dt), int(round(dd)))


def resolve(params: Params, lines: pd.DataFrame, scenario: RegionScenario) -> Knobs:
    base = actual_knobs(params, lines)
    groups = dict(base.node_groups)
    for name, change in scenario.node_groups.items():
        count, itype = groups.get(name, (0, params.eks.node_groups[0].instance_type))
        groups[name] = (change.count if change.count is not None else count, change.instance_type or itype)
    return Knobs(
        groups,
        scenario.rds_instance_class or base.rds_instance_class,
        scenario.nat_gateways if scenario.nat_gateways is not None else base.nat_gateways,
        scenario.data_transfer_out_gb if scenario.data_transfer_out_gb is not None else base.data_transfer_out_gb,
        scenario.datadog_hosts if scenario.datadog_hosts is not None else base.datadog_hosts,
    )


TRAFFIC = ("NatGateway-Bytes", "LCUUsage", "DataTransfer-Regional-Bytes", "Requests-Tier1", "Requests-Tier2",
           "KMS-Requests", "DataEventsRecorded", "DNS-Queries")


def apply(params: Params, lines: pd.DataFrame, knobs: Knobs, hours: float) -> pd.DataFrame:
    """The basket changed by the knobs (node hours, RDS class, NAT hours, transfer, hosts, traffic)."""
    out = lines.copy()
    actual = actual_knobs(params, lines)
    home = params.region
    # nodes: scheduled hours per group plus the autoscaled hours seen beyond them
    box = out["base_usage_type"].str.startswith("BoxUsage")
    scheduled = sum(c * hours for c, _ in actual.node_groups.values())
    extra = max(0.0, float(out.loc[box, "amount"].sum()) - scheduled)
    out = out[~box]
    rows = []
    first = next(iter(knobs.node_groups.values()), (0, ""))
    for count, itype in knobs.node_groups.values():
        rows.append((itype, count * hours))
    if extra and first[1]:
        rows.append((first[1], extra))
    prefix = f"{REGION_PREFIX[home]}-" if home in REGION_PREFIX else ""
    for itype, amount in rows:
        ut = f"{prefix}BoxUsage:{itype}"
        out.loc[len(out) + 1000] = {"service": "AmazonEC2", "usage_type": ut, "base_usage_type": f"BoxUsage:{itype}",
                                    "operation": "RunInstances", "region": home, "component": "compute nodes",
                                    "amount": amount, "cost": float("nan")}
    out = out.reset_index(drop=True)
    rds = out["base_usage_type"].str.contains("Usage:db.") & bool(knobs.rds_instance_class)
    for idx in out.index[rds]:
        base = out.at[idx, "base_usage_type"].split(":")[0] + f":{knobs.rds_instance_class}"
        out.at[idx, "base_usage_type"] = base
        out.at[idx, "usage_type"] = usage_type_in(out.at[idx, "usage_type"].split("-")[0] + "-" + base, home)
    out.loc[out["base_usage_type"] == "NatGateway-Hours", "amount"] = knobs.nat_gateways * hours
    if actual.data_transfer_out_gb:
        dt = out["base_usage_type"] == "DataTransfer-Out-Bytes"
        out.loc[dt, "amount"] *= knobs.data_transfer_out_gb / actual.data_transfer_out_gb
    out.loc[out["component"] == "Datadog", "amount"] = knobs.datadog_hosts
    traffic = out["base_usage_type"].isin(TRAFFIC)
    out.loc[traffic, "amount"] *= knobs.traffic
    return out


def _price_line(line: pd.Series, region: str, book: PriceBook) -> tuple[float | None, str, str]:
    """(unit price, usage type priced as, gap reason) of one line in `region`."""
    is_global = line["region"] == "global"
    try:
        target = line["usage_type"] if is_global else usage_type_in(line["usage_type"], region)
    except OpsbookError as exc:
        return None, "", f"{region}: {line['usage_type']} has no usage type there ({exc.message})"
    value = book.lookup(line["service"], "global" if is_global else region, target, line["operation"])
    operation = f" ({line['operation']})" if line["operation"] else ""
    gap = "" if value is not None else f"{region}: the Pricing API has no price for {line['service']} {target}{operation}"
    return value, target, gap


def price(lines: pd.DataFrame, region: str, home: str, book: PriceBook, datadog_host_month: float) -> pd.DataFrame:
    """Each line priced in `region` (its usage type re-prefixed); an unpriced line has its gap reason."""
    out = lines.copy()
    priced = [(datadog_host_month, "Datadog host list price (params)", "") if line["component"] == "Datadog"
              else _price_line(line, region, book) for _, line in out.iterrows()]
    out["region_priced"] = region
    out["unit_price"] = [p for p, _, _ in priced]
    out["priced_as"] = [a for _, a, _ in priced]
    out["monthly_cost"] = out["amount"] * out["unit_price"].astype(float)
    out[GAP] = [g for _, _, g in priced]
    return out


def _label_unpriced(priced: pd.DataFrame) -> pd.DataFrame:
    """A scenario with unpriced lines says so in its name, so its total never reads as complete."""
    missing = priced[priced[GAP] != ""].groupby("scenario").size()
    priced["scenario"] = [f"{s} ({missing[s]} lines unpriced)" if s in missing else s for s in priced["scenario"]]
    return priced


def _summary(priced: pd.DataFrame) -> pd.DataFrame:
    """Monthly cost by component and scenario: priced lines summed; a component with none priced is empty."""
    keys = ["component", "scenario"]
    summary = priced.groupby(keys, sort=False)["monthly_cost"].sum(min_count=1).unstack("scenario")
    absent = priced.groupby(keys, sort=False).size().unstack("scenario").isna()
    summary = summary.mask(absent, 0.0)[list(dict.fromkeys(priced["scenario"]))]
    summary.columns.name = "scenario"
    summary.loc["total"] = summary.sum()
    return summary


def model(source: CostSource, params: Params, month: date, book: PriceBook,
          regions: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lines priced per region, monthly cost per region and component); `regions` overrides params."""
    settings = params.cost.region_model
    targets = [r for r in (regions or settings.target_regions) if r != params.region]
    lines = basket(source, params, month)
    hours = calendar.monthrange(month.year, month.month)[1] * 24.0
    lines.attrs["hours_in_month"] = hours
    as_is = price(lines, params.region, params.region, book, settings.datadog_host_month_usd)
    as_is["scenario"] = f"{params.region} as billed"
    knobs = resolve(params, lines, settings.scenario)
    changed = apply(params, lines, knobs, hours)
    frames = [as_is]
    for region in [params.region, *targets]:
        priced = price(changed, region, params.region, book, settings.datadog_host_month_usd)
        priced["scenario"] = f"{region} with scenario"
        frames.append(priced)
    priced = _label_unpriced(pd.concat(frames, ignore_index=True))
    return priced, _summary(priced)


def headline(summary: pd.DataFrame, lines: pd.DataFrame) -> dict[str, object]:
    """Each scenario's monthly total, and what they leave out (number of unpriced lines, the first ones)."""
    totals = {name: round(float(value), 2) for name, value in summary.loc["total"].items()}
    return {**totals, **gaps.headline({"region model": lines})}


def sensitivity(source: CostSource, params: Params, month: date, book: PriceBook, region: str) -> pd.DataFrame:
    """Monthly cost in `region` as each knob swings by +/- `sensitivity` (others as in the scenario);
    `unpriced_lines` counts the lines no total here includes (no price in the region)."""
    settings = params.cost.region_model
    s = settings.sensitivity
    lines = basket(source, params, month)
    hours = calendar.monthrange(month.year, month.month)[1] * 24.0
    lines.attrs["hours_in_month"] = hours
    base = resolve(params, lines, settings.scenario)

    def total(knobs: Knobs) -> float:
        priced = price(apply(params, lines, knobs, hours), region, params.region, book,
                       settings.datadog_host_month_usd)
        return float(priced["monthly_cost"].sum())

    def swing(value: float, up: bool, whole: bool) -> float:
        step = max(1, round(value * s)) if whole else value * s
        return value + step if up else max(0, value - step)

    reference_lines = price(apply(params, lines, base, hours), region, params.region, book,
                            settings.datadog_host_month_usd)
    reference = float(reference_lines["monthly_cost"].sum())
    rows = []
    variants: list[tuple[str, Any]] = []
    for name, (count, itype) in base.node_groups.items():
        variants.append((f"{name} nodes ({count})", lambda k, up, n=name, c=count, t=itype: _with(
            k, node_groups={**k.node_groups, n: (int(swing(c, up, True)), t)})))
    variants.append((f"NAT gateways ({base.nat_gateways})",
                     lambda k, up: _with(k, nat_gateways=int(swing(k.nat_gateways, up, True)))))
    variants.append((f"data transfer out ({base.data_transfer_out_gb:,.0f} GB)",
                     lambda k, up: _with(k, data_transfer_out_gb=swing(k.data_transfer_out_gb, up, False))))
    variants.append((f"Datadog hosts ({base.datadog_hosts})",
                     lambda k, up: _with(k, datadog_hosts=int(swing(k.datadog_hosts, up, True)))))
    variants.append((f"SMS traffic (x1 +/- {s:.0%})", lambda k, up: _with(k, traffic=swing(1.0, up, False))))
    for label, change in variants:
        low, high = total(change(base, False)), total(change(base, True))
        rows.append({"knob": label, "low": low - reference, "high": high - reference, "reference": reference})
    out = pd.DataFrame(rows)
    out["unpriced_lines"] = int((reference_lines[GAP] != "").sum())
    return out.reindex(out[["low", "high"]].abs().max(axis=1).sort_values().index).reset_index(drop=True)


def _with(knobs: Knobs, **changes: object) -> Knobs:
    from dataclasses import replace

    return replace(knobs, **changes)
