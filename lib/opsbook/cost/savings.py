"""Savings opportunities, each with its estimated monthly saving.

- unattached EBS volumes (EC2 API), priced with the Pricing API;
- old EBS snapshots: first billed more than `snapshot_max_age_days` ago (CUR), drill
  leftovers (opsbook:purpose tag) marked, plus old snapshots the EC2 API lists;
- gp2 volumes that would cost less as gp3 (same size; gp3's baseline 3,000 IOPS covers gp2
  volumes up to 1 TB);
- NAT gateways and load balancers that carry almost nothing;
- node groups whose pods request much less than the nodes offer (Kubernetes API);
- Savings Plans coverage of EC2 compute against a target.

A finding whose saving cannot be priced (no price, no bill for it in the month) keeps its
row with its `gap` reason and no saving; the summary counts them per opportunity.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

import pandas as pd

from opsbook.cost import gaps
from opsbook.cost.allocation import ClusterSnapshot
from opsbook.cost.gaps import GAP
from opsbook.cost.pricebook import PriceBook
from opsbook.cost.query import UNTAGGED, CostQuery, add_months
from opsbook.cost.sources import CostSource
from opsbook.formats.aws_usage import usage_type_in
from opsbook.params import CostSavings

SUMMARY_COLUMNS = ["opportunity", "items", "monthly_saving", "unpriced", "how"]


def _ebs_usage_type(volume_type: str, region: str) -> str:
    return usage_type_in(f"EUC1-EBS:VolumeUsage.{volume_type}", region)


def unattached_volumes(ec2: Any, book: PriceBook, region: str) -> pd.DataFrame:
    rows = []
    for page in ec2.get_paginator("describe_volumes").paginate(Filters=[{"Name": "status", "Values": ["available"]}]):
        for v in page["Volumes"]:
            tags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
            usage_type = _ebs_usage_type(v["VolumeType"], region)
            price = book.lookup("AmazonEC2", region, usage_type)
            rows.append({"volume_id": v["VolumeId"], "name": tags.get("Name", ""), "type": v["VolumeType"],
                         "size_gib": v["Size"], "az": v["AvailabilityZone"], "created": v["CreateTime"].date(),
                         "opsbook_purpose": tags.get("opsbook:purpose", ""),
                         "monthly_saving": v["Size"] * price if price is not None else float("nan"),
                         GAP: "" if price is not None else f"{v['VolumeId']}: no price for {usage_type} in {region}"})
    return pd.DataFrame(rows, columns=["volume_id", "name", "type", "size_gib", "az", "created", "opsbook_purpose",
                                       "monthly_saving", GAP])


def old_snapshots(source: CostSource, ec2: Any, today: date, settings: CostSavings,
                  history_months: int = 13) -> pd.DataFrame:
    """Snapshots billed for longer than the limit (CUR), and old ones the EC2 API lists."""
    start = add_months(today.replace(day=1), -(history_months - 1))
    last_month = add_months(today.replace(day=1), -1)
    daily = source.costs(CostQuery(start, today, "DAILY", ("resource_id", "tag:opsbook:purpose"), "unblended",
                                   include={"usage_type": ("%EBS:SnapshotUsage%",)}))
    seen = daily.groupby(["resource_id", "tag:opsbook:purpose"]).agg(first=("period", "min"), last=("period", "max"))
    month_cost = daily[(daily["period"] >= pd.Timestamp(last_month)) & (daily["period"] < pd.Timestamp(today.replace(day=1)))]
    month_cost = month_cost.groupby("resource_id")["cost"].sum()
    limit = pd.Timestamp(today - timedelta(days=settings.snapshot_max_age_days))
    rows = []
    for (resource, purpose), span in seen.iterrows():
        if span["first"] > limit or span["last"] < pd.Timestamp(today - timedelta(days=3)):
            continue  # young, or no longer billed
        rows.append({"snapshot_id": resource.rsplit("/", 1)[-1], "first_billed": span["first"].date(),
                     "age_days": (today - span["first"].date()).days,
                     "drill_leftover": purpose != UNTAGGED, "opsbook_purpose": "" if purpose == UNTAGGED else purpose,
                     "monthly_saving": float(month_cost.get(resource, 0.0)), "seen_in": "CUR", GAP: ""})
    known = {r["snapshot_id"] for r in rows}
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
        for snap in page["Snapshots"]:
            created = snap["StartTime"].date()
            if snap["SnapshotId"] in known or created > today - timedelta(days=settings.snapshot_max_age_days):
                continue
            tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
            rows.append({"snapshot_id": snap["SnapshotId"], "first_billed": created, "age_days": (today - created).days,
                         "drill_leftover": "opsbook:purpose" in tags, "opsbook_purpose": tags.get("opsbook:purpose", ""),
                         "monthly_saving": float("nan"), "seen_in": "EC2 API (not in the CUR period)",
                         GAP: f"{snap['SnapshotId']}: not billed in the CUR period, its cost is unknown"})
    out = pd.DataFrame(rows, columns=["snapshot_id", "first_billed", "age_days", "drill_leftover", "opsbook_purpose",
                                      "monthly_saving", "seen_in", GAP])
    return out.sort_values("age_days", ascending=False).reset_index(drop=True)


def gp2_to_gp3(source: CostSource, month: date, book: PriceBook) -> pd.DataFrame:
    frame = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY", ("resource_id", "usage_type", "region"),
                                   "unblended", include={"usage_type": ("%EBS:VolumeUsage.gp2",)}))
    rows = []
    for _, line in frame.iterrows():
        gp3_type = line["usage_type"].replace(".gp2", ".gp3")
        gp2 = book.lookup("AmazonEC2", line["region"], line["usage_type"])
        gp3 = book.lookup("AmazonEC2", line["region"], gp3_type)
        missing = [u for u, p in ((line["usage_type"], gp2), (gp3_type, gp3)) if p is None]
        priced = gp2 is not None and gp3 is not None
        rows.append({"volume_id": line["resource_id"], "region": line["region"], "gb_month": line["usage_quantity"],
                     "gp2_cost": line["cost"], "gp3_cost": line["usage_quantity"] * gp3 if priced else float("nan"),
                     "monthly_saving": line["usage_quantity"] * (gp2 - gp3) if priced else float("nan"),
                     GAP: "" if priced else f"{line['resource_id']}: no price for {', '.join(missing)} "
                                            f"in {line['region']}"})
    return pd.DataFrame(rows, columns=["volume_id", "region", "gb_month", "gp2_cost", "gp3_cost", "monthly_saving",
                                       GAP])


def idle_network(source: CostSource, month: date, settings: CostSavings) -> pd.DataFrame:
    """NAT gateways processing under the GB limit and NLBs under the LCU limit in the month."""
    frame = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY", ("resource_id", "usage_type"), "unblended",
                                   include={"usage_type": ("%NatGateway-Hours", "%NatGateway-Bytes",
                                                           "%LoadBalancerUsage", "%LCUUsage")}))
    rows = []
    for resource, part in frame.groupby("resource_id"):
        kind = "NAT gateway" if "natgateway" in resource else "load balancer"
        hourly = part[part["usage_type"].str.endswith(("NatGateway-Hours", "LoadBalancerUsage"))]
        traffic = part[part["usage_type"].str.endswith(("NatGateway-Bytes", "LCUUsage"))]
        amount = float(traffic["usage_quantity"].sum())
        limit = settings.idle_nat_gb_month if kind == "NAT gateway" else settings.idle_nlb_lcu_month
        if amount < limit:
            rows.append({"resource": resource.rsplit("/", 2)[-1] if kind == "NAT gateway" else resource.rsplit("/", 2)[-2],
                         "kind": kind, "traffic": amount, "traffic_unit": "GB" if kind == "NAT gateway" else "LCU-hours",
                         "limit": limit, "monthly_saving": float(hourly["cost"].sum() + traffic["cost"].sum())})
    return pd.DataFrame(rows, columns=["resource", "kind", "traffic", "traffic_unit", "limit", "monthly_saving"])


def node_groups(snapshot: ClusterSnapshot, source: CostSource, month: date, settings: CostSavings) -> pd.DataFrame:
    """Requests against capacity per node group; nodes that could go at the target packing."""
    node_cost = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY", ("resource_id",), "amortized",
                                       include={"resource_id": tuple(snapshot.nodes["instance_id"])}))
    cost = dict(zip(node_cost["resource_id"], node_cost["cost"], strict=True))
    requests = snapshot.pods.groupby("node")[["cpu_request", "memory_request_gib"]].sum()
    rows = []
    for group, nodes in snapshot.nodes.groupby("node_group"):
        cpu = nodes["cpu"].sum()
        mem = nodes["memory_gib"].sum()
        req = requests.reindex(nodes["node"]).fillna(0.0).sum()
        packing = max(req["cpu_request"] / cpu, req["memory_request_gib"] / mem)
        per_node = max(req["cpu_request"] / (nodes["cpu"].mean() * settings.node_request_target),
                       req["memory_request_gib"] / (nodes["memory_gib"].mean() * settings.node_request_target))
        needed = max(int(-(-per_node // 1)), min(len(nodes), 2))  # keep two nodes for availability
        removable = max(0, len(nodes) - needed)
        billed = [cost[i] for i in nodes["instance_id"] if i in cost]
        avg_cost = sum(billed) / len(billed) if billed else float("nan")
        unbilled = len(nodes) - len(billed)
        rows.append({"node_group": group, "nodes": len(nodes), "cpu_requested_pct": req["cpu_request"] / cpu * 100,
                     "memory_requested_pct": req["memory_request_gib"] / mem * 100, "packing_pct": packing * 100,
                     "nodes_needed": needed, "removable": removable, "node_month_cost": avg_cost,
                     "monthly_saving": removable * avg_cost if removable else 0.0,
                     GAP: "" if not (unbilled and removable) else
                     f"{group}: {unbilled} of {len(nodes)} nodes not billed in {month:%Y-%m}"
                     + ("; node cost unknown" if not billed else "; cost from the billed ones")})
    return pd.DataFrame(rows, columns=["node_group", "nodes", "cpu_requested_pct", "memory_requested_pct",
                                       "packing_pct", "nodes_needed", "removable", "node_month_cost", "monthly_saving",
                                       GAP])


def savings_plan_coverage(source: CostSource, month: date, settings: CostSavings) -> dict[str, float]:
    """EC2 compute covered by Savings Plans, and the commitment that would reach the target."""
    frame = source.costs(CostQuery(month, add_months(month, 1), "MONTHLY", ("record_type",), "unblended",
                                   include={"usage_type": ("%BoxUsage%",),
                                            "record_type": ("Usage", "SavingsPlanCoveredUsage")}))
    by_type = dict(zip(frame["record_type"], frame["cost"], strict=True))
    covered = by_type.get("SavingsPlanCoveredUsage", 0.0)
    eligible = covered + by_type.get("Usage", 0.0)
    gap = max(0.0, settings.savings_plan_target_coverage * eligible - covered)
    hours = calendar.monthrange(month.year, month.month)[1] * 24
    return {
        "eligible_on_demand": eligible, "covered_on_demand": covered,
        "coverage_pct": covered / eligible * 100 if eligible else 0.0,
        "target_pct": settings.savings_plan_target_coverage * 100,
        "extra_commitment_per_hour": gap * (1 - settings.savings_plan_discount) / hours,
        "monthly_saving": gap * settings.savings_plan_discount,
    }


def summary(found: dict[str, pd.DataFrame], coverage: dict[str, float]) -> pd.DataFrame:
    how = {
        "unattached EBS volumes": "snapshot if needed, then delete",
        "old EBS snapshots": "delete after checking no restore needs them (drill leftovers first)",
        "gp2 to gp3": "modify volume type in place (no downtime)",
        "idle NAT gateways / load balancers": "route the AZ through another NAT, or remove the LB",
        "node groups over capacity": "lower desired/min size (cluster-autoscaler keeps headroom)",
    }
    rows = [{"opportunity": name, "items": len(table), "monthly_saving": float(table["monthly_saving"].sum()),
             "unpriced": gaps.count({name: table}), "how": how[name]} for name, table in found.items()]
    rows.append({"opportunity": "Savings Plans coverage", "items": 1 if coverage["monthly_saving"] > 0 else 0,
                 "monthly_saving": coverage["monthly_saving"], "unpriced": 0,
                 "how": f"commit ${coverage['extra_commitment_per_hour']:.3f}/h more (Compute SP, 1 year)"})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values("monthly_saving", ascending=False).reset_index(drop=True)



def headline(summary: pd.DataFrame, found: dict[str, pd.DataFrame]) -> dict[str, object]:
    """Opportunities and their known monthly saving, and the findings whose saving is unknown."""
    return {"opportunities": len(summary), "monthly saving": round(float(summary["monthly_saving"].sum()), 2),
            **gaps.headline(found)}
