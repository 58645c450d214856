"""Checks: pure functions from inventory models (and params) to rows pass / warn / fail.

No API call happens here: every function reads models the service wrappers built, so
each check can be tested on hand-built models. A reason names the missing or wrong piece.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsbook.inventory.acm import Certificate
from opsbook.inventory.cloudtrail import Trail
from opsbook.inventory.dynamodb import Table
from opsbook.inventory.eks import Cluster
from opsbook.inventory.kms import KmsKey
from opsbook.inventory.kube import HelmRelease, KubeNode
from opsbook.inventory.network import Network
from opsbook.inventory.rds import DbInstance
from opsbook.inventory.registry import health_check
from opsbook.inventory.s3 import Bucket
from opsbook.inventory.ssm import ParameterInfo
from opsbook.params import Params

Status = Literal["pass", "warn", "fail"]
NETWORK, EKS, RDS, STORAGE, SECURITY = "network", "eks", "rds", "storage", "security"


class Check(BaseModel):
    """One row of the health check."""

    model_config = ConfigDict(frozen=True)

    section: str
    check: str
    resource: str
    status: Status
    reason: str

    @property
    def name(self) -> str:
        return f"{self.check}[{self.resource}]"


class Thresholds(BaseModel):
    """The knobs of the checks that params do not set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    restore_lag_warn_minutes: float = Field(
        10.0, gt=0, description="warn when RDS can restore only older than this"
    )
    cert_warn_margin_days: int = Field(
        15, ge=0, description="warn this many days before cert_min_days is reached"
    )


Row = Callable[[str, str, Status, str], Check]


def _rows(section: str) -> Row:
    def row(check: str, resource: str, status: Status, reason: str) -> Check:
        return Check(section=section, check=check, resource=resource, status=status, reason=reason)

    return row


def unreadable(section: str, check: str, resource: str, error: str) -> Check:
    """The row standing for checks whose inputs could not be read."""
    return Check(
        section=section, check=check, resource=resource, status="fail", reason=f"could not read: {error}"
    )


# --- network ---------------------------------------------------------------------------------


@health_check("vpc", NETWORK, lambda p: p.network.vpc_cidr)
def check_vpc(network: Network, params: Params) -> list[Check]:
    """The VPC exists and has the public and private subnet of params in each AZ."""
    row = _rows(NETWORK)
    net = params.network
    if network.vpc_id is None:
        return [row("vpc", net.vpc_cidr, "fail", f"no VPC with CIDR {net.vpc_cidr}")]
    rows = [row("vpc", network.vpc_id, "pass", f"VPC {net.vpc_cidr} found")]
    by_cidr = {s.cidr: s for s in network.subnets}
    for az, public, private in zip(net.azs, net.public_subnets, net.private_subnets, strict=True):
        problems = []
        for kind, cidr in (("public", public), ("private", private)):
            subnet = by_cidr.get(cidr)
            if subnet is None:
                problems.append(f"no {kind} subnet {cidr} in {az}")
            elif subnet.az != az:
                problems.append(f"{kind} subnet {cidr} is in {subnet.az}, not {az}")
        if problems:
            rows.append(row("vpc.subnets", az, "fail", "; ".join(problems)))
        else:
            rows.append(row("vpc.subnets", az, "pass", f"public {public} and private {private}"))
    return rows


@health_check("vpc.nat_gateway", NETWORK, lambda p: p.network.vpc_cidr)
def check_nat_gateways(network: Network, params: Params) -> list[Check]:
    """A NAT gateway available in each AZ (or one, when params share a single NAT)."""
    row = _rows(NETWORK)
    if network.vpc_id is None:
        return []
    available: dict[str | None, list[str]] = {}
    for nat in network.nat_gateways:
        if nat.state == "available":
            available.setdefault(nat.az, []).append(nat.nat_gateway_id)
    if not params.network.nat_gateway_per_az:
        ids = [i for ids in available.values() for i in ids]
        if ids:
            return [row("vpc.nat_gateway", network.vpc_id, "pass", f"{', '.join(ids)} available")]
        return [row("vpc.nat_gateway", network.vpc_id, "fail", "no NAT gateway available in the VPC")]
    rows = []
    for az in params.network.azs:
        if az in available:
            rows.append(row("vpc.nat_gateway", az, "pass", f"{', '.join(available[az])} available"))
            continue
        others = [f"{n.nat_gateway_id} is {n.state}" for n in network.nat_gateways if n.az == az]
        detail = f" ({'; '.join(others)})" if others else ""
        rows.append(row("vpc.nat_gateway", az, "fail", f"no NAT gateway available in {az}{detail}"))
    return rows


