"""The sandbox's CUR generator: 13 months of CUR 2.0 line items for the sandbox estate.

The estate's resources come from params and from what the AWS seed created (node instance
ids, PVC volume ids, NAT gateway ids), priced with the repo's list prices
(`cost/data/prices.csv`). Usage that moves with traffic follows a daily SMS volume series
that is written beside the CUR as the SMS-volume CSV, so unit costs and forecasts have the
same driver the bill had.

The bill carries the effects a real one has, each driven by params `cost.generator`, so
that forecasts and anomaly detection are judged on something that behaves like a bill and
not on a flat line that any model gets right:

- growth: SMS volume grows by `sms_growth_per_month` (compounded), storage (S3, RDS backups)
  grows on its own; traffic-driven usage follows the volume with its elasticity;
- seasonality: SMS volume by weekday (`weekday_profile`: weekends are quiet, so the number
  of weekend days in a month moves its bill) and by calendar month (`month_profile`: the
  December peak of notifications and the summer dip), with `sms_noise` day to day; the
  cluster autoscaler adds a burst node on busy days;
- a step: `added_node_group` is billed only for the last `added_node_group_days_ago` days,
  as when a team adds a node group (its nodes, their root volumes and their Datadog hosts
  appear at once; a forecast must follow the new level, not average it away);
- one anomaly: a NAT gateway's data processing jumps by `anomaly_factor` for `anomaly_days`
  days `anomaly_days_ago` days back (a misrouted batch job), which anomaly detection must
  find and a forecast must not learn as a trend;
- the invoice's own lines: tax and credits on closed months, a Compute Savings Plan.

Layout is the Data Exports one: `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.snappy.parquet`
plus `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`. Rows are
built column-wise with numpy and Arrow dictionary arrays, one billing period at a time, so
the 50M-row benchmark CUR is written without holding it in memory. Everything is
deterministic for given params and ids (random draws are seeded by `seed`): the sandbox
caches the files by fingerprint.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opsbook.formats.aws_usage import REGION_PREFIX
from opsbook.params import CurGenerator, Params
from opsbook.sandbox.cost.prices import list_price, price_fingerprint, require_quote

GENERATOR_VERSION = "2"
ROWS_PER_FILE = 2_000_000
DATADOG_PRODUCT_CODE = "datadog-pro-marketplace"
SP_PRODUCT_CODE = "ComputeSavingsPlans"
LOG_ARCHIVE_SUFFIX = "999"  # the log-archive account: the payer's id with its last 3 digits replaced
LINE_ITEM_TYPES = [
    "Usage", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee", "Tax", "Credit",
]
USAGE, COVERED, NEGATION, FEE, TAX, CREDIT = range(6)
SERVICE_NAMES = {  # product_product_name / the `product` map's product_name
    "AmazonEC2": "Amazon Elastic Compute Cloud",
    "AmazonEKS": "Amazon Elastic Container Service for Kubernetes",
    "AmazonRDS": "Amazon Relational Database Service",
    "AmazonS3": "Amazon Simple Storage Service",
    "AWSELB": "Elastic Load Balancing",
    "AWSDataTransfer": "AWS Data Transfer",
    "awskms": "AWS Key Management Service",
    "AWSCloudTrail": "AWS CloudTrail",
    "AmazonRoute53": "Amazon Route 53",
    DATADOG_PRODUCT_CODE: "Datadog Pro (Annual)",
    SP_PRODUCT_CODE: "Savings Plans for AWS Compute usage",
}


# --- the estate as billable lines -----------------------------------------------------------


@dataclass
class Inventory:
    """Ids of the estate's resources (from the AWS seed's facts, or synthetic)."""

    nodes: list[dict[str, str]] = field(default_factory=list)  # instance_id, az, instance_type, node_group
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # "ns/pvc" -> volume_id, az, size_gi
    nat_gateways: dict[str, str] = field(default_factory=dict)  # az -> nat id
    orphan_volume: dict[str, Any] | None = None  # volume_id, az, size_gi


def _hid(*parts: object, n: int = 17) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def synthetic_inventory(params: Params, region: str | None = None, tag: str = "") -> Inventory:
    """Deterministic ids for the params' estate (benchmarks, other regions, missing facts)."""
    region = region or params.region
    azs = [f"{region}{s}" for s in "abc"] if region != params.region else list(params.network.azs)
    inv = Inventory()
    for group in params.eks.node_groups:
        for i in range(group.desired_size):
            inv.nodes.append({
                "instance_id": f"i-{_hid(params.env, region, tag, group.name, i)}",
                "az": azs[i % len(azs)], "instance_type": group.instance_type, "node_group": group.name,
            })
    k = 0
    for ns in params.namespaces:
        for wl in ns.stateful:
            for ordinal in range(wl.replicas):
                inv.volumes[f"{ns.name}/data-{wl.name}-{ordinal}"] = {
                    "volume_id": f"vol-{_hid(params.env, region, tag, ns.name, wl.name, ordinal)}",
                    "az": azs[k % len(azs)], "size_gi": wl.volume_size_gi,
                }
                k += 1
    nat_azs = azs if params.network.nat_gateway_per_az else azs[:1]
    inv.nat_gateways = {az: f"nat-{_hid(params.env, region, tag, 'nat', az)}" for az in nat_azs}
    inv.orphan_volume = {"volume_id": f"vol-{_hid(params.env, region, tag, 'orphan')}", "az": azs[0], "size_gi": 100}
    return inv


