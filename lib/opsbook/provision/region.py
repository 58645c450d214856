"""Is a new region ready for the estate? AZs, quotas, a CIDR plan, and its terraform.tfvars.

Checks, each a row with what the estate needs, what is used and the limit:
- at least `min_azs` availability zones available in the target region;
- the quotas the estate needs (read from Service Quotas, usage from each service's API);
- a VPC CIDR (given, or derived: the first range of the source VPC's size after it
  that is free) overlapping no existing VPC in any region nor the office ranges
  behind the VPN; an overlap names both ranges.
The `terraform.tfvars` for the region is derived from the source env's params (region,
AZs, CIDRs, names) and planned key by key against the file already there, if any.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opsbook.clients import Env
from opsbook.errors import OpsbookError, UsageError
from opsbook.guard import Plan
from opsbook.params import Params
from opsbook.provision import files, naming
from opsbook.provision.steps import Outcome, apply_plan

TFVARS_FILE = "terraform.tfvars"


# --- quotas ---------------------------------------------------------------------------------


def _paginate(aws: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    return [item for page in aws.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _vpcs(env: Env, region: str) -> int:
    return len(_paginate(env.aws("ec2", region), "describe_vpcs", "Vpcs"))


def _gateways(env: Env, region: str) -> int:
    return len(_paginate(env.aws("ec2", region), "describe_internet_gateways", "InternetGateways"))


def _addresses(env: Env, region: str) -> int:
    return len(env.aws("ec2", region).describe_addresses()["Addresses"])


def _nat_per_az(env: Env, region: str) -> int:
    """The busiest AZ's NAT gateways (the quota counts per AZ)."""
    ec2 = env.aws("ec2", region)
    nats = _paginate(ec2, "describe_nat_gateways", "NatGateways",
                     Filter=[{"Name": "state", "Values": ["pending", "available"]}])
    if not nats:
        return 0
    subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in _paginate(ec2, "describe_subnets", "Subnets")}
    return max(Counter(subnets.get(n["SubnetId"], n["SubnetId"]) for n in nats).values())


def _clusters(env: Env, region: str) -> int:
    return len(_paginate(env.aws("eks", region), "list_clusters", "clusters"))


def _db_instances(env: Env, region: str) -> int:
    return len(_paginate(env.aws("rds", region), "describe_db_instances", "DBInstances"))


def _zero(env: Env, region: str) -> int:
    return 0  # counted per new cluster: none exists before Terraform makes it


@dataclass(frozen=True)
class QuotaNeed:
    """A quota the estate needs in a region: how much, and how much the region already uses."""

    service: str
    code: str
    name: str
    need: Callable[[Params], int]
    used: Callable[[Env, str], int]


QUOTA_NEEDS = [
    QuotaNeed("vpc", "L-F678F1CE", "VPCs per Region", lambda p: 1, _vpcs),
    QuotaNeed("vpc", "L-A4707A72", "Internet gateways per Region", lambda p: 1, _gateways),
    QuotaNeed("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs (one per NAT gateway)",
              lambda p: len(p.network.azs) if p.network.nat_gateway_per_az else 1, _addresses),
    QuotaNeed("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", lambda p: 1, _nat_per_az),
    QuotaNeed("eks", "L-1194D53C", "EKS clusters", lambda p: 1, _clusters),
    QuotaNeed("eks", "L-6D54EA21", "Managed node groups per cluster", lambda p: len(p.eks.node_groups), _zero),
    QuotaNeed("rds", "L-7B6409FD", "RDS DB instances", lambda p: len(p.rds), _db_instances),
]


def quota_value(env: Env, region: str, service: str, code: str) -> tuple[float, str]:
    """The applied value of a quota (the AWS default when none is applied) and which it was."""
    sq = env.aws("service-quotas", region)
    try:
        return float(sq.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]), "applied"
    except sq.exceptions.NoSuchResourceException:
        pass
    try:
        return float(sq.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]), "default"
    except sq.exceptions.NoSuchResourceException:
        raise OpsbookError(f"Service Quotas in {region} knows no quota {service}/{code}",
                           remedy="check the quota code (aws service-quotas list-service-quotas --service-code "
                                  f"{service} --region {region})") from None


# --- CIDRs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    cidr: str
    what: str  # "VPC vpc-123 in eu-central-1", "office range (network.vpn.office_cidrs)"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)


def existing_vpc_ranges(env: Env) -> list[Range]:
    """Every CIDR of every VPC in every region enabled for the account."""
    regions = [r["RegionName"] for r in env.aws("ec2").describe_regions()["Regions"]]
    ranges = []
    for region in sorted(regions):
        for vpc in _paginate(env.aws("ec2", region), "describe_vpcs", "Vpcs"):
            cidrs = {a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])
                     if a.get("CidrBlockState", {}).get("State") in (None, "associated", "associating")}
            for cidr in sorted(cidrs | {vpc["CidrBlock"]}):
                ranges.append(Range(cidr, f"VPC {vpc['VpcId']} in {region}"))
    return ranges