@health_check("vpn.connection", NETWORK, lambda p: p.network.vpn.customer_gateway_ip)
def check_vpn(network: Network, params: Params) -> list[Check]:
    """The office VPN: connection available, tunnels UP, static routes to the office CIDRs."""
    row = _rows(NETWORK)
    if network.vpc_id is None:
        return []
    vpn = params.network.vpn
    connections = [c for c in network.vpn_connections if c.customer_gateway_ip == vpn.customer_gateway_ip]
    if not connections:
        return [
            row(
                "vpn.connection",
                vpn.customer_gateway_ip,
                "fail",
                f"no VPN connection from the office gateway {vpn.customer_gateway_ip} to the VPC",
            )
        ]
    conn = next((c for c in connections if c.state == "available"), connections[0])
    rid = conn.vpn_connection_id
    rows = [
        row("vpn.connection", rid, "pass", f"available, from {vpn.customer_gateway_ip}")
        if conn.state == "available"
        else row("vpn.connection", rid, "fail", f"state {conn.state}, expected available")
    ]
    up = [t for t in conn.tunnels if t.status == "UP"]
    down = ", ".join(
        f"{t.outside_ip} {t.status} {t.status_message}".strip() for t in conn.tunnels if t.status != "UP"
    )
    total = len(conn.tunnels)
    if not conn.tunnels:
        rows.append(row("vpn.tunnels", rid, "fail", "no tunnel telemetry reported"))
    elif not up:
        rows.append(row("vpn.tunnels", rid, "fail", f"all {total} tunnels down: {down}"))
    elif len(up) < total:
        rows.append(
            row("vpn.tunnels", rid, "warn", f"{len(up)}/{total} tunnels UP, no redundancy; down: {down}")
        )
    else:
        rows.append(row("vpn.tunnels", rid, "pass", f"{total}/{total} tunnels UP"))
    if conn.static_routes_only:
        missing = [cidr for cidr in vpn.office_cidrs if cidr not in conn.routes]
        if missing:
            rows.append(row("vpn.routes", rid, "fail", f"no static route to office {', '.join(missing)}"))
        else:
            rows.append(row("vpn.routes", rid, "pass", f"static routes to {', '.join(vpn.office_cidrs)}"))
    else:
        rows.append(row("vpn.routes", rid, "pass", "dynamic routing (BGP) learns the office routes"))
    return rows


# --- EKS and Kubernetes ------------------------------------------------------------------------


@health_check("eks.cluster", EKS, lambda p: p.eks.cluster_name)
def check_cluster(cluster: Cluster | None, params: Params) -> list[Check]:
    """Cluster ACTIVE at the params version; each node group ACTIVE over every AZ."""
    row = _rows(EKS)
    name = params.eks.cluster_name
    if cluster is None:
        return [row("eks.cluster", name, "fail", f"no EKS cluster {name}")]
    rows = [
        row("eks.cluster", name, "pass", "ACTIVE")
        if cluster.status == "ACTIVE"
        else row("eks.cluster", name, "fail", f"status {cluster.status}, expected ACTIVE"),
        row("eks.version", name, "pass", f"Kubernetes {cluster.version} as params say")
        if cluster.version == params.eks.version
        else row(
            "eks.version", name, "fail", f"Kubernetes {cluster.version}, params say {params.eks.version}"
        ),
    ]
    groups = {g.name: g for g in cluster.node_groups}
    for wanted in params.eks.node_groups:
        group = groups.get(wanted.name)
        if group is None:
            rows.append(row("eks.node_group", wanted.name, "fail", f"no node group {wanted.name} in {name}"))
            continue
        problems = []
        if group.status != "ACTIVE":
            problems.append(f"status {group.status}, expected ACTIVE")
        missing = [az for az in params.network.azs if az not in group.azs]
        if missing:
            problems.append(f"no subnet in {', '.join(missing)} (spans {', '.join(group.azs) or 'no AZ'})")
        if problems:
            rows.append(row("eks.node_group", wanted.name, "fail", "; ".join(problems)))
        else:
            rows.append(
                row(
                    "eks.node_group",
                    wanted.name,
                    "pass",
                    f"ACTIVE, {group.desired_size} desired over {', '.join(group.azs)}",
                )
            )
    return rows


