"""Downtimes (v1): silence monitors for a while, and lift the silence early."""

from __future__ import annotations

import pandas as pd
from datadog_api_client.v1.api.downtimes_api import DowntimesApi
from datadog_api_client.v1.model.downtime import Downtime

from opsbook.datadog.client import Datadog

COLUMNS = ["id", "monitor_id", "scope", "start", "end", "active", "message"]


def schedule(dd: Datadog, monitor_id: int, start: int, end: int, message: str) -> int:
    """Silence one monitor from `start` to `end` (epoch seconds); returns the downtime id.

    The end is always set, so a downtime whose owner dies still lifts by itself.
    """
    body = Downtime(monitor_id=monitor_id, scope=["*"], start=start, end=end, message=message, timezone="UTC")
    return dd.call(f"schedule a downtime on monitor {monitor_id}", DowntimesApi(dd.api).create_downtime,
                   body=body).id


def cancel(dd: Datadog, downtime_id: int) -> None:
    dd.call(f"cancel downtime {downtime_id}", DowntimesApi(dd.api).cancel_downtime, downtime_id=downtime_id)


def list_downtimes(dd: Datadog, current_only: bool = True) -> pd.DataFrame:
    found = dd.call("list downtimes", DowntimesApi(dd.api).list_downtimes, current_only=current_only)
    rows = [{k: d.to_dict().get(k) for k in COLUMNS} for d in found]
    return pd.DataFrame(rows, columns=COLUMNS)
