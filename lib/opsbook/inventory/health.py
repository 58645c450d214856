"""The health check: read the estate through the service wrappers, check it against params.

`run_health_check(env)` gathers every section's models (in parallel threads: each is a
handful of read-only API calls), turns a section that could not be read into a failing
row rather than a crash (one unreachable API must not hide the other checks), and runs
the checks. `verdict(report, strict)` fails the run when strict and a check fails.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.exceptions
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from opsbook.clients import Env
from opsbook.errors import CredentialsError, OpsbookError, UsageError
from opsbook.inventory import checks
from opsbook.inventory.acm import Certificate, collect_certificates
from opsbook.inventory.checks import Check, Thresholds
from opsbook.inventory.cloudtrail import Trail, collect_trail
from opsbook.inventory.dynamodb import Table, collect_lock_table
from opsbook.inventory.eks import Cluster, collect_cluster
from opsbook.inventory.kms import KmsKey, collect_kms_keys
from opsbook.inventory.kube import HelmRelease, KubeNode, collect_helm_releases, collect_nodes
from opsbook.inventory.network import Network, collect_network
from opsbook.inventory.rds import DbInstance, collect_db_instances
from opsbook.inventory.s3 import Bucket, collect_buckets
from opsbook.inventory.ssm import ParameterInfo, collect_parameters
from opsbook.params import Params

__all__ = [
    "Estate",
    "HealthCheckFailed",
    "HealthReport",
    "Thresholds",
    "collect_estate",
    "run_health_check",
    "verdict",
]

SECTION_TITLES = {
    checks.NETWORK: "Network: VPC, NAT gateways, VPN",
    checks.EKS: "EKS and Kubernetes: cluster, node groups, nodes, add-ons",
    checks.RDS: "RDS",
    checks.STORAGE: "Terraform state and storage: S3, DynamoDB lock table",
    checks.SECURITY: "Keys, audit, certificates and parameters",
}
MAX_ERROR = 300


class HealthCheckFailed(OpsbookError):
    """strict was set and at least one check failed."""


class Estate(BaseModel):
    """Everything the checks read; a field named in `errors` could not be read."""

    model_config = ConfigDict(frozen=True)

    network: Network | None = None
    cluster: Cluster | None = None
    nodes: list[KubeNode] = []
    helm_releases: list[HelmRelease] = []
    db_instances: dict[str, DbInstance | None] = {}
    buckets: list[Bucket] = []
    lock_table: Table | None = None
    kms_keys: list[KmsKey] = []
    trail: Trail | None = None
    certificates: list[Certificate] = []
    ssm_parameters: list[ParameterInfo] = []
    errors: dict[str, str] = {}


COLLECTORS: dict[str, Callable[[Env], Any]] = {
    "network": collect_network,
    "cluster": collect_cluster,
    "nodes": collect_nodes,
    "helm_releases": lambda env: collect_helm_releases(env, [a.namespace for a in env.params.eks.addons]),
    "db_instances": collect_db_instances,
    "buckets": collect_buckets,
    "lock_table": collect_lock_table,
    "kms_keys": collect_kms_keys,
    "trail": collect_trail,
    "certificates": collect_certificates,
    "ssm_parameters": collect_parameters,
}


def _describe_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status is not None and hasattr(exc, "reason"):  # kubernetes ApiException: str() holds headers
        text = f"Kubernetes API answered HTTP {status} {exc.reason}"
    else:
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OpsbookError) else str(exc)
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _collect(env: Env, field: str) -> tuple[str, Any, str | None]:
    try:
        return field, COLLECTORS[field](env), None
    except (CredentialsError, botocore.exceptions.NoCredentialsError):
        raise
    except Exception as exc:  # noqa: BLE001 - a section that cannot be read becomes a failing row
        return field, None, _describe_error(exc)


def collect_estate(env: Env) -> Estate:
    """Read every section; an unreadable one is named in `errors` with why."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=6, thread_name_prefix="health") as pool:
        for field, value, error in pool.map(lambda f: _collect(env, f), COLLECTORS):
            if error is None:
                values[field] = value
            else:
                errors[field] = error
    return Estate(**values, errors=errors)


@dataclass(frozen=True)
class Rule:
    """Checks of one kind: the Estate fields they read, and the row standing in if unreadable."""

    section: str
    check: str
    resource: Callable[[Params], str]
    needs: tuple[str, ...]
    run: Callable[[Estate, Params, datetime, Thresholds], list[Check]]