def office_ranges(params: Params) -> list[Range]:
    return [Range(c, "office range behind the VPN (network.vpn.office_cidrs)") for c in params.network.vpn.office_cidrs]


def overlaps(candidate: str, taken: list[Range]) -> list[str]:
    """One message per overlap, naming both ranges."""
    net = ipaddress.IPv4Network(candidate)
    return [f"{candidate} overlaps {r.cidr} ({r.what})" for r in taken if net.overlaps(r.network)]


def derive_vpc_cidr(source: str, taken: list[Range]) -> str:
    """The first range of the source's size after it (wrapping inside 10.0.0.0/8 etc.) that is free."""
    src = ipaddress.IPv4Network(source)
    private = next((p for p in map(ipaddress.IPv4Network, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
                    if src.subnet_of(p)), ipaddress.IPv4Network("10.0.0.0/8"))
    candidates = list(private.subnets(new_prefix=src.prefixlen)) if src.prefixlen >= private.prefixlen else []
    start = candidates.index(src) + 1 if src in candidates else 0
    for net in candidates[start:] + candidates[:start]:
        if not any(net.overlaps(r.network) for r in taken):
            return str(net)
    raise OpsbookError(f"no free /{src.prefixlen} left in {private} that overlaps no existing VPC or office range",
                       remedy="pass vpc_cidr explicitly")


def shift(subnet: str, source_vpc: str, target_vpc: str) -> str:
    """The subnet at the same offset inside the target VPC."""
    sub, src, dst = (ipaddress.IPv4Network(x) for x in (subnet, source_vpc, target_vpc))
    offset = int(sub.network_address) - int(src.network_address)
    return str(ipaddress.IPv4Network((int(dst.network_address) + offset, sub.prefixlen)))


@dataclass
class CidrPlan:
    region: str
    vpc_cidr: str
    azs: list[str]
    public_subnets: list[str]
    private_subnets: list[str]
    derived: bool
    problems: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        rows = [{"range": "vpc", "az": "—", "cidr": self.vpc_cidr}]
        rows += [{"range": f"public {i + 1}", "az": az, "cidr": c}
                 for i, (az, c) in enumerate(zip(self.azs, self.public_subnets, strict=False))]
        rows += [{"range": f"private {i + 1}", "az": az, "cidr": c}
                 for i, (az, c) in enumerate(zip(self.azs, self.private_subnets, strict=False))]
        return pd.DataFrame(rows)


def _check_cidr(value: str, source: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise UsageError(f"vpc_cidr: expected an IPv4 CIDR such as 10.21.0.0/16, got {value!r} ({exc})") from None
    if net.prefixlen != ipaddress.IPv4Network(source).prefixlen:
        raise UsageError(f"vpc_cidr: expected a /{ipaddress.IPv4Network(source).prefixlen} like the source VPC "
                         f"{source} (its subnets are laid out at the same offsets), got {value}")
    return str(net)


# --- readiness ------------------------------------------------------------------------------


@dataclass
class Readiness:
    region: str
    checks: pd.DataFrame
    cidr: CidrPlan

    @property
    def ready(self) -> bool:
        return bool(self.checks["ok"].all())

    @property
    def failures(self) -> list[str]:
        bad = self.checks[~self.checks["ok"]]
        return [f"{row.check}: {row.detail}" for row in bad.itertuples()]

    def verdict(self) -> str:
        if self.ready:
            return f"{self.region} is ready for the estate ({len(self.checks)} checks passed)"
        return f"{self.region} is NOT ready: " + "; ".join(self.failures)


def _check(check: str, detail: str, need: Any, used: Any, limit: Any, ok: bool) -> dict[str, Any]:
    return {"check": check, "detail": detail, "need": need, "used": used, "limit": limit, "ok": ok}


def readiness(env: Env, target_region: str = "", vpc_cidr: str = "", min_azs: int = 3) -> Readiness:
    """Every check for `target_region` (default: the first of params other_regions)."""
    params = env.params
    region = naming.first_other_region(params, target_region)
    source_vpc = params.network.vpc_cidr
    if vpc_cidr:
        vpc_cidr = _check_cidr(vpc_cidr, source_vpc)
    if min_azs < 1:
        raise UsageError(f"min_azs: expected at least 1, got {min_azs}")
    checks = []

    zones = env.aws("ec2", region).describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}])["AvailabilityZones"]
    available = sorted(z["ZoneName"] for z in zones if z["State"] == "available")
    wanted = max(min_azs, len(params.network.azs))
    checks.append(_check("availability zones", ", ".join(available) or "none available", wanted, "—",
                         len(available), len(available) >= wanted))

    for quota in QUOTA_NEEDS:
        need, used = quota.need(params), quota.used(env, region)
        limit, source = quota_value(env, region, quota.service, quota.code)
        ok = used + need <= limit
        detail = (f"{quota.service}/{quota.code} ({source} value)" if ok else
                  f"{quota.service}/{quota.code}: {used} used + {need} needed > {limit:g}; request an increase "
                  f"(aws service-quotas request-service-quota-increase --region {region} --service-code "
                  f"{quota.service} --quota-code {quota.code} --desired-value {used + need})")
        checks.append(_check(f"quota: {quota.name}", detail, need, used, limit, ok))

    taken = existing_vpc_ranges(env) + office_ranges(params)
    derived = not vpc_cidr
    cidr = vpc_cidr or derive_vpc_cidr(source_vpc, taken)
    problems = overlaps(cidr, taken)
    checks.append(_check("VPC CIDR", "; ".join(problems) or f"{cidr} overlaps no VPC in any region nor the "
                         "office ranges", cidr, "—", "—", not problems))
    plan = CidrPlan(region, cidr, available[: len(params.network.azs)],
                    [shift(s, source_vpc, cidr) for s in params.network.public_subnets],
                    [shift(s, source_vpc, cidr) for s in params.network.private_subnets], derived, problems)
    return Readiness(region, pd.DataFrame(checks), plan)


