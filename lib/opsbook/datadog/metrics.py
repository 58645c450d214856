"""Metric queries (`GET /api/v1/query`) into pandas, and the estate's named signals."""

from __future__ import annotations

import string

import pandas as pd
from datadog_api_client.v1.api.metrics_api import MetricsApi

from opsbook.datadog.client import Datadog
from opsbook.datadog.window import Window
from opsbook.errors import UsageError
from opsbook.params import Params

SIGNALS = ("sms_sent_per_second", "api_latency_seconds", "rabbitmq_queue_depth", "rds_cpu_percent", "node_count")
COLUMNS = ["time", "value", "metric", "scope"]


def render(template: str, params: Params) -> str:
    """Fill $cluster, $rds and $env in a query (or monitor name/message) from params."""
    return string.Template(template).safe_substitute(
        cluster=params.eks.cluster_name, rds=params.rds[0].identifier, env=params.env
    )


def query(dd: Datadog, text: str, window: Window) -> pd.DataFrame:
    """One row per point: time (UTC), value, metric and the series' scope."""
    start, end = window.epoch()
    response = dd.call(f"query {text!r}", MetricsApi(dd.api).query_metrics, _from=start, to=end, query=text)
    rows = []
    for series in response.to_dict().get("series", []):
        for stamp, value in series.get("pointlist", []) or []:
            if value is not None:
                rows.append((stamp, value, series.get("metric", ""), series.get("scope", "")))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def signal(dd: Datadog, params: Params, name: str, window: Window) -> pd.DataFrame:
    """A named signal of params `datadog.metrics` (e.g. 'rds_cpu_percent') over the window."""
    template = getattr(params.datadog.metrics, name, None)
    if not isinstance(template, str):
        known = ", ".join(type(params.datadog.metrics).model_fields)
        raise UsageError(f"unknown Datadog signal {name!r} (params datadog.metrics has: {known})",
                         remedy=f"use one of those, or add a query named {name} to datadog.metrics in {params.source}")
    return query(dd, render(template, params), window)


def signals(dd: Datadog, params: Params, window: Window, names: tuple[str, ...] = SIGNALS) -> pd.DataFrame:
    """Several signals side by side: one column per signal, indexed by time (summed over series)."""
    columns = {}
    for name in names:
        frame = signal(dd, params, name, window)
        columns[name] = frame.groupby("time")["value"].sum()
    return pd.DataFrame(columns).sort_index()
