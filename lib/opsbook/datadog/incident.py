"""Incident analysis: a window's key metrics, what happened around them, which monitors fired.

Without an explicit window, the latest alert in the last `datadog.incident_lookback_days`
is taken (from its first trigger to its last recovery, an hour either side), else the
last 24 hours. Events come from Datadog (monitor alerts, drill annotations, the
cluster-autoscaler's Kubernetes events) and from the Helm release history in the
cluster (deploys).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd

from opsbook.clients import Env
from opsbook.datadog import events as dd_events
from opsbook.datadog import metrics as dd_metrics
from opsbook.datadog import window as windows
from opsbook.datadog.client import Datadog
from opsbook.errors import OpsbookError
from opsbook.params import Params

MONITOR_SOURCE = "monitor alert"
TITLE = re.compile(r"^\[(?P<state>[^\]]+?)(?: on [^\]]*)?\]\s*(?P<name>.+)$")
ALERT_STATES = ("Triggered", "Re-Triggered", "Warn", "No Data")
EVENT_COLUMNS = ["time", "kind", "title"]
KIND_COLOURS = {"monitor": "#cf222e", "deploy": "#0969da", "drill": "#8250df", "autoscaler": "#57606a"}


def _monitor_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Monitor notifications with their state and monitor name parsed from the title."""
    alerts = frame[frame["source"].str.lower() == MONITOR_SOURCE].copy()
    parsed = alerts["title"].str.extract(TITLE)
    alerts["state"], alerts["monitor"] = parsed["state"], parsed["name"]
    return alerts.dropna(subset=["state"])


def resolve_window(dd: Datadog, params: Params, start: str = "", end: str = "",
                   now: datetime | None = None) -> windows.Window:
    """The window to analyse: as given, else around the latest alert, else the last 24 hours."""
    now = now or datetime.now(UTC)
    if start:
        return windows.span(start, end, now)
    lookback = windows.Window(now - timedelta(days=params.datadog.incident_lookback_days), now)
    alerts = _monitor_events(dd_events.list_events(dd, lookback))
    triggered = alerts[alerts["state"].isin(ALERT_STATES)]
    if triggered.empty:
        return windows.Window(now - timedelta(hours=24), now)
    last = triggered["time"].max()
    # the incident: alerts that fired within two hours before the latest one
    first = triggered.loc[triggered["time"] >= last - timedelta(hours=2), "time"].min()
    recovered = alerts.loc[(alerts["state"] == "Recovered") & (alerts["time"] >= last), "time"]
    finish = recovered.max() if not recovered.empty else last
    return windows.Window(first.to_pydatetime() - timedelta(hours=1),
                          min(now, finish.to_pydatetime() + timedelta(hours=1)))


def key_metrics(dd: Datadog, params: Params, window: windows.Window) -> pd.DataFrame:
    """SMS sent per second, API latency, queue depth, RDS CPU and nodes, one column each."""
    return dd_metrics.signals(dd, params, window)


def _kind(row: pd.Series) -> str:
    tags = row["tags"]
    if row["source"].lower() == MONITOR_SOURCE:
        return "monitor"
    if any(t.startswith("drill:") for t in tags):
        return "drill"
    if "kube_deployment:cluster-autoscaler" in tags or "cluster-autoscaler" in row["title"]:
        return "autoscaler"
    if row["source"].lower() in ("helm", "deploy") or "deploy" in tags:
        return "deploy"
    return "other"