@dataclass
class Line:
    """One billable usage stream of one resource."""

    product_code: str
    usage_type: str
    operation: str
    resource_id: str
    region: str
    az: str
    unit: str
    rate: float
    kind: str  # hourly | storage | driver | monthly | burst
    quantity: float  # hourly: units/h; storage: GB; driver: units/h at mean traffic; monthly: units
    account: str
    tags: dict[str, str] = field(default_factory=dict)
    elasticity: float = 0.0  # driver: share of the quantity that follows traffic
    growth: float = 0.0  # storage: growth a month
    family: str = ""
    instance_type: str = ""
    description: str = ""
    valid_from: date | None = None
    valid_to: date | None = None  # exclusive
    sp_covered: bool = False
    anomaly: bool = False
    traffic_region: str = ""  # whose SMS volume drives it
    derived: str = ""  # the price's rule when it is derived, not read from AWS's pages (prices.py)


def _prefix(region: str) -> str:
    return REGION_PREFIX[region]


class _Builder:
    def __init__(self, params: Params, gen: CurGenerator, region: str, account: str, share: float) -> None:
        self.params, self.gen, self.region, self.account = params, gen, region, account
        self.p = _prefix(region)
        self.share = share
        self.lines: list[Line] = []
        self.main = region == params.region
        self.cluster = params.eks.cluster_name if self.main else f"{params.eks.cluster_name}-{self.p.lower()}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def tags(self, team: str | None, service: str | None, cluster: bool = False, **extra: str) -> dict[str, str]:
        tags = {"user_env": self.params.env}
        if team:
            tags["user_team"] = team
        if service:
            tags["user_service"] = service
        if cluster:
            tags["user_eks_cluster_name"] = self.cluster
        tags.update(extra)
        return tags

    def add(self, product: str, base: str, operation: str, resource: str, unit: str, kind: str, quantity: float,
            *, az: str = "", tags: dict | None = None, usage_type: str | None = None, **kw: Any) -> Line:
        usage_type = usage_type or f"{self.p}-{base}"
        region = self.region if product != "AmazonRoute53" else "global"
        price = require_quote(product, region, usage_type, operation)
        line = Line(product, usage_type, operation, resource, self.region, az, unit, price.price_usd, kind, quantity,
                    kw.pop("account", self.account), tags or {}, family=price.product_family,
                    traffic_region=self.region, derived=price.derived, **kw)
        self.lines.append(line)
        return line


def estate_lines(params: Params, gen: CurGenerator, inv: Inventory, region: str, share: float,
                 start: date, end: date, sp_discount: float) -> list[Line]:
    """The billable lines of the estate in one region (`share`: its part of the SMS traffic)."""
    b = _Builder(params, gen, region, params.account_id, share)
    b.add("AmazonEKS", "AmazonEKS-Hours:perCluster", "CreateOperation", b.arn("eks", f"cluster/{b.cluster}"),
          "Hrs", "hourly", 1.0, tags=b.tags("platform", "eks", True))
    _node_lines(b, inv, start, end, added_since(params, end))
    _volume_lines(b, inv, start, end)
    if b.main:
        _leftover_lines(b, inv, end)
    _rds_lines(b)
    _nat_lines(b, inv)
    _nlb_lines(b)
    _s3_lines(b)
    _transfer_kms_trail_lines(b)
    if b.main:
        _global_lines(b)
    lines = b.lines
    if b.main:
        lines.extend(_datadog_lines(params, added_since(params, end)))
    for line in lines:
        line.traffic_region = region
        line.description = line.description or f"{line.usage_type} at ${line.rate:g} per {line.unit}"
        if line.sp_covered:
            line.description = f"{line.usage_type} covered by Savings Plan"
        if line.derived:
            line.description += f" (derived price: {line.derived})"
    return lines


def added_since(params: Params, end: date) -> date | None:
    """The first day the added node group is billed (None: no group added in the history)."""
    gen = params.cost.generator  # params check that the group is one of eks.node_groups
    return None if gen.added_node_group is None else end - timedelta(days=gen.added_node_group_days_ago)


def _node_lines(b: _Builder, inv: Inventory, start: date, end: date, added: date | None) -> None:
    """Nodes, their root volumes (gp2 from the launch template: a savings finding), burst capacity."""
    covered_group = b.gen.savings_plan_node_group if b.main else None
    step_group = b.gen.added_node_group if b.main else None
    for node in inv.nodes:
        itype = node["instance_type"]
        since = added if node["node_group"] == step_group else None
        b.add("AmazonEC2", f"BoxUsage:{itype}", "RunInstances", node["instance_id"], "Hrs", "hourly", 1.0,
              az=node["az"], instance_type=itype, sp_covered=node["node_group"] == covered_group, valid_from=since,
              tags=b.tags("platform", f"node-{node['node_group']}", True, user_eks_nodegroup_name=node["node_group"]))
        b.add("AmazonEC2", "EBS:VolumeUsage.gp2", "CreateVolume-Gp2", f"vol-{_hid(node['instance_id'], 'root')}",
              "GB-Mo", "storage", 50.0, az=node["az"], valid_from=since, tags=b.tags(None, None, True))
    general = next((n for n in inv.nodes if n["node_group"] != covered_group), inv.nodes[0] if inv.nodes else None)
    if not general:
        return
    since = added if general["node_group"] == step_group else None
    # the cluster autoscaler adds nodes on busy days; each month's burst node is gone now
    for m_start, m_end in _months(start, end):
        b.add("AmazonEC2", f"BoxUsage:{general['instance_type']}", "RunInstances",
              f"i-{_hid(b.region, 'burst', m_start)}", "Hrs", "burst", 1.0, az=general["az"],
              instance_type=general["instance_type"], valid_from=max(m_start, since or m_start), valid_to=m_end,
              tags=b.tags("platform", f"node-{general['node_group']}", True,
                          user_eks_nodegroup_name=general["node_group"]))


