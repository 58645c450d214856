"""Load and validate `params/<env>.yaml` into typed models.

A params file describes one environment of the estate. It may `extends:` another
file (by env name or relative path); mappings merge deeply, lists and scalars of
the child replace the parent's. Unknown keys are rejected, and every error names
the file, the field and what is expected, before any API call is made.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from opsbook.errors import ParamsError

PARAMS_DIR_ENV = "OPSBOOK_PARAMS_DIR"


def project_root() -> Path:
    """The checkout holding params/, runbooks/ and notebooks/ (OPSBOOK_ROOT overrides)."""
    if root := os.environ.get("OPSBOOK_ROOT"):
        return Path(root).resolve()
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        if (parent / "params").is_dir() and (parent / "runbooks").is_dir():
            return parent
    return Path.cwd()


def params_dir() -> Path:
    return Path(os.environ.get(PARAMS_DIR_ENV) or project_root() / "params")


# --- field types ---------------------------------------------------------------------------


@cache
def known_regions() -> frozenset[str]:
    """Every AWS region botocore knows (its bundled endpoint data: no network)."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def _region(value: str) -> str:
    if value not in known_regions():
        raise ValueError(f"expected an AWS region such as eu-central-1, got {value!r}")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 CIDR such as 10.20.0.0/16, got {value!r} ({exc})") from None
    return str(net)


def _ssm_name(value: str) -> str:
    if not value.startswith("/") or " " in value:
        raise ValueError(f"expected an SSM parameter name starting with '/', got {value!r}")
    return value


Region = Annotated[str, AfterValidator(_region)]
Cidr = Annotated[str, AfterValidator(_cidr)]
SsmName = Annotated[str, AfterValidator(_ssm_name)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the estate ----------------------------------------------------------------------------


class AwsAccess(Model):
    """How opsbook reaches the account. Credentials come from the standard chain."""

    profile: str | None = None
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = None


class Vpn(Model):
    customer_gateway_ip: str
    bgp_asn: int = Field(65000, ge=1, le=4294967295)
    office_cidrs: list[Cidr] = Field(min_length=1)

    @field_validator("customer_gateway_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"expected an IPv4 address, got {value!r}") from None
        return value


class Network(Model):
    vpc_cidr: Cidr
    azs: list[str] = Field(min_length=1)
    public_subnets: list[Cidr]
    private_subnets: list[Cidr]
    nat_gateway_per_az: bool = True
    vpn: Vpn

    @model_validator(mode="after")
    def _subnets_fit(self) -> Network:
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        for kind in ("public_subnets", "private_subnets"):
            subnets = getattr(self, kind)
            if len(subnets) != len(self.azs):
                raise ValueError(f"{kind}: expected one subnet per AZ ({len(self.azs)}), got {len(subnets)}")
            for cidr in subnets:
                if not ipaddress.IPv4Network(cidr).subnet_of(vpc):
                    raise ValueError(f"{kind}: {cidr} is not inside the VPC CIDR {self.vpc_cidr}")
        return self


class NodeGroup(Model):
    name: str
    instance_type: str
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"expected min_size <= desired_size <= max_size, got {self.min_size}, "
                f"{self.desired_size}, {self.max_size}"
            )
        return self


class HelmRelease(Model):
    name: str
    namespace: str
    chart: str
    version: str
    app_version: str


class Eks(Model):
    cluster_name: str
    version: str = Field(pattern=r"^1\.\d+$")
    node_groups: list[NodeGroup] = Field(min_length=1)
    addons: list[HelmRelease] = []


class RdsInstance(Model):
    identifier: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")
    engine: Literal["mysql", "mariadb"] = "mysql"
    engine_version: str
    instance_class: str = Field(pattern=r"^db\.")
    allocated_storage_gb: int = Field(100, ge=20)
    multi_az: bool = True
    backup_retention_days: int = Field(7, ge=0, le=35)
    storage_encrypted: bool = True
    database: str
    username: str
    password_ssm: SsmName
    tables: list[str] = []
    # host:port that reaches the instance's data plane from where opsbook runs
    # (a tunnel in production; unset in the sandbox, whose RDS reports loopback endpoints)
    endpoint_override: str | None = Field(None, pattern=r"^[\w.-]+:\d+$")
    # command opsbook runs to reach other instances (a drill's restored copy) through a tunnel,
    # with {host}, {port} (the RDS endpoint) and {local_port} filled in; unset: connect directly
    tunnel_command: str | None = Field(None, pattern=r"\{local_port\}")


class Buckets(Model):
    terraform_state: str
    velero: str
    static: str
    logs: str
    cur: str


class Kms(Model):
    terraform: str = Field(pattern=r"^alias/")
    rds: str = Field(pattern=r"^alias/")
    ssm: str = Field(pattern=r"^alias/")


class Zones(Model):
    public: str
    private: str


class Certificate(Model):
    domain: str
    alternative_names: list[str] = []


class Ssm(Model):
    prefix: SsmName
    required: list[SsmName] = []
    secure: list[SsmName] = []


# Placeholders Datadog queries in params may use (string.Template syntax: Datadog's own
# query language already uses braces); lib/opsbook/datadog fills them from these params.
DATADOG_PLACEHOLDERS = ("cluster", "rds", "env")


def _datadog_query(value: str) -> str:
    import string

    try:
        names = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(value)}
    except ValueError:
        names = set()
    unknown = sorted(n for n in names if n and n not in DATADOG_PLACEHOLDERS)
    if unknown:
        allowed = ", ".join(f"${n}" for n in DATADOG_PLACEHOLDERS)
        raise ValueError(f"unknown placeholder(s) {', '.join('$' + n for n in unknown)} in {value!r} (allowed: {allowed})")
    return value


