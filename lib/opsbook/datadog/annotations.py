"""Drill annotations: a Datadog event when a drill starts and ends, and downtimes on the
monitors a drill is expected to trip (params: a wanted monitor's `tripped_by`).

`install()` registers the listener with the drill framework's hook
(`opsbook.drills.events.on_drill_event`). Each downtime carries an end
(`datadog.drill_downtime_minutes`), so it lifts by itself if the drill's process dies
before the end event; at the end event the listener cancels the ones it made. An
environment without Datadog keys is left alone; a failing Datadog call is logged by the
hook and never breaks the drill.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from opsbook.datadog import downtimes, events
from opsbook.datadog.client import Datadog, configured, connect
from opsbook.datadog.monitors_as_code import managed_monitors, wanted
from opsbook.guard import ownership_tags

log = logging.getLogger(__name__)
PURPOSE = "drill"


def event_tags(drill: str, env: str, run_id: str) -> list[str]:
    owned = ownership_tags(run_id, PURPOSE)
    return ["source:opsbook", f"drill:{drill}", f"env:{env}", *(f"{k}:{v}" for k, v in owned.items())]


@dataclass
class DrillAnnotations:
    """The listener; keeps, per drill run, its client and the downtimes it scheduled."""

    clients: dict[tuple[str, str], Datadog] = field(default_factory=dict)
    scheduled: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def __call__(self, event) -> None:
        if event.kind == "step":
            return
        from opsbook.clients import open_env

        key = (event.env, event.run_id)
        if key not in self.clients:
            env = open_env(event.env, run_id=event.run_id)
            if not configured(env.params):
                log.debug("no Datadog keys for %s: drill %s not annotated", event.env, event.drill)
                return
            self.clients[key] = connect(env)
        dd = self.clients[key]
        if event.kind == "start":
            self.started(dd, event)
        else:
            try:
                self.ended(dd, event)
            finally:
                self.clients.pop(key).api.close()

    def started(self, dd: Datadog, event) -> None:
        tags = event_tags(event.drill, event.env, event.run_id)
        events.post(dd, f"Drill started: {event.drill} ({event.env})",
                    f"opsbook drill {event.drill} started in {event.env} (run {event.run_id}).", tags)
        trips = {w["name"] for w in wanted(dd.env.params) if event.drill in w["tripped_by"]}
        if not trips:
            return
        start = int(event.at.timestamp())
        end = start + dd.env.params.datadog.drill_downtime_minutes * 60
        ids = self.scheduled.setdefault((event.env, event.run_id, event.drill), [])
        for monitor in managed_monitors(dd, dd.env.params):
            if monitor["name"] in trips:
                ids.append(downtimes.schedule(
                    dd, monitor["id"], start, end,
                    f"opsbook drill {event.drill} (run {event.run_id}) is expected to trip this monitor.",
                ))

    def ended(self, dd: Datadog, event) -> None:
        try:
            result = event.result or {}
            verdict = result.get("verdict", "ended")
            text = (f"opsbook drill {event.drill} in {event.env} (run {event.run_id}): {verdict}. "
                    f"RTO {result.get('rto_s')} s, RPO {result.get('rpo_s')} s. {result.get('reason', '')}")
            events.post(dd, f"Drill {verdict}: {event.drill} ({event.env})", text.strip(),
                        event_tags(event.drill, event.env, event.run_id),
                        alert_type="success" if verdict == "pass" else "error" if verdict == "fail" else "info")
        finally:
            for downtime_id in self.scheduled.pop((event.env, event.run_id, event.drill), []):
                downtimes.cancel(dd, downtime_id)


LISTENER = DrillAnnotations()


def install() -> DrillAnnotations:
    """Register the listener with the drill framework (idempotent); returns it."""
    from opsbook.drills.events import on_drill_event

    on_drill_event(LISTENER)
    return LISTENER