def _volume_lines(b: _Builder, inv: Inventory, start: date, end: date) -> None:
    """PVC volumes (gp3) and their Velero snapshots (a new chain each month)."""
    teams = {ns.name: ns.team for ns in b.params.namespaces}
    for key, vol in inv.volumes.items():
        ns, pvc = key.split("/", 1)
        b.add("AmazonEC2", "EBS:VolumeUsage.gp3", "CreateVolume-Gp3", vol["volume_id"], "GB-Mo", "storage",
              float(vol["size_gi"]), az=vol["az"], growth=0.0,
              tags=b.tags(teams.get(ns), pvc.removeprefix("data-").rsplit("-", 1)[0], True,
                          user_kubernetes_io_created_for_pvc_namespace=ns))
        for m_start, m_end in _months(start, end):
            b.add("AmazonEC2", "EBS:SnapshotUsage", "CreateSnapshot",
                  b.arn("ec2", f"snapshot/snap-{_hid(vol['volume_id'], m_start)}"), "GB-Mo", "storage",
                  0.35 * vol["size_gi"], valid_from=m_start, valid_to=m_end, tags=b.tags(None, "velero"))


def _leftover_lines(b: _Builder, inv: Inventory, end: date) -> None:
    """Drill leftovers: two tagged snapshots, and an untagged orphan volume."""
    for i, days_ago in enumerate((200, 120)):
        b.add("AmazonEC2", "EBS:SnapshotUsage", "CreateSnapshot",
              b.arn("ec2", f"snapshot/snap-{_hid('drill-leftover', i)}"), "GB-Mo", "storage", 50.0,
              valid_from=end - timedelta(days=days_ago),
              tags=b.tags(None, None, user_opsbook_purpose="drill", user_opsbook_run_id=_hid("run", i, n=8)))
    if inv.orphan_volume:
        o = inv.orphan_volume
        b.add("AmazonEC2", "EBS:VolumeUsage.gp2", "CreateVolume-Gp2", o["volume_id"], "GB-Mo", "storage",
              float(o["size_gi"]), az=o["az"], valid_from=end - timedelta(days=150), tags={})


def _rds_lines(b: _Builder) -> None:
    """RDS Multi-AZ (the main database, or a like-sized one in another region)."""
    for db in b.params.rds:
        ident = db.identifier if b.main else f"{db.identifier}-{b.p.lower()}"
        res = b.arn("rds", f"db:{ident}")
        t = b.tags("platform", "mysql")
        b.add("AmazonRDS", f"Multi-AZUsage:{db.instance_class}", "CreateDBInstance:0002", res, "Hrs", "hourly", 1.0,
              instance_type=db.instance_class, tags=t)
        b.add("AmazonRDS", "RDS:Multi-AZ-GP2-Storage", "CreateDBInstance:0002", res, "GB-Mo", "storage",
              float(db.allocated_storage_gb), tags=t)
        b.add("AmazonRDS", "RDS:ChargedBackupUsage", "", res, "GB-Mo", "storage",
              0.4 * db.allocated_storage_gb, growth=0.03, tags=t)


def _nat_lines(b: _Builder, inv: Inventory) -> None:
    """NAT gateways: hours, and data processed (traffic; one AZ nearly idle; the anomaly)."""
    idle_az = b.gen.idle_nat_az if b.main else None
    nat_gb_per_hour = 4.0 * b.share / max(len(inv.nat_gateways), 1) / 0.88
    for i, (az, nat) in enumerate(inv.nat_gateways.items()):
        res = b.arn("ec2", f"natgateway/{nat}")
        t = b.tags("platform", "nat")
        b.add("AmazonEC2", "NatGateway-Hours", "NatGateway", res, "Hrs", "hourly", 1.0, az=az, tags=t)
        b.add("AmazonEC2", "NatGateway-Bytes", "NatGateway", res, "GB", "driver",
              0.02 if az == idle_az else nat_gb_per_hour, az=az, elasticity=0.8, tags=t,
              anomaly=b.main and i == 0)


def _nlb_lines(b: _Builder) -> None:
    """The ingress NLB."""
    nlb = b.arn("elasticloadbalancing", f"loadbalancer/net/{b.cluster}-ingress/{_hid(b.region, 'nlb', n=16)}")
    t = b.tags("platform", "ingress-nginx", True)
    b.add("AWSELB", "LoadBalancerUsage", "LoadBalancing:Network", nlb, "Hrs", "hourly", 1.0, tags=t)
    b.add("AWSELB", "LCUUsage", "LoadBalancing:Network", nlb, "LCU-Hrs", "driver", 2.5 * b.share / 0.88,
          elasticity=0.9, tags=t)


BUCKET_OWNERS = {"terraform_state": "platform", "velero": "platform", "static": "customer", "logs": "platform",
                 "cur": "finance-systems"}
BUCKET_SIZES_GB = {"terraform_state": 1.0, "velero": 400.0, "static": 250.0, "logs": 900.0, "cur": 20.0}


def _s3_lines(b: _Builder) -> None:
    """S3 buckets (storage grows; the static and logs buckets see requests)."""
    acct = b.account
    for key, bucket in b.params.buckets.model_dump().items():
        name = bucket if b.main else f"{bucket}-{b.p.lower()}"
        if not b.main and key not in ("static", "velero"):
            continue
        logs = key == "logs"
        account = acct[:-3] + LOG_ARCHIVE_SUFFIX if logs else acct
        t = b.tags(BUCKET_OWNERS.get(key), f"s3-{key}")
        b.add("AmazonS3", "TimedStorage-ByteHrs", "StandardStorage", name, "GB-Mo", "storage",
              BUCKET_SIZES_GB.get(key, 10.0) * (1 if b.main else 0.3), growth=0.04 if logs else 0.015, tags=t,
              account=account)
        if key in ("static", "logs"):
            b.add("AmazonS3", "Requests-Tier1", "PutObject", name, "Requests", "driver",
                  (6_000 if logs else 5_000) * b.share / 0.88, elasticity=0.9, tags=t, account=account)
            b.add("AmazonS3", "Requests-Tier2", "GetObject", name, "Requests", "driver",
                  (2_000 if logs else 100_000) * b.share / 0.88, elasticity=0.9, tags=t, account=account)