DatadogQuery = Annotated[str, AfterValidator(_datadog_query)]
_COMPARISON = re.compile(r"\s(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?(?:e\d+)?)\s*$")


class DatadogMonitor(Model):
    """A wanted monitor (runbooks/datadog-monitors): its name is its identity."""

    name: Annotated[DatadogQuery, Field(min_length=1)]
    type: Literal["metric alert", "query alert"] = "query alert"
    query: DatadogQuery
    message: DatadogQuery = ""
    priority: int | None = Field(None, ge=1, le=5)
    critical: float
    warning: float | None = None
    notify_no_data: bool = False
    renotify_interval: int | None = Field(None, ge=0)
    tags: list[str] = []
    tripped_by: list[str] = Field([], description="drills expected to trip it: downtimed while they run")

    @model_validator(mode="after")
    def _thresholds_match_query(self) -> DatadogMonitor:
        match = _COMPARISON.search(self.query)
        if not match:
            raise ValueError(f"query of {self.name!r} must end with a comparison such as '> 90', got {self.query!r}")
        op, value = match.group(1), float(match.group(2))
        if value != self.critical:
            raise ValueError(f"{self.name!r}: critical {self.critical} differs from the query's threshold {value}")
        if self.warning is not None:
            above = op in (">", ">=")
            if (above and self.warning >= self.critical) or (not above and self.warning <= self.critical):
                side = "below" if above else "above"
                raise ValueError(f"{self.name!r}: warning {self.warning} must be {side} critical {self.critical} ({op})")
        return self


class DatadogMetrics(Model):
    """Metric queries of the estate's key signals (with $cluster, $rds, $env placeholders)."""

    sms_sent_per_second: DatadogQuery = "sum:smsapi.sms.sent{kube_cluster_name:$cluster}.as_rate()"
    sms_sent_count: DatadogQuery = "sum:smsapi.sms.sent{kube_cluster_name:$cluster}.as_count()"
    api_latency_seconds: DatadogQuery = "avg:trace.http.request.duration{kube_cluster_name:$cluster,service:sms-gateway}"
    rabbitmq_queue_depth: DatadogQuery = "sum:rabbitmq.queue.messages{kube_cluster_name:$cluster}"
    rds_cpu_percent: DatadogQuery = "avg:aws.rds.cpuutilization{dbinstanceidentifier:$rds}"
    node_count: DatadogQuery = "sum:kubernetes_state.node.count{kube_cluster_name:$cluster}"


class DatadogPlanPrice(Model):
    """List prices of one Datadog Infrastructure plan and billing frequency (USD)."""

    plan: str
    billing: Literal["annual", "on-demand"]
    host_month: float = Field(gt=0)
    containers_per_host: int = Field(ge=0, description="containers included per billed host")
    container_month: float = Field(ge=0, description="per container above the allotment, per month")
    custom_metrics_per_host: int = Field(ge=0, description="custom metrics included per billed host")
    custom_metric_month: float = Field(ge=0, description="per custom metric above the allotment, per month")


