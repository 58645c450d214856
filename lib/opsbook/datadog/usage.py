"""Usage metering (v1): hourly hosts and containers, top custom metrics, the month summary."""

from __future__ import annotations

from typing import Any

import pandas as pd
from datadog_api_client.v1.api.usage_metering_api import UsageMeteringApi

from opsbook.datadog.client import Datadog
from opsbook.datadog.window import Window

SUMMARY_FIELDS = ("host_top99p", "infra_host_top99p", "container_avg", "container_hwm", "custom_ts_avg")


def hosts_hourly(dd: Datadog, window: Window) -> pd.DataFrame:
    """One row per metered hour: hour (UTC), host_count, container_count."""
    response = dd.call("read hourly host usage", UsageMeteringApi(dd.api).get_usage_hosts,
                       start_hr=window.start, end_hr=window.end)
    rows = [
        {"hour": h.get("hour"), "host_count": h.get("host_count") or 0, "container_count": h.get("container_count") or 0}
        for h in (u.to_dict() for u in response.get("usage", []) or [])
    ]
    frame = pd.DataFrame(rows, columns=["hour", "host_count", "container_count"])
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    return frame.sort_values("hour").reset_index(drop=True)


def top_avg_metrics(dd: Datadog, window: Window) -> pd.DataFrame:
    """Every metric of the month with its average and highest hourly series count."""
    api, rows, cursor = UsageMeteringApi(dd.api), [], None
    while True:
        kwargs: dict[str, Any] = {"month": window.start, "limit": 5000}
        if cursor:
            kwargs["next_record_id"] = cursor
        response = dd.call("read the top custom metrics", api.get_usage_top_avg_metrics, **kwargs)
        rows.extend(u.to_dict() for u in response.get("usage", []) or [])
        pagination = (response.get("metadata") or {}).get("pagination") or {}
        cursor = pagination.get("next_record_id")
        if not cursor:
            break
    frame = pd.DataFrame(
        [{"metric": r.get("metric_name"), "category": str(r.get("metric_category", "")),
          "avg_per_hour": r.get("avg_metric_hour", 0), "max_per_hour": r.get("max_metric_hour", 0)} for r in rows],
        columns=["metric", "category", "avg_per_hour", "max_per_hour"],
    )
    return frame.sort_values("avg_per_hour", ascending=False).reset_index(drop=True)


def month_summary(dd: Datadog, window: Window) -> dict[str, Any]:
    """Datadog's own billing summary of the month (hosts top 99%, containers, custom metrics)."""
    response = dd.call("read the usage summary", UsageMeteringApi(dd.api).get_usage_summary,
                       start_month=window.start, end_month=window.start)
    months = [u.to_dict() for u in response.get("usage", []) or []]
    first = months[0] if months else {}
    return {key: first.get(key) for key in SUMMARY_FIELDS}