def _transfer_kms_trail_lines(b: _Builder) -> None:
    """Data transfer (no resource, no tags), KMS, CloudTrail."""
    share, region = b.share, b.region
    b.add("AWSDataTransfer", "DataTransfer-Out-Bytes", "", "", "GB", "driver", 2.8 * share / 0.88, elasticity=0.95)
    b.add("AWSDataTransfer", "DataTransfer-Regional-Bytes", "InterZone-Out", "", "GB", "driver",
          6.0 * share / 0.88, elasticity=0.7)
    keys = b.params.kms.model_dump() if b.main else {"rds": "alias/x"}
    for name in keys:
        b.add("awskms", "KMS-Keys", "CreateKey", b.arn("kms", f"key/{_hid(region, 'kms', name, n=36)}"),
              "Keys", "hourly", 1.0 / (24 * 30.4375), usage_type=f"{region}-KMS-Keys")
    b.add("awskms", "KMS-Requests", "GenerateDataKey", "", "Requests", "driver", 9_000 * share / 0.88,
          elasticity=0.9, usage_type=f"{region}-KMS-Requests")
    b.add("AWSCloudTrail", "DataEventsRecorded", "", b.arn("cloudtrail", f"trail/{b.params.trail_name}"),
          "Events", "driver", 20_000 * share / 0.88, elasticity=0.9)


def _global_lines(b: _Builder) -> None:
    """Route 53 zones (charged on the 1st) and queries: global, so no region."""
    params = b.params
    for zone in (params.zones.public, params.zones.private):
        b.add("AmazonRoute53", "", "", f"arn:aws:route53:::hostedzone/Z{_hid(zone, n=13).upper()}",
              "HostedZone", "monthly", 1.0, usage_type="HostedZone", tags=b.tags("platform", "dns"))
    b.add("AmazonRoute53", "", "", "", "Queries", "driver", 60_000 / 0.88, elasticity=0.9,
          usage_type="DNS-Queries")
    for line in b.lines[-3:]:
        line.region = ""


def _datadog_lines(params: Params, added: date | None) -> list[Line]:
    """Datadog hosts (monthly, AWS Marketplace); the added node group's hosts from its first full month."""
    step_group = params.cost.generator.added_node_group
    counts = {"": 0, "added": 0}
    for group in params.eks.node_groups:
        counts["added" if group.name == step_group else ""] += group.desired_size
    price = list_price("Datadog", "global", "Datadog-Pro-Hosts")
    return [Line(DATADOG_PRODUCT_CODE, "Datadog-Pro-Hosts", "", "", "", "", "Hosts", price, "monthly", float(hosts),
                 params.account_id, family="Monitoring", description="Datadog Pro hosts (AWS Marketplace)",
                 valid_from=added if key == "added" else None)
            for key, hosts in counts.items() if hosts]


def _months(start: date, end: date) -> list[tuple[date, date]]:
    out = []
    cur = start.replace(day=1)
    while cur < end:
        nxt = (cur + timedelta(days=32)).replace(day=1)
        out.append((cur, nxt))
        cur = nxt
    return out


# --- traffic -----------------------------------------------------------------------------


HOUR = np.array([0.2, 0.12, 0.1, 0.1, 0.12, 0.25, 0.6, 1.1, 1.6, 1.75, 1.8, 1.75,
                 1.7, 1.7, 1.65, 1.6, 1.5, 1.35, 1.2, 1.05, 0.9, 0.7, 0.45, 0.3])
HOUR = HOUR / HOUR.mean()


def sms_series(gen: CurGenerator, days: np.ndarray, region_share: float) -> np.ndarray:
    """SMS sent per day (days: datetime64[D]) for a region with that share of the traffic."""
    rng = np.random.default_rng(gen.seed + int(region_share * 1000))
    d = days.astype("datetime64[D]")
    weekday = (d.view("int64") + 3) % 7  # 1970-01-01 was a Thursday
    month = d.astype("datetime64[M]").astype(int) % 12
    months_from_start = (d - d[0]).astype(int) / 30.4375
    level = gen.sms_per_day * region_share * (1 + gen.sms_growth_per_month) ** months_from_start
    noise = rng.normal(1.0, gen.sms_noise, len(d))
    return np.round(level * np.array(gen.weekday_profile)[weekday] * np.array(gen.month_profile)[month] * noise)


# --- rows ------------------------------------------------------------------------------------


def schema() -> pa.Schema:
    ts = pa.timestamp("ms")
    s = pa.dictionary(pa.int32(), pa.string())
    m = pa.map_(pa.string(), pa.string())
    return pa.schema([
        ("identity_line_item_id", pa.string()), ("identity_time_interval", s),
        ("bill_invoice_id", s), ("bill_invoicing_entity", s), ("bill_billing_entity", s), ("bill_bill_type", s),
        ("bill_payer_account_id", s), ("bill_payer_account_name", s),
        ("bill_billing_period_start_date", ts), ("bill_billing_period_end_date", ts),
        ("line_item_usage_account_id", s), ("line_item_usage_account_name", s),
        ("line_item_line_item_type", s), ("line_item_usage_start_date", ts), ("line_item_usage_end_date", ts),
        ("line_item_product_code", s), ("line_item_usage_type", s), ("line_item_operation", s),
        ("line_item_availability_zone", s), ("line_item_resource_id", s), ("line_item_usage_amount", pa.float64()),
        ("line_item_currency_code", s), ("line_item_unblended_rate", s), ("line_item_unblended_cost", pa.float64()),
        ("line_item_blended_rate", s), ("line_item_blended_cost", pa.float64()),
        ("line_item_net_unblended_cost", pa.float64()), ("line_item_line_item_description", s),
        ("line_item_legal_entity", s),
        ("pricing_unit", s), ("pricing_term", s), ("pricing_public_on_demand_rate", s),
        ("pricing_public_on_demand_cost", pa.float64()),
        ("product_product_family", s), ("product_servicecode", s), ("product_region_code", s),
        ("product_instance_type", s), ("product", m),
        ("savings_plan_savings_plan_a_r_n", s), ("savings_plan_savings_plan_rate", pa.float64()),
        ("savings_plan_savings_plan_effective_cost", pa.float64()),
        ("savings_plan_total_commitment_to_date", pa.float64()), ("savings_plan_used_commitment", pa.float64()),
        ("resource_tags", m),
    ])