class CloudWatchPrices(Model):
    """The CloudWatch-only alternative: list prices and what it would need (USD)."""

    source: str
    as_of: date
    metric_month: float = Field(gt=0)
    alarm_month: float = Field(ge=0)
    dashboard_month: float = Field(ge=0)
    container_insights_metrics_per_node: int = Field(ge=0)
    dashboards: int = Field(0, ge=0)


class DatadogPricing(Model):
    source: str
    as_of: date
    currency: str = "USD"
    plans: list[DatadogPlanPrice] = Field(min_length=1)
    cloudwatch: CloudWatchPrices


class Datadog(Model):
    site: str = "datadoghq.eu"
    api_host: str | None = None
    api_key_ssm: SsmName | None = None
    app_key_ssm: SsmName | None = None
    metrics: DatadogMetrics = DatadogMetrics()
    monitors: list[DatadogMonitor] = []
    pricing: DatadogPricing | None = None
    poc_target_env: str = Field("prod-pl", description="environment the agent PoC's cost is projected onto")
    drill_downtime_minutes: int = Field(120, ge=5, description="a drill's downtime ends by itself after this")
    incident_lookback_days: int = Field(7, ge=1, description="how far back incident-analysis looks for the last alert")

    @field_validator("monitors")
    @classmethod
    def _unique_names(cls, monitors: list[DatadogMonitor]) -> list[DatadogMonitor]:
        names = [m.name for m in monitors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"monitor names must be unique (they identify monitors), repeated: {duplicates}")
        return monitors


class StatefulWorkload(Model):
    name: str
    kind: Literal["rabbitmq", "mysql"]
    replicas: int = Field(1, ge=1)
    volume_size_gi: int = Field(10, ge=1)
    storage_class: str = "gp3"
    database: str | None = Field(None, description="kind mysql: the schema inside it (default: the namespace, '-' -> '_')")

    def database_name(self, namespace: str) -> str:
        return self.database or namespace.replace("-", "_")


