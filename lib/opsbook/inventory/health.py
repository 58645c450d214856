"""The health check: read the estate through the service wrappers, check it against params.

`run_health_check(env)` gathers every section's models through the collectors registered
in `inventory.registry` (in parallel threads: each is a handful of read-only API calls), turns a section that could not be read into a failing
row rather than a crash (one unreachable API must not hide the other checks), and runs
the checks. `verdict(report, strict)` fails the run when strict and a check fails.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import botocore.exceptions
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from opsbook.clients import Env
from opsbook.errors import CredentialsError, OpsbookError, UsageError
from opsbook.inventory import checks
from opsbook.inventory.checks import Check, Thresholds
from opsbook.inventory.registry import CHECKS, COLLECTORS, Collector
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


class Estate:
    """What the collectors read: one value per section (`estate.network`), and `errors` naming
    the sections that could not be read, with why."""

    def __init__(self, errors: dict[str, str] | None = None, **sections: Any) -> None:
        self.sections = sections
        self.errors = dict(errors or {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None


def _describe_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status is not None and hasattr(exc, "reason"):  # kubernetes ApiException: str() holds headers
        text = f"Kubernetes API answered HTTP {status} {exc.reason}"
    else:
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OpsbookError) else exc.one_line()
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _collect(env: Env, field: str, collect: Collector) -> tuple[str, Any, str | None]:
    try:
        return field, collect(env), None
    except (CredentialsError, botocore.exceptions.NoCredentialsError):
        raise
    except Exception as exc:  # noqa: BLE001 - a section that cannot be read becomes a failing row
        return field, None, _describe_error(exc)


def collect_estate(env: Env) -> Estate:
    """Read every section; an unreadable one is named in `errors` with why."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=6, thread_name_prefix="health") as pool:
        for field, value, error in pool.map(lambda item: _collect(env, *item), COLLECTORS.items()):
            if error is None:
                values[field] = value
            else:
                errors[field] = error
    return Estate(**values, errors=errors)


def check_estate(
    estate: Estate, params: Params, now: datetime, thresholds: Thresholds | None = None
) -> list[Check]:
    """Every registered check's rows, in a fixed order; unreadable inputs give one failing row per check."""
    thresholds = thresholds or Thresholds()
    rows: list[Check] = []
    for _, rule in CHECKS.items():
        errors = [f"{field}: {estate.errors.get(field, 'not collected')}" for field in rule.needs
                  if field in estate.errors or field not in estate.sections]
        if errors:
            rows.append(checks.unreadable(rule.section, rule.check, rule.resource(params), "; ".join(errors)))
        else:
            rows.extend(rule.run(estate.sections, params=params, now=now, thresholds=thresholds))
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
            f"health check of {report.env} failed ({counts['fail']} failing):\n{listing}",
            remedy="fix the estate (or its params) and run again; strict=False reports without failing the run",
        )
    return f"{line}\nfailing:\n{listing}"
