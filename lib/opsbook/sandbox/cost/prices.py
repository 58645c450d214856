"""The sandbox's list prices: what its bill generator and Pricing emulator charge.

Two kinds of price, and every answer says which:

- **cited**: `data/prices.csv` holds on-demand list prices (USD) read from AWS's pricing
  pages, one row per (service, region, usage type, operation), each with the page it comes
  from and the date it was read;
- **derived**: everything else the twin can bill, in every region it can be seeded in
  (`sandbox.aws.catalogue.aws_regions`), by one documented rule fitted to the cited rows:

  1. an EC2 instance type of moto's catalogue costs `vCPUs x A + GiB x B` an hour in the
     reference region (eu-central-1), A and B fitted by least squares to the cited EC2
     rows there (m6i and r6i: A = $0.039 per vCPU-hour, B = $0.004625 per GiB-hour);
  2. an RDS class `db.<type>` (of a family RDS offers) costs the EC2 rule of `<type>` times
     K, the median ratio of the cited RDS Multi-AZ rows to that rule; Single-AZ is half of
     Multi-AZ (one instance instead of a primary and a standby);
  3. any other usage (EBS volumes and snapshots, NAT gateways, load balancers, data
     transfer, EKS, S3, KMS, CloudTrail) costs its cited reference-region price;
  4. all of it times the region's factor: for a region with cited rows, the median ratio
     of its cited prices to the reference region's; for any other region, the mean of the
     cited regions' factors (the reference's 1.0 included).

A derived price is an estimate of the twin's own: a `Quote` carries `derived` (the rule,
with its numbers), the Pricing emulator marks it in the product (`priceBasis: derived`)
and its price dimension's description, and the CUR generator in the line item's
description. Against a real account the Pricing API and the CUR are the authority.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from statistics import mean, median

import numpy as np
import pandas as pd

from opsbook.errors import OpsbookError
from opsbook.formats.aws_usage import REGION_PREFIX, region_of_usage_type, strip_region, usage_type_in
from opsbook.sandbox.aws.catalogue import aws_regions, instance_types, rds_classes, rds_instance_type, shape

PRICE_COLUMNS = [
    "service_code", "region_code", "usage_type", "operation", "product_family", "unit",
    "price_usd", "attributes", "description", "source", "as_of", "note",
]
REFERENCE_REGION = "eu-central-1"
RULE_VERSION = "1"  # bump when the rule changes (the generated CUR is cached by it)
_INSTANCE_USAGE = re.compile(r"^(Multi-AZUsage|InstanceUsage):(db\..+)$")


@dataclass(frozen=True)
class Quote:
    """One product's on-demand price: cited from AWS's pages, or derived by the rule."""

    service_code: str
    region_code: str
    usage_type: str
    operation: str
    product_family: str
    unit: str
    price_usd: float
    attributes: dict[str, str] = field(hash=False)
    description: str
    source: str
    as_of: str
    derived: str = ""  # the rule with its numbers; "" for a cited price


@cache
def price_table() -> pd.DataFrame:
    """The cited price table, checked: every row has a price, a source and a date."""
    with resources.files("opsbook.sandbox.cost").joinpath("data/prices.csv").open() as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    if list(table.columns) != PRICE_COLUMNS:
        raise OpsbookError(f"prices.csv: expected columns {PRICE_COLUMNS}, got {list(table.columns)}")
    table["price_usd"] = table["price_usd"].astype(float)
    missing = table[(table["source"] == "") | (table["as_of"] == "")]
    if len(missing):
        raise OpsbookError(f"prices.csv: rows without source or date: {missing['usage_type'].tolist()}")
    return table


def attributes(row: pd.Series | dict) -> dict[str, str]:
    """The 'k=v;k=v' attributes column as a dict."""
    text = row["attributes"]
    return dict(part.split("=", 1) for part in text.split(";") if part) if text else {}


def _cited(row: pd.Series) -> Quote:
    return Quote(row["service_code"], row["region_code"], row["usage_type"], row["operation"], row["product_family"],
                 row["unit"], float(row["price_usd"]), attributes(row), row["description"], row["source"],
                 row["as_of"])


@cache
def cited_quotes() -> dict[tuple[str, str, str], list[Quote]]:
    """(service, region, usage type) -> the cited rows (several only when operations differ)."""
    out: dict[tuple[str, str, str], list[Quote]] = {}
    for _, row in price_table().iterrows():
        out.setdefault((row["service_code"], row["region_code"], row["usage_type"]), []).append(_cited(row))
    return out


# --- the rule ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    vcpu_hour: float  # A
    gib_hour: float  # B
    rds_factor: float  # K
    region_factors: dict[str, float] = field(hash=False)  # regions with cited rows
    default_factor: float  # any other region
    as_of: str  # the newest date of the cited rows it was fitted to

    def factor(self, region: str) -> float:
        return self.region_factors.get(region, self.default_factor)

    def factor_text(self, region: str) -> str:
        how = "its cited prices" if region in self.region_factors else "mean of the cited regions"
        return f"region factor {self.factor(region):.3f} ({how})"

    def ec2_hour(self, instance_type: str) -> float | None:
        size = shape(instance_type)
        return None if size is None else size.vcpu * self.vcpu_hour + size.memory_gib * self.gib_hour

    def ec2_text(self, instance_type: str) -> str:
        size = shape(instance_type)
        assert size is not None
        return (f"{size.vcpu} vCPU x ${self.vcpu_hour:.4f} + {size.memory_gib:g} GiB x ${self.gib_hour:.6f} "
                f"(fitted to the cited {REFERENCE_REGION} EC2 prices)")


def _reference_rows(service: str) -> pd.DataFrame:
    table = price_table()
    return table[(table.service_code == service) & (table.region_code == REFERENCE_REGION)]


@cache
def rule() -> Rule:
    """The rule's numbers, fitted to the cited table (see the module docstring)."""
    ec2 = _reference_rows("AmazonEC2")
    ec2 = ec2[ec2.usage_type.map(strip_region).str.startswith("BoxUsage:")]
    shapes = [shape(attributes(r)["instanceType"]) for _, r in ec2.iterrows()]
    x = np.array([[s.vcpu, s.memory_gib] for s in shapes if s])
    (a, b), *_ = np.linalg.lstsq(x, ec2["price_usd"].to_numpy(float)[[s is not None for s in shapes]], rcond=None)
    rds = _reference_rows("AmazonRDS")
    ratios = []
    for _, row in rds.iterrows():
        match = _INSTANCE_USAGE.match(strip_region(row["usage_type"]))
        itype = rds_instance_type(match.group(2)) if match else None
        if itype and (size := shape(itype)):
            ratios.append(row["price_usd"] / (size.vcpu * a + size.memory_gib * b))
    table = price_table()
    base = {(r.service_code, strip_region(r.usage_type)): r.price_usd
            for r in table[table.region_code == REFERENCE_REGION].itertuples()}
    factors = {}
    for region, rows in table[~table.region_code.isin(["global"])].groupby("region_code"):
        shared = [r.price_usd / base[(r.service_code, strip_region(r.usage_type))] for r in rows.itertuples()
                  if (r.service_code, strip_region(r.usage_type)) in base]
        if shared:
            factors[region] = float(median(shared))
    return Rule(float(a), float(b), float(median(ratios)), factors, float(mean(factors.values())),
                max(table["as_of"]))