@health_check("k8s.nodes", EKS, lambda p: p.eks.cluster_name)
def check_nodes(nodes: list[KubeNode], params: Params) -> list[Check]:
    """Every node Ready, and Ready nodes in every AZ."""
    row = _rows(EKS)
    name = params.eks.cluster_name
    if not nodes:
        return [row("k8s.nodes", name, "fail", "the API server lists no nodes")]
    not_ready = [n for n in nodes if not n.ready]
    if not_ready:
        names = ", ".join(f"{n.name} ({n.reason})" if n.reason else n.name for n in not_ready)
        rows = [
            row(
                "k8s.nodes",
                name,
                "fail",
                f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready; not Ready: {names}",
            )
        ]
    else:
        rows = [row("k8s.nodes", name, "pass", f"{len(nodes)}/{len(nodes)} nodes Ready")]
    per_az = Counter(n.az for n in nodes if n.ready)
    missing = [az for az in params.network.azs if not per_az.get(az)]
    if missing:
        rows.append(row("k8s.node_spread", name, "fail", f"no Ready node in {', '.join(missing)}"))
    else:
        spread = ", ".join(f"{az}: {per_az[az]}" for az in params.network.azs)
        rows.append(row("k8s.node_spread", name, "pass", f"Ready nodes per AZ: {spread}"))
    return rows


@health_check("helm.release", EKS, lambda p: p.eks.cluster_name)
def check_addons(helm_releases: list[HelmRelease], params: Params) -> list[Check]:
    """Each add-on of params deployed by Helm with the params chart version."""
    row = _rows(EKS)
    found = {(r.namespace, r.name): r for r in helm_releases}
    rows = []
    for addon in params.eks.addons:
        rid = f"{addon.namespace}/{addon.name}"
        release = found.get((addon.namespace, addon.name))
        if release is None:
            rows.append(
                row(
                    "helm.release",
                    rid,
                    "fail",
                    f"no Helm release {addon.name} in namespace {addon.namespace}",
                )
            )
        elif release.status != "deployed":
            rows.append(row("helm.release", rid, "fail", f"revision {release.revision} is {release.status}"))
        elif release.chart != addon.chart:
            rows.append(
                row("helm.release", rid, "fail", f"chart {release.chart} deployed, params say {addon.chart}")
            )
        elif release.chart_version != addon.version:
            rows.append(
                row(
                    "helm.release",
                    rid,
                    "fail",
                    f"chart {release.chart} {release.chart_version} deployed, params say {addon.version}",
                )
            )
        else:
            rows.append(
                row(
                    "helm.release",
                    rid,
                    "pass",
                    f"{release.chart} {release.chart_version} deployed (revision {release.revision})",
                )
            )
    return rows


# --- RDS -----------------------------------------------------------------------------------------


def _key(keys: list[KmsKey], purpose: str) -> KmsKey | None:
    return next((k for k in keys if k.purpose == purpose and k.exists), None)


@health_check("rds.instance", RDS, lambda p: ", ".join(i.identifier for i in p.rds))
def check_rds(
    db_instances: dict[str, DbInstance | None],
    kms_keys: list[KmsKey],
    params: Params,
    now: datetime,
    thresholds: Thresholds,
) -> list[Check]:
    """Each instance: available, Multi-AZ, backup retention, encryption, restore lag."""
    row = _rows(RDS)
    rds_key = _key(kms_keys, "rds")
    rows = []
    for wanted in params.rds:
        rid = wanted.identifier
        db = db_instances.get(rid)
        if db is None:
            rows.append(row("rds.instance", rid, "fail", f"no RDS instance {rid}"))
            continue
        if db.status == "available":
            rows.append(row("rds.instance", rid, "pass", f"available, {db.engine} {db.engine_version}"))
        else:
            rows.append(row("rds.instance", rid, "warn", f"status {db.status}, expected available"))
        if wanted.multi_az and not db.multi_az:
            rows.append(row("rds.multi_az", rid, "fail", "single-AZ, params want Multi-AZ"))
        else:
            rows.append(
                row("rds.multi_az", rid, "pass", "Multi-AZ" if db.multi_az else "single-AZ as params say")
            )
        days, want_days = db.backup_retention_days, wanted.backup_retention_days
        if days < want_days:
            rows.append(
                row("rds.backup_retention", rid, "fail", f"{days} days, params want at least {want_days}")
            )
        else:
            rows.append(row("rds.backup_retention", rid, "pass", f"{days} days (params: {want_days})"))
        if wanted.storage_encrypted and not db.storage_encrypted:
            rows.append(row("rds.storage_encrypted", rid, "fail", "storage not encrypted"))
        elif db.storage_encrypted and rds_key and db.kms_key_id not in rds_key.names():
            rows.append(
                row(
                    "rds.storage_encrypted",
                    rid,
                    "warn",
                    f"encrypted with {db.kms_key_id}, not {rds_key.alias}",
                )
            )
        else:
            how = f" with {rds_key.alias}" if rds_key and db.storage_encrypted else ""
            rows.append(
                row(
                    "rds.storage_encrypted",
                    rid,
                    "pass",
                    f"encrypted{how}" if db.storage_encrypted else "not encrypted, as params say",
                )
            )
        rows.append(_restore_lag(row, rid, db, now, thresholds))
    return rows