class Namespace(Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    team: str
    deployments: list[str] = []
    stateful: list[StatefulWorkload] = []


# --- stateful workloads on EBS (the Velero drills and audit read these) --------------------

# Placeholders of the templates saying how opsbook reaches a stateful workload of a namespace.
ACCESS_PLACEHOLDERS = ("namespace", "service", "database")


def _access_template(value: str) -> str:
    import string

    try:
        names = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    except ValueError as exc:
        raise ValueError(f"expected a template such as '{{service}}.{{namespace}}.svc', got {value!r} ({exc})") from None
    unknown = sorted(n for n in names if n not in ACCESS_PLACEHOLDERS)
    if unknown:
        allowed = ", ".join(f"{{{n}}}" for n in ACCESS_PLACEHOLDERS)
        raise ValueError(f"unknown placeholder(s) {', '.join(unknown)!s} in {value!r} (allowed: {allowed})")
    return value


AccessTemplate = Annotated[str, AfterValidator(_access_template)]


class RabbitmqAccess(Model):
    """How opsbook reaches the RabbitMQ broker of a namespace (in-cluster DNS over the VPN)."""

    host: AccessTemplate = "{service}.{namespace}.svc.cluster.local"
    amqp_port: int = Field(5672, ge=1, le=65535)
    management_url: AccessTemplate = "http://{service}.{namespace}.svc.cluster.local:15672"
    vhost: AccessTemplate | None = Field(None, description="the broker's vhost; None: every vhost of the broker")
    username: str = "opsbook"
    password_ssm: SsmName | None = None
    canary_queue: str = Field("opsbook.drill-canary", min_length=1)


class DatabaseAccess(Model):
    """How opsbook reaches a microservice's MySQL database pod of a namespace."""

    host: AccessTemplate = "{service}.{namespace}.svc.cluster.local"
    port: int = Field(3306, ge=1, le=65535)
    database: AccessTemplate = "{database}"
    username: str = "opsbook"
    password_ssm: SsmName | None = None


class StatefulAccess(Model):
    rabbitmq: RabbitmqAccess = RabbitmqAccess()
    mysql: DatabaseAccess = DatabaseAccess()


class Velero(Model):
    """The cluster's Velero install and what its backups promise."""

    namespace: str = "velero"
    storage_location: str = "default"
    snapshot_location: str | None = "default"
    backup_ttl: str = Field("72h0m0s", pattern=r"^(\d+h)?(\d+m)?(\d+s)?$", min_length=2)
    rpo_minutes: float = Field(1500, gt=0, description="max age of a namespace's last successful backup")
    timeout_minutes: float = Field(30, gt=0, description="wait for a backup or restore this long")
    pod_ready_timeout_minutes: float = Field(10, gt=0)
    poll_seconds: float = Field(2, gt=0)


class Targets(Model):
    rto_minutes: float = Field(gt=0)
    rpo_minutes: float = Field(gt=0)


class SandboxSeed(Model):
    """Knobs for the sandbox twin only (lib/opsbook/sandbox reads them)."""

    omit: list[str] = Field([], description="seed pieces left out, e.g. 'nat_gateway/eu-central-1c'")


# --- cost (lib/opsbook/cost reads these) ---------------------------------------------------


class CostBudget(Model):
    """A monthly AWS Budgets cost budget the monthly review compares against."""

    name: str = Field(min_length=1)
    monthly_usd: float = Field(gt=0)


class SharedCostRule(Model):
    """A shared cost pool and how it is split across the team namespaces.

    The pool is the CUR lines matched by product code or usage type, plus the cost
    already allocated to the listed namespaces (e.g. the Datadog agent's pods).
    """

    name: str = Field(min_length=1)
    product_codes: list[str] = []
    usage_type_contains: list[str] = []
    namespaces: list[str] = []
    split: Literal["proportional", "even", "weights"] = "proportional"
    weights: dict[str, float] = Field({}, description="namespace -> weight, for split: weights")

    @model_validator(mode="after")
    def _pool_and_split(self) -> SharedCostRule:
        if not (self.product_codes or self.usage_type_contains or self.namespaces):
            raise ValueError(f"{self.name!r}: name what to share (product_codes, usage_type_contains or namespaces)")
        if (self.split == "weights") != bool(self.weights):
            raise ValueError(f"{self.name!r}: weights are needed exactly when split is 'weights'")
        if any(w < 0 for w in self.weights.values()) or (self.weights and sum(self.weights.values()) <= 0):
            raise ValueError(f"{self.name!r}: weights must be >= 0 with a positive sum")
        return self


def _default_shared() -> list[SharedCostRule]:
    return [
        SharedCostRule(name="eks-control-plane", product_codes=["AmazonEKS"]),
        SharedCostRule(name="load-balancer", product_codes=["AWSELB"]),
        SharedCostRule(name="nat-gateways", usage_type_contains=["NatGateway"], split="even"),
        SharedCostRule(name="datadog-agent", namespaces=["datadog"]),
        SharedCostRule(name="cluster-addons", namespaces=["kube-system", "ingress-nginx", "velero"]),
    ]


class CostAllocation(Model):
    """Kubernetes cost allocation (OpenCost's method: max(request, usage) of CPU and memory)."""

    cluster_tag: str = Field("eks:cluster-name", description="resource tag naming the cluster (active as a cost allocation tag)")
    # Only the ratio matters: it splits a node's cost into CPU and memory (OpenCost's defaults).
    cpu_core_hour_usd: float = Field(0.031611, gt=0)
    ram_gib_hour_usd: float = Field(0.004237, gt=0)
    idle: Literal["show", "share"] = "show"
    shared: list[SharedCostRule] = Field(default_factory=_default_shared)


class CurExport(Model):
    """Where the CUR 2.0 export (Data Exports, Parquet) lives: S3 or a local folder."""

    bucket: str | None = Field(None, description="default: buckets.cur")
    prefix: str = "cur"
    export_name: str = "cur2"
    local_path: str | None = Field(None, description="a folder holding <export>/data/BILLING_PERIOD=.../*.parquet")


class CostAthena(Model):
    database: str = "cur"
    table: str = "cur2"
    workgroup: str = "primary"
    output_location: str | None = Field(None, description="default: s3://<cur bucket>/athena-results/")
    poll_seconds: float = Field(0.5, gt=0)
    timeout_seconds: float = Field(600, gt=0)


class SmsVolume(Model):
    """Where SMS volume comes from: a CSV (date, region, sms_count), a constant, or Datadog;
    `auto` takes Datadog when its keys are configured, else the CSV, else the constant."""

    source: Literal["auto", "csv", "constant", "datadog"] = "auto"
    csv: str | None = Field(None, description="local path or s3:// URL")
    monthly_constant: float | None = Field(None, gt=0, description="SMS a month, for source: constant")

    @model_validator(mode="after")
    def _complete(self) -> SmsVolume:
        if self.source == "csv" and not self.csv:
            raise ValueError("csv: required when source is 'csv' (a path or s3:// URL)")
        return self


class CostForecast(Model):
    horizon_months: int = Field(3, ge=1, le=12)
    backtest_months: int = Field(3, ge=1, le=6)
    interval: float = Field(0.8, gt=0.5, lt=1.0)
    goal_mape: float = Field(0.12, gt=0)


class CostAnomaly(Model):
    baseline_days: int = Field(14, ge=7)
    threshold: float = Field(5.0, gt=0, description="robust z-score (median/MAD) above which a day is anomalous")
    min_impact_usd: float = Field(10.0, ge=0)
    lookback_days: int = Field(120, ge=14)


class NodeGroupScenario(Model):
    count: int | None = Field(None, ge=0)
    instance_type: str | None = None


class RegionScenario(Model):
    """What differs in a target region (unset: same as the actual estate)."""

    node_groups: dict[str, NodeGroupScenario] = {}
    rds_instance_class: str | None = Field(None, pattern=r"^db\.")
    nat_gateways: int | None = Field(None, ge=0)
    data_transfer_out_gb: float | None = Field(None, ge=0)
    datadog_hosts: int | None = Field(None, ge=0)


class RegionModel(Model):
    target_regions: list[Region] = []
    scenario: RegionScenario = RegionScenario()
    sensitivity: float = Field(0.2, gt=0, le=1, description="relative swing of each knob in the sensitivity chart")
    datadog_host_month_usd: float = Field(15.0, ge=0, description="Datadog Pro, annual billing, per host")


class CostSavings(Model):
    snapshot_max_age_days: int = Field(90, ge=1)
    idle_nat_gb_month: float = Field(50.0, ge=0)
    idle_nlb_lcu_month: float = Field(10.0, ge=0)
    node_request_target: float = Field(0.7, gt=0, le=1, description="requests/allocatable to aim for")
    savings_plan_target_coverage: float = Field(0.8, gt=0, le=1)
    savings_plan_discount: float = Field(0.28, gt=0, lt=1, description="Compute SP 1y no-upfront vs on-demand")


class CurGenerator(Model):
    """The sandbox's CUR generator (lib/opsbook/sandbox/cur.py)."""

    months: int = Field(13, ge=2, le=36)
    granularity: Literal["DAILY", "HOURLY"] = "DAILY"
    copies: int = Field(1, ge=1, description="replicas of the estate's resources (benchmarks)")
    seed: int = 7
    end_date: date | None = Field(None, description="day after the last one billed (default: today, UTC)")
    sms_per_day: float = Field(3_000_000, gt=0)
    sms_growth_per_month: float = Field(0.02, ge=-0.5, le=0.5)
    other_region_share: float = Field(0.12, ge=0, le=1, description="SMS share of each other region")
    tax_rate: float = Field(0.0, ge=0, le=1)
    credit_usd_month: float = Field(0.0, ge=0)
    credit_months: int = Field(0, ge=0)
    savings_plan_node_group: str | None = Field(None, description="node group covered by a Compute Savings Plan")
    anomaly_days_ago: int = Field(40, ge=2)
    anomaly_days: int = Field(3, ge=1)
    anomaly_factor: float = Field(12.0, gt=1)
    idle_nat_az: str | None = Field(None, description="AZ whose NAT gateway carries almost no traffic")


class Cost(Model):
    """Cost sources and the finance notebooks' knobs."""

    source: Literal["cur", "athena", "cost_explorer"] = "cur"
    metric: Literal["unblended", "amortized", "net_unblended"] = "amortized"
    cur: CurExport = CurExport()
    athena: CostAthena = CostAthena()
    budgets: list[CostBudget] = []
    allocation: CostAllocation = CostAllocation()
    sms_volume: SmsVolume = SmsVolume()
    forecast: CostForecast = CostForecast()
    anomaly: CostAnomaly = CostAnomaly()
    region_model: RegionModel = RegionModel()
    savings: CostSavings = CostSavings()
    generator: CurGenerator = CurGenerator()


class Params(Model):
    env: str
    production: bool = False
    account_id: str = Field(pattern=r"^\d{12}$")
    region: Region
    other_regions: list[Region] = []
    aws: AwsAccess = AwsAccess()
    network: Network
    eks: Eks
    rds: list[RdsInstance] = Field(min_length=1)
    buckets: Buckets
    lock_table: str
    kms: Kms
    zones: Zones
    certificates: list[Certificate] = []
    cert_min_days: int = Field(30, ge=1)
    ssm: Ssm
    trail_name: str
    datadog: Datadog = Datadog()
    namespaces: list[Namespace] = []
    stateful_access: StatefulAccess = StatefulAccess()
    velero: Velero = Velero()
    targets: Targets
    cost: Cost = Cost()
    sandbox: SandboxSeed | None = None
    # where it was read from (set by the loader, not the file)
    source: str = ""

    @model_validator(mode="after")
    def _azs_in_region(self) -> Params:
        for az in self.network.azs:
            if not (az.startswith(self.region) and len(az) == len(self.region) + 1):
                raise ValueError(f"network.azs: {az!r} is not an AZ of region {self.region}")
        return self

    def rds_instance(self, identifier: str | None = None) -> RdsInstance:
        if identifier is None:
            return self.rds[0]
        for instance in self.rds:
            if instance.identifier == identifier:
                return instance
        names = ", ".join(i.identifier for i in self.rds)
        raise ParamsError(f"{self.source}: no RDS instance {identifier!r} in rds (known: {names})")

    def namespace(self, name: str) -> Namespace:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        known = ", ".join(n.name for n in self.namespaces)
        raise ParamsError(f"{self.source}: no namespace {name!r} in namespaces (known: {known})")


# --- loading -------------------------------------------------------------------------------


def env_names() -> list[str]:
    """Environments in params/ (base-*.yaml files are shared layers, not environments)."""
    return sorted(p.stem for p in params_dir().glob("*.yaml") if not p.stem.startswith("base-"))


def resolve_file(env: str, relative_to: Path | None = None) -> Path:
    """An env name (params/<env>.yaml) or a path to a YAML file."""
    candidates = []
    if env.endswith((".yaml", ".yml")) or "/" in env:
        path = Path(env)
        if not path.is_absolute() and relative_to is not None:
            candidates.append(relative_to / path)
        candidates.append(path)
    else:
        if relative_to is not None:
            candidates.append(relative_to / f"{env}.yaml")
        candidates.append(params_dir() / f"{env}.yaml")
    for path in candidates:
        if path.is_file():
            return path.resolve()
    known = ", ".join(env_names())
    raise ParamsError(f"no params for environment {env!r}: looked for {candidates[-1]} (known envs: {known})")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParamsError(f"{path}: YAML syntax error{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of params at the top level, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_merged(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], tuple[Path, ...]]:
    """The file's data with its `extends:` chain merged in, and the chain of files read."""
    if path in _chain:
        loop = " -> ".join(str(p) for p in (*_chain, path))
        raise ParamsError(f"{_chain[0]}: field 'extends': expected a chain without loops, got {loop}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    chain = (*_chain, path)
    if parent is None:
        return data, chain
    if not isinstance(parent, str):
        raise ParamsError(f"{path}: field 'extends': expected an env name or a file path, got {parent!r}")
    try:
        parent_path = resolve_file(parent, relative_to=path.parent)
    except ParamsError as exc:
        raise ParamsError(f"{path}: field 'extends': {exc}") from None
    base, chain = read_merged(parent_path, chain)
    return _merge(base, data), chain


_FIELD_PREFIX = re.compile(r"^([a-z_][\w.]*): (.*)$", re.DOTALL)


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"field '{'.'.join(loc)}': unknown key (not part of the params schema; check its spelling)"
    if kind == "missing":
        return f"field '{'.'.join(loc)}': required but missing"
    msg = error["msg"].removeprefix("Value error, ")
    # model-level validators name the sub-field they judge as "sub.field: message"
    if match := _FIELD_PREFIX.match(msg):
        loc, msg = [*loc, match.group(1)], match.group(2)
    field = ".".join(loc) or "(top level)"
    got = error.get("input")
    if kind != "value_error" and not isinstance(got, dict | list):
        return f"field '{field}': {msg[0].lower() + msg[1:]}, got {got!r}"
    return f"field '{field}': {msg}"


def load_params(env: str | os.PathLike[str]) -> Params:
    """Validate params for an env name or a file; raise ParamsError naming file and field."""
    path = resolve_file(str(env))
    data, _ = read_merged(path)
    data.setdefault("env", path.stem)
    try:
        return Params.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ParamsError(f"{path}: invalid params:\n  " + "\n  ".join(lines)) from None