def _instance_usage(base: str) -> bool:
    """An instance-hour usage (EC2 box or RDS instance): rules 1 and 2, not 3."""
    return base.startswith("BoxUsage:") or bool(_INSTANCE_USAGE.match(base))


@cache
def _references() -> dict[tuple[str, str], list[Quote]]:
    """(service, base usage type) -> the cited reference-region rows (what rule 3 scales)."""
    out: dict[tuple[str, str], list[Quote]] = {}
    for (service, region, usage_type), quotes in cited_quotes().items():
        if region == REFERENCE_REGION:
            out.setdefault((service, strip_region(usage_type)), []).extend(quotes)
    return out


def _reference(service: str, base: str, operation: str | None) -> Quote | None:
    quotes = _references().get((service, base), [])
    return next((q for q in quotes if operation is None or q.operation == operation), None)


def _derive(service: str, region: str, usage_type: str, operation: str | None) -> Quote | None:
    """A derived quote (rules 1-4), or None when the rule does not cover it."""
    if region not in aws_regions() or region_of_usage_type(usage_type) != region:
        return None
    r, base = rule(), strip_region(usage_type)
    factor, factor_text = r.factor(region), r.factor_text(region)
    if service == "AmazonEC2" and base.startswith("BoxUsage:"):
        itype = base.split(":", 1)[1]
        hourly = r.ec2_hour(itype)
        if hourly is None:
            return None
        size = shape(itype)
        assert size is not None
        quote = Quote(service, region, usage_type, "RunInstances", "Compute Instance", "Hrs", hourly * factor,
                      {"instanceType": itype, "vcpu": str(size.vcpu), "memory": f"{size.memory_gib:g} GiB",
                       "operatingSystem": "Linux", "tenancy": "Shared", "capacitystatus": "Used",
                       "preInstalledSw": "NA"},
                      f"{itype} Linux On Demand", "", r.as_of, f"{r.ec2_text(itype)} x {factor_text}")
    elif service == "AmazonRDS" and (match := _INSTANCE_USAGE.match(base)):
        itype = rds_instance_type(match.group(2))
        if itype is None:
            return None
        multi = match.group(1) == "Multi-AZUsage"
        hourly = (r.ec2_hour(itype) or 0.0) * r.rds_factor * (1.0 if multi else 0.5)
        deployment = "Multi-AZ" if multi else "Single-AZ"
        quote = Quote(service, region, usage_type, "CreateDBInstance:0002", "Database Instance", "Hrs",
                      hourly * factor,
                      {"instanceType": match.group(2), "databaseEngine": "MySQL", "deploymentOption": deployment},
                      f"RDS for MySQL {match.group(2)} {deployment}", "", r.as_of,
                      f"RDS: EC2 rule of {itype} [{r.ec2_text(itype)}] x {r.rds_factor:.3f} (the cited RDS rows' "
                      f"ratio){'' if multi else ' x 0.5 (Single-AZ)'} x {factor_text}")
    else:
        ref = _reference(service, base, operation)
        if ref is None:
            return None
        quote = Quote(service, region, usage_type, ref.operation, ref.product_family, ref.unit,
                      ref.price_usd * factor, ref.attributes, ref.description, "", ref.as_of,
                      f"{REFERENCE_REGION} price ${ref.price_usd:g} x {factor_text}")
    if operation is not None and quote.operation != operation:
        return None
    return quote


