"""The usage endpoints: what Datadog metered for the estate's agent, hour by hour.

Hosts per hour are the most nodes seen in the hour (every node runs the agent);
containers per hour are the hour's average. Custom metrics come from a catalogue whose
cardinality grows with the nodes and pods. The month summary applies Datadog's billing
rules (hosts and containers: the top of the lower 99% of hours; custom metrics: the
hourly average). Only hours that have begun are reported, as by the real API.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opsbook.sandbox.datadog.signals import SLOT, Estate

ORG_NAME = "SMSAPI"
PUBLIC_ID = "smsapi0001"


@dataclass(frozen=True)
class MetricFamily:
    """A metric the agent reports, and how many distinct series (tag sets) it has."""

    name: str
    category: str  # "custom" (billed above the allotment) or "standard"
    fixed: int  # series whatever the cluster size
    per_node: int  # series per node (host-tagged)


CATALOGUE = (
    # operator x status x route x customer tier x service
    MetricFamily("smsapi.sms.sent", "custom", 480, 0),
    # histograms: five series (avg, count, max, median, 95p) per tag set
    MetricFamily("smsapi.sms.delivery_time", "custom", 600, 0),
    MetricFamily("smsapi.api.request.duration", "custom", 1200, 0),  # endpoint x status x method
    MetricFamily("smsapi.billing.invoice.generated", "custom", 12, 0),
    MetricFamily("rabbitmq.queue.messages", "custom", 24, 0),  # OpenMetrics-scraped: custom
    MetricFamily("rabbitmq.queue.consumers", "custom", 24, 0),
    MetricFamily("jvm.gc.pause_time", "custom", 0, 18),  # per pod, pods follow the nodes
    MetricFamily("jvm.heap_memory", "custom", 0, 12),
    MetricFamily("go_memstats_alloc_bytes", "custom", 0, 6),
    MetricFamily("system.cpu.user", "standard", 0, 4),
    MetricFamily("kubernetes.cpu.usage.total", "standard", 0, 30),
    MetricFamily("kubernetes_state.node.count", "standard", 2, 0),
    MetricFamily("aws.rds.cpuutilization", "standard", 1, 0),
)


def parse_time(value: str, what: str) -> datetime:
    """ISO-8601 as the usage API takes it: [YYYY-MM], [YYYY-MM-DDThh] or a full date-time."""
    text = value.strip().replace("Z", "+00:00")
    if len(text) == 7:  # YYYY-MM
        text += "-01"
    if len(text) == 13:  # YYYY-MM-DDThh
        text += ":00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Invalid {what}: {value!r} is not an ISO-8601 date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    return month_start(month_start(moment) + timedelta(days=32))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class Usage:
    def __init__(self, estate: Estate) -> None:
        self.estate = estate

    def hours(self, start: datetime, end: datetime, now: datetime) -> list[datetime]:
        hour = start.replace(minute=0, second=0, microsecond=0)
        out = []
        while hour < end and hour <= now:
            out.append(hour)
            hour += timedelta(hours=1)
        return out

    def host_count(self, hour: datetime) -> int:
        t0 = hour.timestamp()
        return max(self.estate.total_nodes(t0 + k * SLOT) for k in range(3600 // SLOT))

    def container_count(self, hour: datetime) -> int:
        t0 = hour.timestamp()
        return round(statistics.fmean(self.estate.containers(t0 + k * SLOT) for k in range(3600 // SLOT)))

    # --- /api/v1/usage/hosts ------------------------------------------------------------

    def hosts(self, start: datetime, end: datetime, now: datetime) -> dict:
        rows = []
        for hour in self.hours(start, end, now):
            hosts = self.host_count(hour)
            rows.append({
                "hour": iso(hour), "host_count": hosts, "agent_host_count": hosts,
                "container_count": self.container_count(hour), "aws_host_count": 0, "apm_host_count": 0,
                "azure_host_count": 0, "gcp_host_count": 0, "heroku_host_count": 0,
                "opentelemetry_host_count": 0, "vsphere_host_count": 0,
                "org_name": ORG_NAME, "public_id": PUBLIC_ID,
            })
        return {"usage": rows}

    # --- /api/v1/usage/top_avg_metrics ----------------------------------------------------

    def top_avg_metrics(self, start: datetime, end: datetime, now: datetime, names: list[str]) -> list[dict]:
        """Every metric family's average and highest hourly series count, largest first."""
        hosts = [self.host_count(h) for h in self.hours(start, end, now)] or [0]
        rows = [
            {
                "metric_name": family.name, "metric_category": family.category,
                "avg_metric_hour": round(family.fixed + family.per_node * statistics.fmean(hosts)),
                "max_metric_hour": family.fixed + family.per_node * max(hosts),
            }
            for family in CATALOGUE
            if not names or family.name in names
        ]
        rows.sort(key=lambda r: (-r["avg_metric_hour"], r["metric_name"]))
        return rows

    # --- /api/v1/usage/summary --------------------------------------------------------------

    def month_summary(self, month: datetime, now: datetime) -> dict:
        hours = self.hours(month, next_month(month), now)
        hosts = [self.host_count(h) for h in hours]
        containers = [self.container_count(h) for h in hours]
        custom = sum(r["avg_metric_hour"] for r in self.top_avg_metrics(month, next_month(month), now, [])
                     if r["metric_category"] == "custom")
        host_top99p = top99p(hosts)
        return {
            "date": iso(month), "host_top99p": host_top99p, "agent_host_top99p": host_top99p,
            "infra_host_top99p": host_top99p, "aws_host_top99p": 0, "apm_host_top99p": 0,
            "container_avg": round(statistics.fmean(containers)) if containers else 0,
            "container_hwm": top99p(containers), "custom_ts_avg": custom if hours else 0,
        }


def top99p(counts: list[int]) -> int:
    """Datadog's high-water mark: the highest hour once the top 1% of hours are left out."""
    if not counts:
        return 0
    kept = sorted(counts)[: len(counts) - len(counts) // 100]
    return kept[-1]