def _restore_lag(row: Row, rid: str, db: DbInstance, now: datetime, thresholds: Thresholds) -> Check:
    if db.latest_restorable_time is None:
        return row("rds.restore_lag", rid, "fail", "no latest restorable time (are automated backups off?)")
    lag = max(0.0, (now - db.latest_restorable_time).total_seconds() / 60)
    limit = thresholds.restore_lag_warn_minutes
    if lag > limit:
        return row(
            "rds.restore_lag", rid, "warn", f"restorable only to {lag:.1f} min ago (over {limit:g} min)"
        )
    return row("rds.restore_lag", rid, "pass", f"restorable to {lag:.1f} min ago (limit {limit:g} min)")


# --- Terraform state and storage ---------------------------------------------------------------


@health_check("s3.bucket", STORAGE, lambda p: p.buckets.terraform_state)
def check_buckets(buckets: list[Bucket], kms_keys: list[KmsKey], params: Params) -> list[Check]:
    """Every bucket exists; the state bucket is versioned, SSE-KMS encrypted and not public."""
    row = _rows(STORAGE)
    rows = [
        row("s3.bucket", b.name, "pass", "exists")
        if b.exists
        else row("s3.bucket", b.name, "fail", "no such bucket")
        for b in buckets
    ]
    name = params.buckets.terraform_state
    state = next((b for b in buckets if b.name == name), None)
    if state is None or not state.exists:
        return rows
    if state.versioning == "Enabled":
        rows.append(row("s3.versioning", name, "pass", "versioning Enabled"))
    else:
        rows.append(row("s3.versioning", name, "fail", f"versioning {state.versioning or 'never enabled'}"))
    rows.append(_bucket_encryption(row, state, _key(kms_keys, "terraform"), params.kms.terraform))
    block = state.public_access_block
    if not block:
        rows.append(row("s3.public_access_block", name, "fail", "no public access block"))
    elif not all(block.values()):
        off = ", ".join(flag for flag, on in block.items() if not on)
        rows.append(row("s3.public_access_block", name, "fail", f"not set: {off}"))
    else:
        rows.append(row("s3.public_access_block", name, "pass", "all four public access settings on"))
    return rows


def _bucket_encryption(row: Row, bucket: Bucket, key: KmsKey | None, alias: str) -> Check:
    enc = bucket.encryption
    if enc is None:
        return row("s3.encryption", bucket.name, "fail", "no default encryption")
    if not enc.algorithm.startswith("aws:kms"):
        return row(
            "s3.encryption", bucket.name, "warn", f"{enc.algorithm} (SSE-S3), expected SSE-KMS with {alias}"
        )
    if key is None:
        return row(
            "s3.encryption", bucket.name, "warn", f"SSE-KMS with {enc.kms_key_id}, but {alias} does not exist"
        )
    if enc.kms_key_id and enc.kms_key_id not in key.names():
        return row("s3.encryption", bucket.name, "warn", f"SSE-KMS with {enc.kms_key_id}, not {alias}")
    return row("s3.encryption", bucket.name, "pass", f"SSE-KMS with {alias}")


@health_check("dynamodb.lock_table", STORAGE, lambda p: p.lock_table)
def check_lock_table(lock_table: Table | None, params: Params) -> list[Check]:
    row = _rows(STORAGE)
    name = params.lock_table
    if lock_table is None:
        return [row("dynamodb.lock_table", name, "fail", f"no DynamoDB table {name}")]
    if lock_table.hash_key != "LockID" or lock_table.hash_key_type != "S":
        return [
            row(
                "dynamodb.lock_table",
                name,
                "fail",
                f"hash key {lock_table.hash_key} ({lock_table.hash_key_type}), Terraform needs LockID (S)",
            )
        ]
    if lock_table.status != "ACTIVE":
        return [row("dynamodb.lock_table", name, "warn", f"status {lock_table.status}, expected ACTIVE")]
    return [row("dynamodb.lock_table", name, "pass", "ACTIVE, hash key LockID (S)")]