# --- terraform.tfvars -----------------------------------------------------------------------


def derive_tfvars(params: Params, cidr: CidrPlan) -> dict[str, Any]:
    """The new region's variables, from the source env's params."""
    region = cidr.region
    return {
        "environment": params.env,
        "region": region,
        "azs": cidr.azs,
        "vpc_cidr": cidr.vpc_cidr,
        "public_subnets": cidr.public_subnets,
        "private_subnets": cidr.private_subnets,
        "nat_gateway_per_az": params.network.nat_gateway_per_az,
        "office_cidrs": list(params.network.vpn.office_cidrs),
        "vpn_customer_gateway_ip": params.network.vpn.customer_gateway_ip,
        "vpn_bgp_asn": params.network.vpn.bgp_asn,
        "cluster_name": params.eks.cluster_name,
        "cluster_version": params.eks.version,
        "node_groups": {g.name: {"instance_type": g.instance_type, "min_size": g.min_size,
                                 "max_size": g.max_size, "desired_size": g.desired_size}
                        for g in params.eks.node_groups},
        "rds_instances": {i.identifier: {"engine": i.engine, "engine_version": i.engine_version,
                                         "instance_class": i.instance_class,
                                         "allocated_storage_gb": i.allocated_storage_gb, "multi_az": i.multi_az,
                                         "backup_retention_days": i.backup_retention_days}
                          for i in params.rds},
        "buckets": {k: naming.bucket(params, v, region) for k, v in params.buckets.model_dump().items()},
        "lock_table": params.lock_table,
        "kms_aliases": params.kms.model_dump(),
        "trail_name": naming.regional(params, params.trail_name, region),
        "zones": params.zones.model_dump(),
    }


def tfvars_path(params: Params, region: str, output_dir: str = "") -> Path:
    return files.output_dir(params, output_dir, region) / TFVARS_FILE


def plan_tfvars(env: Env, ready: Readiness, output_dir: str = "") -> Plan:
    """terraform.tfvars key by key against the existing file (when there is one)."""
    path = tfvars_path(env.params, ready.region, output_dir)
    desired = derive_tfvars(env.params, ready.cidr)
    current = files.read_hcl(path) if path.is_file() else None
    if current is not None:
        desired = {**current, **desired}  # variables params do not derive are kept as they are
    text = files.to_hcl(desired)
    plan = Plan(f"terraform.tfvars for {env.name} in {ready.region}")  # a local file: no production approval
    for change in files.setting_rows(f"file {path}", current, desired, lambda: files.write_text(path, text)):
        plan.add(change)
    return plan


def apply_tfvars(plan: Plan, ready: Readiness, apply: bool, confirm: str = "", approval: str = "") -> Outcome:
    """Write the file only for a ready region: a tfvars with an overlapping CIDR must not exist."""
    if apply and not ready.ready and not plan.empty:
        raise OpsbookError(f"not writing terraform.tfvars: {ready.verdict()}; nothing was changed",
                           remedy="fix these first (e.g. pass another vpc_cidr), then run again")
    return apply_plan(plan, apply, confirm, approval)
