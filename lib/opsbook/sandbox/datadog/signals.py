"""The sandbox estate's signals as Datadog would see them: deterministic functions of time.

Everything follows one daily SMS pattern (Warsaw business hours, quieter weekends): SMS
sent per second, the node count the cluster autoscaler keeps (each node group between
its desired and max size, changing in 10-minute steps), containers, API latency,
RabbitMQ queue depth and RDS CPU. One incident window, fixed when the sandbox starts,
overlays a database saturation: RDS CPU pegged, latency up, SMS throughput down and the
sms-sender queue backing up. The same instant always gives the same value.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from opsbook.params import Params

WARSAW = ZoneInfo("Europe/Warsaw")
PEAK_SMS_PER_SECOND = 100.0
SLOT = 600  # the autoscaler's step: node counts change at most every 10 minutes
INCIDENT_MINUTES = 45
# containers every node runs whatever the load: datadog agent (agent, trace, process),
# kube-proxy, aws-node (2), ebs-csi-node (3)
SYSTEM_CONTAINERS_PER_NODE = 9
QUEUES = {"sms-sender": 0.6, "sms-gateway": 0.3, "billing": 0.1}


def noise(key: str, t: float, step: int = 60) -> float:
    """A deterministic value in [-1, 1] for (key, time step): jitter without randomness."""
    return zlib.crc32(f"{key}:{int(t // step)}".encode()) / 0x7FFFFFFF - 1.0


@lru_cache(maxsize=65536)
def _traffic_at_minute(minute: int) -> float:
    local = datetime.fromtimestamp(minute * 60, WARSAW)
    hour = local.hour + local.minute / 60
    day = math.sin(math.pi * (hour - 6) / 16) if 6 <= hour <= 22 else 0.0
    level = 0.08 + 0.92 * max(day, 0.0) ** 1.5
    return level * (0.55 if local.weekday() >= 5 else 1.0)


def traffic(t: float) -> float:
    """Relative SMS traffic in [0, 1] at epoch second t (the daily pattern, per minute)."""
    return _traffic_at_minute(int(t // 60))


@dataclass(frozen=True)
class Series:
    """One time series of a metric: its tags, its kind and its value at an instant."""

    tags: dict[str, str]
    value: Callable[[float], float]
    kind: str = "gauge"  # "rate": a per-second value that as_count() integrates


@dataclass
class Estate:
    """The sandbox estate's signals, built from its params and the incident's start."""

    params: Params
    incident_start: float
    groups: list[tuple[str, int, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.groups = [(g.name, g.desired_size, g.max_size) for g in self.params.eks.node_groups]

    # --- the incident -----------------------------------------------------------------

    @property
    def incident_end(self) -> float:
        return self.incident_start + INCIDENT_MINUTES * 60

    def incident(self, t: float) -> float:
        """How far into the incident t is: 0 outside, rising 0..1 across the window."""
        if self.incident_start <= t < self.incident_end:
            return (t - self.incident_start) / (self.incident_end - self.incident_start)
        return 0.0

    # --- the signals ------------------------------------------------------------------

    def sms_rate(self, t: float) -> float:
        rate = PEAK_SMS_PER_SECOND * traffic(t) * (1 + 0.03 * noise("sms", t))
        return rate * 0.25 if self.incident(t) else rate

    def nodes(self, group: str, t: float) -> int:
        """Nodes the autoscaler keeps in `group` during the 10-minute slot holding t."""
        for name, desired, maximum in self.groups:
            if name == group:
                return desired + round((maximum - desired) * traffic(t - t % SLOT))
        raise KeyError(group)

    def total_nodes(self, t: float) -> int:
        return sum(self.nodes(name, t) for name, _, _ in self.groups)

    def containers(self, t: float) -> int:
        load = traffic(t - t % SLOT)
        count = SYSTEM_CONTAINERS_PER_NODE * self.total_nodes(t)
        for namespace in self.params.namespaces:
            # each deployment: app + proxy sidecar, 2..6 replicas with the load
            count += len(namespace.deployments) * 2 * (2 + round(4 * load))
            # each stateful workload: server + metrics exporter per replica
            count += sum(2 * s.replicas for s in namespace.stateful)
        return count

    def latency(self, t: float) -> float:
        base = 0.12 + 0.08 * traffic(t) + 0.01 * noise("latency", t)
        return base + 2.3 * math.sqrt(self.incident(t)) if self.incident(t) else base

    def queue_depth(self, queue: str, t: float) -> float:
        share = QUEUES[queue]
        depth = share * (30 + 400 * traffic(t)) * (1 + 0.1 * noise(f"queue:{queue}", t))
        if queue == "sms-sender":
            if self.incident(t):
                depth += 24000 * self.incident(t)
            elif 0 <= t - self.incident_end < 900:  # drains within 15 minutes after
                depth += 24000 * (1 - (t - self.incident_end) / 900)
        return max(depth, 0.0)

    def consumers(self, t: float) -> float:
        return 2 + round(4 * traffic(t - t % SLOT))

    def rds_cpu(self, t: float) -> float:
        if self.incident(t):
            return min(99.0, 94 + 3 * noise("rds-incident", t))
        return 12 + 45 * traffic(t) + 2 * noise("rds", t)

    # --- as metrics ---------------------------------------------------------------------

    def base_tags(self) -> dict[str, str]:
        return {"env": self.params.env, "kube_cluster_name": self.params.eks.cluster_name}

    def series(self, metric: str) -> list[Series]:
        """The series of a metric the estate emits; [] for a metric it does not know."""
        base = self.base_tags()
        if metric == "smsapi.sms.sent":
            return [Series({**base, "service": "sms-sender"}, self.sms_rate, kind="rate")]
        if metric == "trace.http.request.duration":
            return [Series({**base, "service": "sms-gateway"}, self.latency)]
        if metric == "rabbitmq.queue.messages":
            return [
                Series({**base, "rabbitmq_queue": q}, lambda t, q=q: self.queue_depth(q, t)) for q in QUEUES
            ]
        if metric == "rabbitmq.queue.consumers":
            return [Series({**base, "rabbitmq_queue": q}, self.consumers) for q in QUEUES]
        if metric == "kubernetes_state.node.count":
            return [
                Series({**base, "nodegroup": name}, lambda t, n=name: float(self.nodes(n, t)))
                for name, _, _ in self.groups
            ]
        if metric == "aws.rds.cpuutilization":
            return [
                Series({"env": self.params.env, "dbinstanceidentifier": rds.identifier, "region": self.params.region},
                       self.rds_cpu)
                for rds in self.params.rds
            ]
        return []


def incident_start_for(started_at: datetime) -> float:
    """The seeded incident: 20 past the hour, six hours before the sandbox started."""
    hour = started_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour.timestamp() - 6 * 3600 + 20 * 60