RULES: list[Rule] = [
    Rule(checks.NETWORK, "vpc", lambda p: p.network.vpc_cidr, ("network",),
         lambda e, p, now, t: checks.check_vpc(e.network, p)),
    Rule(checks.NETWORK, "vpc.nat_gateway", lambda p: p.network.vpc_cidr, ("network",),
         lambda e, p, now, t: checks.check_nat_gateways(e.network, p)),
    Rule(checks.NETWORK, "vpn.connection", lambda p: p.network.vpn.customer_gateway_ip, ("network",),
         lambda e, p, now, t: checks.check_vpn(e.network, p)),
    Rule(checks.EKS, "eks.cluster", lambda p: p.eks.cluster_name, ("cluster",),
         lambda e, p, now, t: checks.check_cluster(e.cluster, p)),
    Rule(checks.EKS, "k8s.nodes", lambda p: p.eks.cluster_name, ("nodes",),
         lambda e, p, now, t: checks.check_nodes(e.nodes, p)),
    Rule(checks.EKS, "helm.release", lambda p: p.eks.cluster_name, ("helm_releases",),
         lambda e, p, now, t: checks.check_addons(e.helm_releases, p)),
    Rule(checks.RDS, "rds.instance", lambda p: ", ".join(i.identifier for i in p.rds), ("db_instances", "kms_keys"),
         lambda e, p, now, t: checks.check_rds(e.db_instances, e.kms_keys, p, now, t)),
    Rule(checks.STORAGE, "s3.bucket", lambda p: p.buckets.terraform_state, ("buckets", "kms_keys"),
         lambda e, p, now, t: checks.check_buckets(e.buckets, e.kms_keys, p)),
    Rule(checks.STORAGE, "dynamodb.lock_table", lambda p: p.lock_table, ("lock_table",),
         lambda e, p, now, t: checks.check_lock_table(e.lock_table, p)),
    Rule(checks.SECURITY, "kms.rotation", lambda p: ", ".join(p.kms.model_dump().values()), ("kms_keys",),
         lambda e, p, now, t: checks.check_kms(e.kms_keys, p)),
    Rule(checks.SECURITY, "cloudtrail.logging", lambda p: p.trail_name, ("trail",),
         lambda e, p, now, t: checks.check_trail(e.trail, p)),
    Rule(checks.SECURITY, "acm.expiry", lambda p: ", ".join(c.domain for c in p.certificates), ("certificates",),
         lambda e, p, now, t: checks.check_certificates(e.certificates, p, now, t)),
    Rule(checks.SECURITY, "ssm.parameter", lambda p: p.ssm.prefix, ("ssm_parameters",),
         lambda e, p, now, t: checks.check_ssm(e.ssm_parameters, p)),
]  # fmt: skip


def check_estate(
    estate: Estate, params: Params, now: datetime, thresholds: Thresholds | None = None
) -> list[Check]:
    """Every rule's rows, in a fixed order; unreadable inputs give one failing row per rule."""
    thresholds = thresholds or Thresholds()
    rows: list[Check] = []
    for rule in RULES:
        errors = [f"{field}: {estate.errors[field]}" for field in rule.needs if field in estate.errors]
        if errors:
            rows.append(checks.unreadable(rule.section, rule.check, rule.resource(params), "; ".join(errors)))
        else:
            rows.extend(rule.run(estate, params, now, thresholds))
    return rows


class HealthReport(BaseModel):
    """The rows of one health check run, with views for the notebook and the run record."""

    model_config = ConfigDict(frozen=True)

    env: str
    checked_at: datetime
    checks: list[Check]

    def table(self, section: str | None = None) -> pd.DataFrame:
        """The rows (of one section) as a table: check, resource, status, reason."""
        rows = [c.model_dump() for c in self.checks if section is None or c.section == section]
        table = pd.DataFrame(rows, columns=["section", "check", "resource", "status", "reason"])
        return table.drop(columns="section") if section else table

    def summary(self) -> dict[str, int]:
        counts = {"pass": 0, "warn": 0, "fail": 0}
        for c in self.checks:
            counts[c.status] += 1
        return counts

    def by_status(self) -> dict[str, list[str]]:
        """Each check's name (`check[resource]`) under its status."""
        grouped: dict[str, list[str]] = {"pass": [], "warn": [], "fail": []}
        for c in self.checks:
            grouped[c.status].append(c.name)
        return grouped

    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def records(self) -> list[dict[str, str]]:
        return [c.model_dump() for c in self.checks]


def make_thresholds(**knobs: Any) -> Thresholds:
    """Thresholds from notebook parameters; a bad value is a UsageError naming the parameter."""
    try:
        return Thresholds(**knobs)
    except ValidationError as exc:
        problems = [
            f"parameter {e['loc'][0]}: {e['msg'].lower()}, got {e.get('input')!r}" for e in exc.errors()
        ]
        raise UsageError("; ".join(problems)) from None


def run_health_check(env: Env, thresholds: Thresholds | None = None, **knobs: Any) -> HealthReport:
    """Read the estate of `env` and check it against its params (read-only).

    `knobs` are Thresholds fields given one by one (as notebook parameters are).
    """
    if knobs:
        thresholds = make_thresholds(**{**(thresholds.model_dump() if thresholds else {}), **knobs})
    env.check_credentials()  # no credentials: stop here with how to provide them
    estate = collect_estate(env)
    now = env.now()
    return HealthReport(
        env=env.name, checked_at=now, checks=check_estate(estate, env.params, now, thresholds)
    )


def verdict(report: HealthReport, strict: bool = False) -> str:
    """One line for the run; raises HealthCheckFailed listing the failures when strict."""
    counts = report.summary()
    line = f"{report.env}: {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail"
    failing = report.failing()
    if not failing:
        return line
    listing = "\n".join(f"  {c.name}: {c.reason}" for c in failing)
    if strict:
        raise HealthCheckFailed(
            f"health check of {report.env} failed ({counts['fail']} failing):\n{listing}\n"
            "Fix the estate (or its params) and run again; strict=False reports without failing the run."
        )
    return f"{line}\nfailing:\n{listing}"
