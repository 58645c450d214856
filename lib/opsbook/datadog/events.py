"""Events: post one, and list a window's events as a table."""

from __future__ import annotations

from typing import Any

import pandas as pd
from datadog_api_client.v1.api.events_api import EventsApi
from datadog_api_client.v1.model.event_alert_type import EventAlertType
from datadog_api_client.v1.model.event_create_request import EventCreateRequest

from opsbook.datadog.client import Datadog
from opsbook.datadog.window import Window

COLUMNS = ["time", "title", "alert_type", "source", "tags", "id"]
SOURCE = "opsbook"


def post(dd: Datadog, title: str, text: str, tags: list[str], alert_type: str = "info") -> dict[str, Any]:
    """Post an event (source `opsbook`); the text is cut to the API's 4000 characters."""
    body = EventCreateRequest(
        title=title, text=text[:4000], tags=tags, alert_type=EventAlertType(alert_type), source_type_name=SOURCE,
    )
    return dd.call(f"post the event {title!r}", EventsApi(dd.api).create_event, body=body).event.to_dict()


def list_events(dd: Datadog, window: Window, tags: list[str] | None = None) -> pd.DataFrame:
    """The window's events, oldest first."""
    start, end = window.epoch()
    kwargs = {"tags": ",".join(tags)} if tags else {}
    response = dd.call("list events", EventsApi(dd.api).list_events, start=start, end=end, **kwargs)
    rows = [
        {"time": e.get("date_happened"), "title": e.get("title", ""), "alert_type": str(e.get("alert_type", "")),
         "source": e.get("source_type_name", ""), "tags": list(e.get("tags", []) or []), "id": e.get("id")}
        for e in (x.to_dict() for x in response.get("events", []) or [])
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)
