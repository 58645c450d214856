"""Monitors, events and downtimes the emulator holds, with the API's validation rules.

Validation follows what the real API answers with 400: the type must be a monitor type,
a metric monitor's query must parse and end with a comparison whose threshold equals
`options.thresholds.critical`, the warning threshold must sit on the right side of the
critical one, priority is 1..5. Errors come back as a list of messages.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

from opsbook.sandbox.datadog.metrics import Query, QueryError
from opsbook.sandbox.datadog.signals import SLOT, Estate

MONITOR_TYPES = {
    "composite", "event alert", "log alert", "metric alert", "process alert", "query alert", "rum alert",
    "service check", "synthetics alert", "trace-analytics alert", "slo alert", "event-v2 alert",
    "audit alert", "ci-pipelines alert", "ci-tests alert", "error-tracking alert", "database-monitoring alert",
    "network-performance alert", "cost alert",
}
METRIC_MONITOR = re.compile(
    r"^(?P<fn>avg|sum|min|max|change|pct_change|percentile)\((?P<window>[^)]*(?:\([^)]*\))?[^)]*)\):"
    r"(?P<metric_query>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<threshold>-?\d+(?:\.\d+)?(?:e\d+)?)\s*$"
)
EVENT_ALERT_TYPES = {"error", "warning", "info", "success", "user_update", "recommendation", "snapshot"}
CREATOR = {"email": "platform@smsapi.example", "handle": "platform@smsapi.example", "name": "Platform team"}
EVENT_URL = "/event/event?id={}"


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def monitor_errors(body: Any) -> list[str]:
    """What the API would reject in a monitor body ([] when valid)."""
    if not isinstance(body, dict):
        return ["Invalid JSON: the body must be a JSON object"]
    errors = []
    mtype, query = body.get("type"), body.get("query")
    if mtype is None:
        errors.append("The value provided for parameter 'type' is invalid: type is required")
    elif mtype not in MONITOR_TYPES:
        errors.append(f"Invalid monitor type: {mtype!r}")
    if not isinstance(query, str) or not query.strip():
        errors.append("The value provided for parameter 'query' is invalid: query is required")
    priority = body.get("priority")
    if priority is not None and (not isinstance(priority, int) or not 1 <= priority <= 5):
        errors.append(f"Invalid priority {priority!r}: priority must be an integer between 1 and 5")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        errors.append("Invalid tags: expected a list of non-empty strings")
    if errors or mtype not in ("metric alert", "query alert"):
        return errors
    return _metric_monitor_errors(query, (body.get("options") or {}).get("thresholds") or {})


def _metric_monitor_errors(query: str, thresholds: dict) -> list[str]:
    match = METRIC_MONITOR.match(query.strip())
    if not match:
        return [f"The value provided for parameter 'query' is invalid: {query!r} must be "
                "<time aggr>(<window>):<metric query> <comparator> <threshold>"]
    try:
        Query.parse(match["metric_query"])
    except QueryError as exc:
        return [f"The value provided for parameter 'query' is invalid: {exc}"]
    op, threshold = match["op"], float(match["threshold"])
    critical, warning = thresholds.get("critical"), thresholds.get("warning")
    if critical is None:
        return [f"Alert threshold (critical) is required; the query uses {threshold:g}"]
    if float(critical) != threshold:
        return [f"Alert threshold ({float(critical):g}) does not match that used in the query ({threshold:g})."]
    if warning is not None:
        above = op in (">", ">=")
        if (above and warning >= critical) or (not above and warning <= critical):
            relation = "less" if above else "greater"
            return [f"Warning threshold ({float(warning):g}) must be {relation} than the alert threshold "
                    f"({float(critical):g}) with {op} comparison."]
    return []


class Store:
    """The emulator's state; every method is safe to call from the server's threads."""

    def __init__(self, estate: Estate, now: float) -> None:
        self.estate = estate
        self.lock = threading.Lock()
        self.monitors: dict[int, dict] = {}
        self.events: dict[int, dict] = {}
        self.downtimes: dict[int, dict] = {}
        self._next = {"monitor": 1_000_001, "event": 5_000_000_001, "downtime": 300_000_001}
        self._seed(now)

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value

    # --- monitors -------------------------------------------------------------------------

    def create_monitor(self, body: dict, now: float) -> dict:
        options = {"notify_audit": False, "notify_no_data": False, "include_tags": True, "new_host_delay": 300,
                   "silenced": {}, **(body.get("options") or {})}
        with self.lock:
            monitor_id = self._id("monitor")
            monitor = {
                "id": monitor_id, "name": body.get("name") or f"Monitor {monitor_id}", "type": body["type"],
                "query": body["query"].strip(), "message": body.get("message", ""), "tags": list(body.get("tags", [])),
                "options": options, "priority": body.get("priority"), "multi": " by " in body["query"],
                "created": rfc3339(now), "modified": rfc3339(now), "deleted": None, "creator": CREATOR,
                "overall_state": "No Data", "restricted_roles": None,
            }
            self.monitors[monitor_id] = monitor
            return dict(monitor)

    def update_monitor(self, monitor_id: int, body: dict, now: float) -> tuple[dict | None, list[str]]:
        with self.lock:
            current = self.monitors.get(monitor_id)
            if current is None:
                return None, []
            merged = {**current, **{k: v for k, v in body.items() if k in
                                    ("name", "type", "query", "message", "tags", "options", "priority")}}
            errors = monitor_errors(merged)
            if errors:
                return None, errors
            merged["modified"] = rfc3339(now)
            merged["multi"] = " by " in merged["query"]
            self.monitors[monitor_id] = merged
            return dict(merged), []

    def list_monitors(self, name: str | None, monitor_tags: list[str], page: int | None, page_size: int) -> list[dict]:
        with self.lock:
            found = [
                dict(m) for m in sorted(self.monitors.values(), key=lambda m: m["id"])
                if (not name or name.lower() in m["name"].lower()) and all(t in m["tags"] for t in monitor_tags)
            ]
        if page is not None:
            found = found[page * page_size:(page + 1) * page_size]
        return found

    # --- events ---------------------------------------------------------------------------

    def add_event(self, body: dict, now: float) -> dict:
        with self.lock:
            event_id = self._id("event")
            event = {
                "id": event_id, "id_str": str(event_id), "title": body["title"], "text": body["text"],
                "date_happened": int(body.get("date_happened") or now), "tags": list(body.get("tags", [])),
                "alert_type": body.get("alert_type", "info"), "priority": body.get("priority", "normal"),
                "source_type_name": body.get("source_type_name", "my apps"), "url": EVENT_URL.format(event_id),
            }
            for key in ("host", "device_name"):
                if body.get(key):
                    event[key] = body[key]
            self.events[event_id] = event
            return dict(event)

    def list_events(self, start: int, end: int, sources: list[str], tags: list[str]) -> list[dict]:
        with self.lock:
            stored = list(self.events.values())
        found = [
            e for e in stored + self.autoscaler_events(start, end)
            if start <= e["date_happened"] <= end
            and (not sources or e["source_type_name"].lower() in sources)
            and all(t in e["tags"] for t in tags)
        ]
        return sorted(found, key=lambda e: (-e["date_happened"], -e["id"]))

    def autoscaler_events(self, start: int, end: int) -> list[dict]:
        """What the agent's Kubernetes event collection reports as the autoscaler resizes."""
        estate, out = self.estate, []
        first = max(start - start % SLOT, int(estate.incident_start) - 40 * 86400)
        for slot in range(first, end + 1, SLOT):
            for index, (group, _, _) in enumerate(estate.groups):
                before, after = estate.nodes(group, slot - SLOT), estate.nodes(group, slot)
                if before == after or not start <= slot <= end:
                    continue
                verb = "TriggeredScaleUp" if after > before else "ScaleDown"
                event_id = 9_000_000_000_000 + (slot // SLOT) * 10 + index
                out.append({
                    "id": event_id, "id_str": str(event_id), "date_happened": slot,
                    "title": f"Events from the cluster-autoscaler: {verb} node group {group} {before} -> {after}",
                    "text": f"cluster-autoscaler resized node group {group} of {estate.params.eks.cluster_name} "
                            f"from {before} to {after} nodes",
                    "tags": [f"kube_cluster_name:{estate.params.eks.cluster_name}", "source:kubernetes",
                             "kube_namespace:kube-system", "kube_deployment:cluster-autoscaler", f"nodegroup:{group}"],
                    "alert_type": "info", "priority": "low", "source_type_name": "kubernetes",
                    "url": EVENT_URL.format(event_id),
                })
        return out

    # --- downtimes ------------------------------------------------------------------------

    def add_downtime(self, body: dict, now: float) -> dict:
        with self.lock:
            downtime_id = self._id("downtime")
            start = int(body.get("start") or now)
            downtime = {
                "id": downtime_id, "scope": list(body["scope"]), "monitor_id": body.get("monitor_id"),
                "monitor_tags": list(body.get("monitor_tags") or ["*"]), "start": start, "end": body.get("end"),
                "message": body.get("message"), "timezone": body.get("timezone", "UTC"), "disabled": False,
                "canceled": None, "creator_id": 1001, "updater_id": None, "parent_id": None, "downtime_type": 2,
                "mute_first_recovery_notification": bool(body.get("mute_first_recovery_notification", False)),
            }
            self.downtimes[downtime_id] = downtime
            return self.show_downtime(downtime, now)

    @staticmethod
    def show_downtime(downtime: dict, now: float) -> dict:
        active = (not downtime["disabled"] and downtime["start"] <= now
                  and (downtime["end"] is None or now < downtime["end"]))
        return {**downtime, "active": active}

    # --- what was there before the sandbox started ----------------------------------------

    def _seed(self, now: float) -> None:
        """Monitors someone made by hand, and the alerts they raised during the incident."""
        params, estate = self.estate.params, self.estate
        cluster, rds = params.eks.cluster_name, params.rds[0].identifier
        hand_made = [
            ("SMS throughput dropped", f"avg(last_10m):sum:smsapi.sms.sent{{kube_cluster_name:{cluster}}}.as_rate() < 20",
             20.0, "team:messaging", 3, 8),
            ("RDS CPU saturated", f"avg(last_5m):avg:aws.rds.cpuutilization{{dbinstanceidentifier:{rds}}} > 90",
             90.0, "team:platform", 2, 4),
            ("sms-sender queue backlog",
             f"avg(last_5m):sum:rabbitmq.queue.messages{{kube_cluster_name:{cluster},rabbitmq_queue:sms-sender}} > 5000",
             5000.0, "team:messaging", 12, 14),
        ]
        created = estate.incident_start - 30 * 86400
        for name, query, critical, team, fired_after, recovered_after in hand_made:
            monitor = self.create_monitor(
                {"name": name, "type": "query alert", "query": query, "tags": [team, f"env:{params.env}"],
                 "message": "@slack-smsapi-alerts", "options": {"thresholds": {"critical": critical}}},
                created,
            )
            self.monitors[monitor["id"]]["overall_state"] = "OK"
            for title, alert_type, at in (
                (f"[Triggered] {name}", "error", estate.incident_start + fired_after * 60),
                (f"[Recovered] {name}", "success", estate.incident_end + recovered_after * 60),
            ):
                self.add_event({
                    "title": title, "text": f"%%%\n{query}\n%%%", "alert_type": alert_type,
                    "date_happened": int(at), "source_type_name": "Monitor Alert", "priority": "normal",
                    "tags": ["monitor", f"monitor_id:{monitor['id']}", team, f"env:{params.env}"],
                }, now)