# --- keys, audit, certificates, parameters -------------------------------------------------------


@health_check("kms.rotation", SECURITY, lambda p: ", ".join(p.kms.model_dump().values()))
def check_kms(kms_keys: list[KmsKey], params: Params) -> list[Check]:
    row = _rows(SECURITY)
    rows = []
    for key in kms_keys:
        if not key.exists:
            rows.append(row("kms.rotation", key.alias, "fail", f"no KMS key behind {key.alias}"))
        elif key.state != "Enabled":
            rows.append(row("kms.rotation", key.alias, "fail", f"key {key.key_id} is {key.state}"))
        elif not key.rotation_enabled:
            rows.append(
                row("kms.rotation", key.alias, "fail", f"automatic rotation disabled on {key.key_id}")
            )
        else:
            rows.append(row("kms.rotation", key.alias, "pass", "enabled, automatic rotation on"))
    return rows


@health_check("cloudtrail.logging", SECURITY, lambda p: p.trail_name)
def check_trail(trail: Trail | None, params: Params) -> list[Check]:
    row = _rows(SECURITY)
    name = params.trail_name
    if trail is None:
        return [row("cloudtrail.logging", name, "fail", f"no CloudTrail trail {name}")]
    if not trail.is_logging:
        return [row("cloudtrail.logging", name, "fail", "trail exists but is not logging")]
    if trail.latest_delivery_error:
        return [
            row(
                "cloudtrail.logging",
                name,
                "warn",
                f"logging, but delivery fails: {trail.latest_delivery_error}",
            )
        ]
    if trail.s3_bucket != params.buckets.logs:
        return [
            row(
                "cloudtrail.logging",
                name,
                "warn",
                f"logging into {trail.s3_bucket}, params say {params.buckets.logs}",
            )
        ]
    return [row("cloudtrail.logging", name, "pass", f"logging into s3://{trail.s3_bucket}")]


@health_check("acm.expiry", SECURITY, lambda p: ", ".join(c.domain for c in p.certificates))
def check_certificates(
    certificates: list[Certificate], params: Params, now: datetime, thresholds: Thresholds
) -> list[Check]:
    """Each certificate of params ISSUED, covering its names, and far enough from expiry."""
    row = _rows(SECURITY)
    rows = []
    for wanted in params.certificates:
        domain = wanted.domain
        candidates = [c for c in certificates if c.domain == domain]
        issued = [c for c in candidates if c.status == "ISSUED" and c.not_after is not None]
        if not candidates:
            rows.append(row("acm.expiry", domain, "fail", f"no ACM certificate for {domain}"))
            continue
        if not issued:
            statuses = ", ".join(sorted({c.status for c in candidates}))
            rows.append(row("acm.expiry", domain, "fail", f"no ISSUED certificate (status {statuses})"))
            continue
        cert = max(issued, key=lambda c: c.not_after)
        days = (cert.not_after - now).days
        until = f"expires {cert.not_after:%Y-%m-%d} ({days} days)"
        uncovered = [n for n in wanted.alternative_names if n not in cert.alternative_names]
        if uncovered:
            rows.append(row("acm.expiry", domain, "fail", f"does not cover {', '.join(uncovered)}; {until}"))
        elif days < params.cert_min_days:
            rows.append(
                row("acm.expiry", domain, "fail", f"{until}, under cert_min_days {params.cert_min_days}")
            )
        elif days < params.cert_min_days + thresholds.cert_warn_margin_days:
            rows.append(
                row(
                    "acm.expiry",
                    domain,
                    "warn",
                    f"{until}, renewal due (cert_min_days {params.cert_min_days})",
                )
            )
        else:
            rows.append(row("acm.expiry", domain, "pass", f"ISSUED, {until}"))
    return rows


@health_check("ssm.parameter", SECURITY, lambda p: p.ssm.prefix)
def check_ssm(ssm_parameters: list[ParameterInfo], params: Params) -> list[Check]:
    """Each required parameter present (secure ones as SecureString); values never read."""
    row = _rows(SECURITY)
    found = {p.name: p for p in ssm_parameters}
    secure = set(params.ssm.secure)
    rows = []
    for name in dict.fromkeys([*params.ssm.required, *params.ssm.secure]):
        param = found.get(name)
        if param is None:
            rows.append(row("ssm.parameter", name, "fail", "missing"))
        elif name in secure and param.type != "SecureString":
            rows.append(row("ssm.parameter", name, "fail", f"type {param.type}, expected SecureString"))
        else:
            rows.append(row("ssm.parameter", name, "pass", f"present ({param.type})"))
    return rows