def _dict(values: list[str], idx: np.ndarray) -> pa.DictionaryArray:
    uniq = sorted(set(values))
    pos = {v: i for i, v in enumerate(uniq)}
    codes = np.array([pos[v] for v in values], dtype=np.int32)[idx]
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(uniq, pa.string()))


def _const(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def _maps(dicts: list[dict[str, str]], idx: np.ndarray) -> pa.Array:
    base = pa.array([sorted(d.items()) for d in dicts], pa.map_(pa.string(), pa.string()))
    return pc.take(base, pa.array(idx))


@dataclass
class PeriodSpec:
    start: date
    end: date  # exclusive end of the billing period
    data_end: date  # exclusive end of the data within it


class Generator:
    """Turns billable lines + SMS series into CUR 2.0 tables, one billing period at a time."""

    def __init__(self, params: Params, lines: list[Line], start: date, end: date, sms: dict[str, np.ndarray],
                 days: np.ndarray, sp_discount: float) -> None:
        self.params, self.gen = params, params.cost.generator
        self.lines, self.start, self.end = lines, start, end
        self.sms, self.days, self.sp_discount = sms, days, sp_discount
        self.sp_arn = f"arn:aws:savingsplans::{params.account_id}:savingsplan/{_hid('sp', params.env, n=36)}"
        # per line arrays
        L = lines
        self.kind = np.array([ln.kind for ln in L])
        self.qty = np.array([ln.quantity for ln in L])
        self.rate = np.array([ln.rate for ln in L])
        self.elast = np.array([ln.elasticity for ln in L])
        self.growth = np.array([ln.growth for ln in L])
        self.covered = np.array([ln.sp_covered for ln in L])
        self.anomaly = np.array([ln.anomaly for ln in L])
        self.vfrom = np.array([np.datetime64(ln.valid_from or date(1970, 1, 1), "D") for ln in L])
        self.vto = np.array([np.datetime64(ln.valid_to or date(2999, 1, 1), "D") for ln in L])
        self.traffic = np.array([ln.traffic_region for ln in L])
        self.commit_per_hour = float((self.rate * (1 - sp_discount))[self.covered & (self.kind == "hourly")].sum())
        anomaly_start = np.datetime64(end - timedelta(days=self.gen.anomaly_days_ago), "D")
        self.anomaly_window = (anomaly_start, anomaly_start + np.timedelta64(self.gen.anomaly_days, "D"))
        self.mean_sms = {r: float(s.mean()) for r, s in sms.items()}

    def periods(self) -> list[PeriodSpec]:
        return [PeriodSpec(a, b, min(b, self.end)) for a, b in _months(self.start, self.end)]

    def _intervals(self, spec: PeriodSpec) -> tuple[np.ndarray, float]:
        """Interval starts (datetime64[h]) and the hours each covers."""
        d0 = np.datetime64(spec.start, "D")
        d1 = np.datetime64(spec.data_end, "D")
        days = np.arange(d0, d1, dtype="datetime64[D]")
        if self.gen.granularity == "HOURLY":
            starts = (days.astype("datetime64[h]")[:, None] + np.arange(24)).ravel()
            hours = 1.0
        else:
            starts = days.astype("datetime64[h]")
            hours = 24.0
        return starts, hours

    def table(self, spec: PeriodSpec) -> pa.Table:
        starts, hours = self._intervals(spec)
        T, C = len(starts), len(self.lines)
        day_of = starts.astype("datetime64[D]")
        day_idx = (day_of - self.days[0]).astype(int)
        hour_of = (starts - day_of.astype("datetime64[h]")).astype(int)
        hour_shape = HOUR[hour_of] if self.gen.granularity == "HOURLY" else np.ones(T)
        hours_in_month = calendar.monthrange(spec.start.year, spec.start.month)[1] * 24.0
        months_from_start = (day_of - self.days[0]).astype(int) / 30.4375
        li = np.tile(np.arange(C), T)
        ti = np.repeat(np.arange(T), C)
        kind = self.kind[li]
        qty = self.qty[li]
        amount = np.zeros(T * C)
        h = kind == "hourly"
        amount[h] = qty[h] * hours
        s = kind == "storage"
        amount[s] = qty[s] * (1 + self.growth[li][s]) ** months_from_start[ti][s] * hours / hours_in_month
        # traffic factor per row (each region's own series)
        factor = np.ones(T * C)
        for region, series in self.sms.items():
            sel = self.traffic[li] == region
            f = series[day_idx] / self.mean_sms[region] * hour_shape
            factor[sel] = f[ti[sel]]
        rng = np.random.default_rng(self.gen.seed + spec.start.toordinal())
        d = kind == "driver"
        e = self.elast[li][d]
        amount[d] = qty[d] * hours * ((1 - e) + e * factor[d]) * rng.normal(1.0, 0.03, d.sum())
        window = (day_of[ti] >= self.anomaly_window[0]) & (day_of[ti] < self.anomaly_window[1])
        amount[d & self.anomaly[li] & window] *= self.gen.anomaly_factor
        b = kind == "burst"
        amount[b] = hours * np.clip(3.0 * (factor[b] - 0.95), 0, 3)
        m = kind == "monthly"
        amount[m] = np.where(ti[m] == 0, qty[m], 0.0)
        valid = (day_of[ti] >= self.vfrom[li]) & (day_of[ti] < self.vto[li])
        amount = np.where(valid, np.round(amount, 10), 0.0)
        keep = amount > 0
        li, ti, amount = li[keep], ti[keep], amount[keep]
        cost = amount * self.rate[li]
        itype = np.where(self.covered[li], COVERED, USAGE)
        effective = np.where(self.covered[li], cost * (1 - self.sp_discount), 0.0)
        # Savings Plan: negation of the covered on-demand cost, and the hourly commitment fee
        cov = np.flatnonzero(self.covered[li])
        extra_li = [li[cov]]
        extra_ti = [ti[cov]]
        extra_type = [np.full(len(cov), NEGATION)]
        extra_amount = [np.zeros(len(cov))]
        extra_cost = [-cost[cov]]
        extra_eff = [np.zeros(len(cov))]
        fee_commit = np.zeros(0)
        fee_used = np.zeros(0)
        if self.commit_per_hour > 0:
            used = np.bincount(ti[cov], weights=effective[cov], minlength=T)
            fee_commit = np.full(T, self.commit_per_hour * hours)
            fee_used = used
            extra_li.append(np.full(T, -1))
            extra_ti.append(np.arange(T))
            extra_type.append(np.full(T, FEE))
            extra_amount.append(np.full(T, hours))
            extra_cost.append(fee_commit)
            extra_eff.append(np.zeros(T))
        # tax and credits close a complete month
        closed = spec.data_end == spec.end
        tax_products: list[str] = []
        if closed and self.gen.tax_rate > 0:
            products = np.array([ln.product_code for ln in self.lines])[li]
            for code in sorted(set(products)):
                tax_products.append(code)
                extra_li.append(np.array([-2 - len(tax_products) + 1]))
                extra_ti.append(np.array([0]))
                extra_type.append(np.array([TAX]))
                extra_amount.append(np.array([1.0]))
                extra_cost.append(np.array([round(self.gen.tax_rate * cost[products == code].sum(), 2)]))
                extra_eff.append(np.zeros(1))
        month_no = len(_months(self.start, spec.start + timedelta(days=1))) - 1
        credit = closed and month_no < self.gen.credit_months and self.gen.credit_usd_month > 0
        if credit:
            extra_li.append(np.array([-1000]))
            extra_ti.append(np.array([0]))
            extra_type.append(np.array([CREDIT]))
            extra_amount.append(np.array([0.0]))
            extra_cost.append(np.array([-self.gen.credit_usd_month]))
            extra_eff.append(np.zeros(1))
        n_usage = len(li)
        li = np.concatenate([li, *extra_li])
        ti = np.concatenate([ti, *extra_ti])
        itype = np.concatenate([itype, *extra_type])
        amount = np.concatenate([amount, *extra_amount])
        cost = np.concatenate([cost, *extra_cost])
        effective = np.concatenate([effective, *extra_eff])
        commit = np.zeros(len(li))
        usedc = np.zeros(len(li))
        fee_rows = np.flatnonzero(itype == FEE)
        commit[fee_rows] = fee_commit
        usedc[fee_rows] = fee_used
        return self._assemble(spec, starts, hours, li, ti, itype, amount, cost, effective, commit, usedc,
                              tax_products, n_usage)

    def _assemble(self, spec, starts, hours, li, ti, itype, amount, cost, effective, commit, usedc,
                  tax_products, n_usage) -> pa.Table:
        n = len(li)
        acct = self.params.account_id
        # virtual lines: -1 SP fee, -2.. tax per product, -1000 credit
        virtual: dict[int, Line] = {
            -1: Line(SP_PRODUCT_CODE, "ComputeSP:1yrNoUpfront", "", self.sp_arn, "", "", "Hrs", 0.0, "fee", 0, acct,
                     description="1 year No Upfront Compute Savings Plan"),
            -1000: Line("AmazonEC2", "", "", "", "", "", "", 0.0, "credit", 0, acct,
                        description="AWS Promotional Credit"),
        }
        for i, code in enumerate(tax_products):
            virtual[-2 - i] = Line(code, "", "", "", "", "", "", 0.0, "tax", 0, acct,
                                   description="Tax for product code " + code)
        keys = sorted(virtual)
        all_lines = [virtual[k] for k in keys] + self.lines
        offset = len(keys)
        pos = {k: i for i, k in enumerate(keys)}
        lidx = np.where(li >= 0, li + offset, 0)
        for k in keys:
            lidx[li == k] = pos[k]
        monthly = np.array([ln.kind in ("monthly", "tax", "credit") for ln in all_lines])[lidx]
        p0 = np.datetime64(spec.start, "ms")
        p1 = np.datetime64(spec.end, "ms")
        t_start = starts[ti].astype("datetime64[ms]")
        t_end = t_start + np.timedelta64(int(hours * 3600 * 1000), "ms")
        t_start = np.where(monthly, p0, t_start)
        t_end = np.where(monthly, p1, t_end)
        interval = pc.binary_join_element_wise(
            pc.strftime(pa.array(t_start), format="%Y-%m-%dT%H:%M:%SZ"),
            pc.strftime(pa.array(t_end), format="%Y-%m-%dT%H:%M:%SZ"), "/")
        period = spec.start.strftime("%Y-%m")
        ids = pc.binary_join_element_wise(
            pa.array(np.full(n, f"li{_hid(self.params.env, period, n=8)}")), pc.cast(pa.array(np.arange(n)), pa.string()), "-")
        attr = lambda f: [getattr(ln, f) for ln in all_lines]  # noqa: E731
        accounts = attr("account")
        is_marketplace = [ln.product_code == DATADOG_PRODUCT_CODE for ln in all_lines]
        rate_str = [f"{ln.rate:.10g}" if ln.rate else "" for ln in all_lines]
        type_arr = pa.DictionaryArray.from_arrays(pa.array(itype.astype(np.int32)), pa.array(LINE_ITEM_TYPES))
        regions = attr("region")
        product_maps = [{"product_name": SERVICE_NAMES.get(ln.product_code, ln.product_code),
                         **({"region": ln.region} if ln.region else {})} for ln in all_lines]
        tags = [dict(ln.tags) for ln in all_lines]
        public_cost = np.where(np.isin(itype, [USAGE, COVERED]), cost, 0.0)
        net = cost.copy()
        cols = {
            "identity_line_item_id": ids,
            "identity_time_interval": pc.dictionary_encode(interval),
            "bill_invoice_id": _const(f"EUINPL{spec.start:%y%m}{_hid(acct, period, n=6).upper()}", n),
            "bill_invoicing_entity": _const("Amazon Web Services EMEA SARL", n),
            "bill_billing_entity": _dict(["AWS Marketplace" if m else "AWS" for m in is_marketplace], lidx),
            "bill_bill_type": _const("Anniversary", n),
            "bill_payer_account_id": _const(acct, n),
            "bill_payer_account_name": _const(f"smsapi-{self.params.env}", n),
            "bill_billing_period_start_date": pa.array(np.full(n, p0)),
            "bill_billing_period_end_date": pa.array(np.full(n, p1)),
            "line_item_usage_account_id": _dict(accounts, lidx),
            "line_item_usage_account_name": _dict(
                [f"smsapi-{self.params.env}" + ("-log-archive" if a != acct else "") for a in accounts], lidx),
            "line_item_line_item_type": type_arr,
            "line_item_usage_start_date": pa.array(t_start),
            "line_item_usage_end_date": pa.array(t_end),
            "line_item_product_code": _dict(attr("product_code"), lidx),
            "line_item_usage_type": _dict(attr("usage_type"), lidx),
            "line_item_operation": _dict(attr("operation"), lidx),
            "line_item_availability_zone": _dict(attr("az"), lidx),
            "line_item_resource_id": _dict(attr("resource_id"), lidx),
            "line_item_usage_amount": pa.array(amount),
            "line_item_currency_code": _const("USD", n),
            "line_item_unblended_rate": _dict(rate_str, lidx),
            "line_item_unblended_cost": pa.array(cost),
            "line_item_blended_rate": _dict(rate_str, lidx),
            "line_item_blended_cost": pa.array(cost),
            "line_item_net_unblended_cost": pa.array(net),
            "line_item_line_item_description": _dict(attr("description"), lidx),
            "line_item_legal_entity": _dict(
                ["Datadog, Inc." if m else "Amazon Web Services EMEA SARL" for m in is_marketplace], lidx),
            "pricing_unit": _dict(attr("unit"), lidx),
            "pricing_term": _dict(["OnDemand" if ln.rate else "" for ln in all_lines], lidx),
            "pricing_public_on_demand_rate": _dict(rate_str, lidx),
            "pricing_public_on_demand_cost": pa.array(public_cost),
            "product_product_family": _dict(attr("family"), lidx),
            "product_servicecode": _dict(attr("product_code"), lidx),
            "product_region_code": _dict(regions, lidx),
            "product_instance_type": _dict(attr("instance_type"), lidx),
            "product": _maps(product_maps, lidx),
            "savings_plan_savings_plan_a_r_n": pa.DictionaryArray.from_arrays(
                pa.array(np.isin(itype, [COVERED, NEGATION, FEE]).astype(np.int32)), pa.array(["", self.sp_arn])),
            "savings_plan_savings_plan_rate": pa.array(np.where(itype == COVERED, self.rate[np.maximum(li, 0)] * (1 - self.sp_discount), 0.0)),
            "savings_plan_savings_plan_effective_cost": pa.array(effective),
            "savings_plan_total_commitment_to_date": pa.array(commit),
            "savings_plan_used_commitment": pa.array(usedc),
            "resource_tags": _maps(tags, lidx),
        }
        return pa.table(cols, schema=schema())


# --- writing ---------------------------------------------------------------------------------


@dataclass
class CurLayout:
    root: Path  # the folder standing for s3://<bucket>/
    prefix: str
    export: str

    @property
    def export_dir(self) -> Path:
        return self.root / self.prefix / self.export

    def data_dir(self, period: str) -> Path:
        return self.export_dir / "data" / f"BILLING_PERIOD={period}"

    def manifest(self, period: str) -> Path:
        return self.export_dir / "metadata" / f"BILLING_PERIOD={period}" / f"{self.export}-Manifest.json"


def date_range(gen: CurGenerator) -> tuple[date, date]:
    """(first day billed, day after the last): `months` billing periods up to end_date."""
    end = gen.end_date or datetime.now(UTC).date()
    last = (end - timedelta(days=1)).replace(day=1)
    y, m = divmod(last.year * 12 + last.month - 1 - (gen.months - 1), 12)
    return date(y, m + 1, 1), end


def generate(params: Params, out: Path, inventory: Inventory | None = None, bucket: str | None = None) -> dict:
    """Write the CUR export and the SMS-volume CSV under `out`; returns a summary."""
    t0 = time.monotonic()
    gen = params.cost.generator
    start, end = date_range(gen)
    regions = _region_shares(params)
    sp_discount = params.cost.savings.savings_plan_discount
    lines = _all_lines(params, inventory or synthetic_inventory(params), regions, start, end, sp_discount)
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D"), dtype="datetime64[D]")
    sms = {region: sms_series(gen, days, share) for region, share in regions.items()}
    g = Generator(params, lines, start, end, sms, days, sp_discount)
    cur = params.cost.cur
    layout = CurLayout(out, cur.prefix, cur.export_name)
    rows = 0
    files: list[str] = []
    for spec in g.periods():
        table = g.table(spec)
        period = spec.start.strftime("%Y-%m")
        period_files = _write_period(layout, period, table)
        rows += table.num_rows
        files += [str(p.relative_to(out)) for p in period_files]
        _write_manifest(layout, params, bucket or cur.bucket or params.buckets.cur, period, spec, period_files, out)
        del table
    csv_path = _write_sms_csv(out / "drivers" / "sms-volume.csv", days, sms)
    anomaly_day = end - timedelta(days=gen.anomaly_days_ago)
    return {
        "rows": rows, "files": files, "start": start.isoformat(), "end": end.isoformat(),
        "regions": list(regions), "sms_csv": str(csv_path.relative_to(out)),
        "anomaly": {"start": anomaly_day.isoformat(), "days": gen.anomaly_days,
                    "usage_type_suffix": "NatGateway-Bytes"},
        "seconds": round(time.monotonic() - t0, 3),
    }


def _region_shares(params: Params) -> dict[str, float]:
    """Each region's share of the SMS traffic: the other regions a fixed share each, the rest the main one."""
    gen = params.cost.generator
    regions = {params.region: 1.0 - gen.other_region_share * len(params.other_regions)}
    for other in params.other_regions:
        regions[other] = gen.other_region_share
    return regions


def _all_lines(params: Params, inventory: Inventory, regions: dict[str, float], start: date, end: date,
               sp_discount: float) -> list[Line]:
    """The lines of every region, `copies` times over (copies past the first: synthetic ids, no monthly lines)."""
    gen = params.cost.generator
    lines: list[Line] = []
    for copy in range(gen.copies):
        for region, share in regions.items():
            if region == params.region and copy == 0:
                inv = inventory
            else:
                estate = params if region == params.region else _other_estate(params)
                inv = synthetic_inventory(estate, region, tag=f"c{copy}")
            region_lines = estate_lines(params, gen, inv, region, share, start, end, sp_discount)
            if copy:
                region_lines = _as_copy(region_lines, copy)
            lines.extend(region_lines)
    return lines


def _as_copy(lines: list[Line], copy: int) -> list[Line]:
    """A copy of the estate (benchmarks): its own resource ids, no monthly lines, no anomaly."""
    lines = [ln for ln in lines if ln.kind != "monthly"]
    for ln in lines:
        ln.resource_id = f"{ln.resource_id}-c{copy}" if ln.resource_id else ""
        ln.anomaly = False
    return lines


def _write_period(layout: CurLayout, period: str, table: pa.Table) -> list[Path]:
    """One billing period's Parquet files (replacing those there), ROWS_PER_FILE rows each at most."""
    ddir = layout.data_dir(period)
    ddir.mkdir(parents=True, exist_ok=True)
    for old in ddir.glob("*.parquet"):
        old.unlink()
    period_files = []
    for k, off in enumerate(range(0, max(table.num_rows, 1), ROWS_PER_FILE)):
        path = ddir / f"{layout.export}-{k + 1:05d}.snappy.parquet"
        pq.write_table(table.slice(off, ROWS_PER_FILE), path, compression="snappy")
        period_files.append(path)
    return period_files


def _write_sms_csv(csv_path: Path, days: np.ndarray, sms: dict[str, np.ndarray]) -> Path:
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w") as fh:
        fh.write("date,region,sms_count\n")
        for i, day in enumerate(days):
            for region in sms:
                fh.write(f"{day},{region},{int(sms[region][i])}\n")
    return csv_path


def _other_estate(params: Params) -> Params:
    """The estate duplicated into another region: one node group of two nodes, same services."""
    group = params.eks.node_groups[0].model_copy(update={"desired_size": 2, "min_size": 2})
    eks = params.eks.model_copy(update={"node_groups": [group]})
    net = params.network.model_copy(update={"nat_gateway_per_az": False})
    namespaces = [ns for ns in params.namespaces if ns.stateful][:2]
    return params.model_copy(update={"eks": eks, "network": net, "namespaces": namespaces})


def _write_manifest(layout: CurLayout, params: Params, bucket: str, period: str, spec: PeriodSpec,
                    files: list[Path], out: Path) -> None:
    path = layout.manifest(period)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{params.account_id}:export/{layout.export}-{_hid(period, n=8)}",
        "exportName": layout.export,
        "billingPeriod": {"start": f"{spec.start}T00:00:00.000Z", "end": f"{spec.end}T00:00:00.000Z"},
        "dataFiles": [f"s3://{bucket}/{p.relative_to(out)}" for p in files],
        "dataFileCount": len(files),
        "format": "PARQUET", "compression": "SNAPPY",
        "columns": [{"name": f.name, "type": str(f.type)} for f in schema()],
        "generator": {"version": GENERATOR_VERSION, "dataEnd": spec.data_end.isoformat()},
    }
    path.write_text(json.dumps(manifest, indent=2))


def fingerprint(params: Params, inventory: Inventory) -> str:
    """What the generated files depend on: knobs, ids, price table, dates, code version."""
    start, end = date_range(params.cost.generator)
    blob = json.dumps({
        "v": GENERATOR_VERSION, "gen": params.cost.generator.model_dump(mode="json"), "inv": asdict(inventory),
        "estate": params.model_dump(mode="json", include={"eks", "rds", "buckets", "kms", "zones", "namespaces",
                                                          "region", "other_regions", "account_id", "env",
                                                          "network", "trail_name"}),
        "cur": params.cost.cur.model_dump(mode="json"), "sp": params.cost.savings.savings_plan_discount,
        "prices": price_fingerprint(), "start": str(start), "end": str(end),
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