def helm_deploys(env: Env, window: windows.Window) -> pd.DataFrame:
    """Helm releases deployed in the window, from the release Secrets in the cluster."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from opsbook.inventory.kube import HELM_SECRET_TYPE, decode_release

    try:
        secrets = client.CoreV1Api(env.kube).list_secret_for_all_namespaces(
            label_selector="owner=helm", _request_timeout=15).items
    except (ApiException, OSError) as exc:
        raise OpsbookError(f"could not read the Helm release history from the cluster: {exc}",
                           remedy="check the cluster is reachable (VPN, KUBECONFIG) and that the identity may list "
                                  "secrets in all namespaces (helm list -A needs the same)") from None
    rows = []
    for secret in secrets:
        if secret.type != HELM_SECRET_TYPE or not secret.data or "release" not in secret.data:
            continue
        release = decode_release(secret.data["release"])
        info, chart = release.get("info", {}), release.get("chart", {}).get("metadata", {})
        deployed = pd.Timestamp(info.get("last_deployed") or info.get("first_deployed"))
        deployed = deployed.tz_localize(UTC) if deployed.tzinfo is None else deployed.tz_convert(UTC)
        if window.start <= deployed <= window.end:
            rows.append((deployed, "deploy", f"helm {release.get('name')} -> {chart.get('name')} "
                         f"{chart.get('version')} (revision {release.get('version')}, {info.get('status')})"))
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def overlay_events(env: Env, dd: Datadog, window: windows.Window) -> pd.DataFrame:
    """Everything that happened in the window: Datadog events and Helm deploys, oldest first.

    A source that cannot be read gives a `note` row saying why; the others still show.
    """
    frame = dd_events.list_events(dd, window)
    frame["kind"] = frame.apply(_kind, axis=1) if not frame.empty else pd.Series(dtype=str)
    parts = [frame[EVENT_COLUMNS]]
    try:
        parts.append(helm_deploys(env, window))
    except OpsbookError as exc:
        parts.append(pd.DataFrame([(window.start, "note", f"deploys not shown: {exc.one_line()}")], columns=EVENT_COLUMNS))
    merged = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(
        not p.empty for p in parts) else pd.DataFrame([], columns=EVENT_COLUMNS)
    return merged.sort_values("time", kind="stable").reset_index(drop=True)


def fired_monitors(dd: Datadog, window: windows.Window) -> pd.DataFrame:
    """Each monitor that alerted in the window: first alert, recovery and minutes alerting."""
    alerts = _monitor_events(dd_events.list_events(dd, window))
    rows = []
    for name, group in alerts.groupby("monitor", sort=False):
        fired = group.loc[group["state"].isin(ALERT_STATES), "time"]
        if fired.empty:
            continue
        recovered = group.loc[(group["state"] == "Recovered") & (group["time"] >= fired.min()), "time"]
        end = recovered.max() if not recovered.empty else pd.NaT
        ids = [t.split(":", 1)[1] for tags in group["tags"] for t in tags if t.startswith("monitor_id:")]
        rows.append({
            "monitor": name, "monitor_id": ids[0] if ids else "", "first_alert": fired.min(), "recovered": end,
            "minutes_alerting": round((end - fired.min()).total_seconds() / 60, 1) if pd.notna(end) else None,
            "alerts": len(fired),
        })
    columns = ["monitor", "monitor_id", "first_alert", "recovered", "minutes_alerting", "alerts"]
    return pd.DataFrame(rows, columns=columns).sort_values("first_alert").reset_index(drop=True)


def chart(metrics: pd.DataFrame, events: pd.DataFrame, fired: pd.DataFrame, window: windows.Window):
    """The key metrics stacked on one time axis, events as lines, alerting spans shaded."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics.columns), 1, figsize=(11, 2 * len(metrics.columns)), sharex=True,
                             squeeze=False)
    axes = axes[:, 0]
    for ax, column in zip(axes, metrics.columns, strict=True):
        ax.plot(metrics.index, metrics[column], linewidth=0.9)
        ax.set_ylabel(column.replace("_", " "), fontsize=8)
        for row in fired.itertuples():
            ax.axvspan(row.first_alert, row.recovered if pd.notna(row.recovered) else window.end,
                       color=KIND_COLOURS["monitor"], alpha=0.08)
        for kind, colour in KIND_COLOURS.items():
            for when in events.loc[events["kind"] == kind, "time"]:
                ax.axvline(when, color=colour, linewidth=0.8, alpha=0.7)
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in KIND_COLOURS.items()
               if (events["kind"] == k).any()]
    if handles:
        axes[0].legend(handles=handles, loc="upper left", fontsize=8, ncols=len(handles))
    axes[-1].set_xlim(window.start, window.end)
    fig.suptitle(f"Key metrics, {window}")
    fig.tight_layout()
    plt.close(fig)
    return fig


def summary(window: windows.Window, metrics: pd.DataFrame, events: pd.DataFrame, fired: pd.DataFrame) -> dict:
    """The run's headline: the window, the monitors that fired, the metrics' extremes, events by kind."""
    return {
        "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
        "monitors_fired": len(fired), "first_alert": fired["first_alert"].min() if not fired.empty else None,
        "peaks": {column: float(metrics[column].max()) for column in metrics.columns if metrics[column].notna().any()},
        "lows": {column: float(metrics[column].min()) for column in metrics.columns if metrics[column].notna().any()},
        "events": events["kind"].value_counts().to_dict(),
    }
