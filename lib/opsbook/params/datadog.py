"""Datadog: site and keys, wanted monitors, metric queries, plan prices (lib/opsbook/datadog reads these)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from opsbook.params.types import Model, SsmName

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