def quote(service: str, region: str, usage_type: str, operation: str | None = None) -> Quote | None:
    """The price of a product: the cited row if there is one, else the rule's, else None."""
    cited = cited_quotes().get((service, region, usage_type), [])
    if operation is not None and len(cited) > 1:
        cited = [q for q in cited if q.operation == operation] or cited
    if cited:
        return cited[0]
    return _derive(service, region, usage_type, operation)


def require_quote(service: str, region: str, usage_type: str, operation: str | None = None) -> Quote:
    """The quote of something the twin bills; an error names what it cannot price."""
    found = quote(service, region, usage_type, operation)
    if found is None:
        families = ", ".join(sorted({c.split(".")[1] for c in rds_classes()}))
        raise OpsbookError(
            f"the sandbox has no price for {service} {usage_type} in {region}: it prices the instance types of "
            f"moto's EC2 catalogue, the RDS classes db.<type> of the families {families}, and the estate's other "
            "usage, in the regions of the aws partition",
            remedy="use a type, class and region the sandbox knows, or add the row with its AWS pricing page and "
                   "date to lib/opsbook/sandbox/cost/data/prices.csv")
    return found


def list_price(service: str, region: str, usage_type: str, operation: str | None = None) -> float:
    """A price the twin charges (cited or derived)."""
    return require_quote(service, region, usage_type, operation).price_usd


@cache
def catalogue(service: str, region: str) -> tuple[Quote, ...]:
    """Every product of a service in a region the twin prices: cited ones, then derived ones."""
    cited = sorted((q for (svc, reg, _), quotes in cited_quotes().items() if (svc, reg) == (service, region)
                    for q in quotes), key=lambda q: q.usage_type)
    wanted: list[str] = []
    if region in aws_regions():
        prefix = REGION_PREFIX[REFERENCE_REGION]
        wanted += [usage_type_in(q.usage_type, region) for (svc, base), quotes in _references().items()
                   if svc == service and not _instance_usage(base) for q in quotes]
        if service == "AmazonEC2":
            wanted += [usage_type_in(f"{prefix}-BoxUsage:{t}", region) for t in instance_types()]
        if service == "AmazonRDS":
            wanted += [usage_type_in(f"{prefix}-{kind}:{c}", region)
                       for c in rds_classes() for kind in ("Multi-AZUsage", "InstanceUsage")]
    have = {q.usage_type for q in cited}
    derived = (_derive(service, region, u, None) for u in dict.fromkeys(wanted) if u not in have)
    return (*cited, *sorted((q for q in derived if q is not None), key=lambda q: q.usage_type))


def price_fingerprint() -> str:
    """What the twin's prices depend on: the cited table and the rule's version."""
    return hashlib.sha256((price_table().to_json() + RULE_VERSION).encode()).hexdigest()[:16]


def instance_shape(instance_type: str) -> tuple[float, float]:
    """(vCPUs, GiB) of an EC2 instance type of moto's catalogue."""
    size = shape(instance_type)
    if size is None:
        raise OpsbookError(f"instance type {instance_type!r} is not in moto's EC2 catalogue")
    return float(size.vcpu), float(size.memory_gib)
