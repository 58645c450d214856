"""Monitors: list, create, update, delete (v1 API), as plain dicts and tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_options import MonitorOptions
from datadog_api_client.v1.model.monitor_thresholds import MonitorThresholds
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest

from opsbook.datadog.client import Datadog

PAGE_SIZE = 1000


def list_monitors(dd: Datadog, tags: list[str] | None = None) -> list[dict[str, Any]]:
    """Every monitor (carrying all `tags`, if given), page by page, as dicts."""
    api, found, page = MonitorsApi(dd.api), [], 0
    kwargs = {"monitor_tags": ",".join(tags)} if tags else {}
    while True:
        batch = dd.call("list monitors", api.list_monitors, page=page, page_size=PAGE_SIZE, **kwargs)
        found.extend(m.to_dict() for m in batch)
        if len(batch) < PAGE_SIZE:
            return found
        page += 1


def _options(spec: dict[str, Any]) -> MonitorOptions:
    thresholds = {k: v for k, v in (("critical", spec["critical"]), ("warning", spec.get("warning"))) if v is not None}
    options: dict[str, Any] = {"thresholds": MonitorThresholds(**thresholds), "notify_no_data": spec["notify_no_data"]}
    if spec.get("renotify_interval") is not None:
        options["renotify_interval"] = spec["renotify_interval"]
    return MonitorOptions(**options)


def create_monitor(dd: Datadog, spec: dict[str, Any]) -> dict[str, Any]:
    """Create a monitor from a spec dict (name, type, query, message, priority, tags, thresholds)."""
    body = Monitor(
        name=spec["name"], type=MonitorType(spec["type"]), query=spec["query"], message=spec["message"],
        tags=spec["tags"], priority=spec.get("priority"), options=_options(spec),
    )
    return dd.call(f"create monitor {spec['name']!r}", MonitorsApi(dd.api).create_monitor, body=body).to_dict()


def update_monitor(dd: Datadog, monitor_id: int, spec: dict[str, Any]) -> dict[str, Any]:
    body = MonitorUpdateRequest(
        name=spec["name"], type=MonitorType(spec["type"]), query=spec["query"], message=spec["message"],
        tags=spec["tags"], priority=spec.get("priority"), options=_options(spec),
    )
    return dd.call(f"update monitor {spec['name']!r}", MonitorsApi(dd.api).update_monitor,
                   monitor_id=monitor_id, body=body).to_dict()


def delete_monitor(dd: Datadog, monitor_id: int, name: str = "") -> int:
    deleted = dd.call(f"delete monitor {name or monitor_id!r}", MonitorsApi(dd.api).delete_monitor,
                      monitor_id=monitor_id)
    return deleted.deleted_monitor_id


def table(monitors: list[dict[str, Any]]) -> pd.DataFrame:
    """The monitors as a table an engineer reads."""
    rows = [
        {"id": m.get("id"), "name": m.get("name"), "type": str(m.get("type")), "state": str(m.get("overall_state", "")),
         "priority": m.get("priority"), "tags": ", ".join(m.get("tags", []))}
        for m in monitors
    ]
    return pd.DataFrame(rows, columns=["id", "name", "type", "state", "priority", "tags"])
