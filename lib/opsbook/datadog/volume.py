"""SMS volume from the Datadog metric (for the unit cost per SMS)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from opsbook.clients import Env
from opsbook.datadog import window as windows
from opsbook.datadog.client import Datadog, connect
from opsbook.datadog.metrics import query, render
from opsbook.params import Params


def _counts(dd: Datadog, params: Params, window: windows.Window, seconds: int) -> pd.DataFrame:
    """params `datadog.metrics.sms_sent_count` summed per `seconds` (unless the query sets a rollup)."""
    text = render(params.datadog.metrics.sms_sent_count, params)
    if ".rollup(" not in text:
        text += f".rollup(sum, {seconds})"
    return query(dd, text, window)


def sms_volume(dd: Datadog, params: Params, window: windows.Window) -> int:
    """SMS sent in the window, summed hour by hour."""
    return int(round(float(_counts(dd, params, window, 3600)["value"].sum())))


def monthly_sms_volume(dd: Datadog, params: Params, month: str = "") -> int:
    """SMS sent in a calendar month 'YYYY-MM' (default: the last full month), UTC."""
    return sms_volume(dd, params, windows.month(month))


def daily_sms(env: Env, start: date, end: date) -> pd.DataFrame:
    """SMS sent per UTC day in [start, end), in the shape of opsbook.cost.volume's sources
    (date, region, sms_count): the `datadog` source of params `cost.sms_volume`."""
    window = windows.Window(datetime.combine(start, datetime.min.time(), UTC),
                            datetime.combine(end, datetime.min.time(), UTC))
    with connect(env) as dd:
        points = _counts(dd, env.params, window, 86400)
    days = points.groupby(points["time"].dt.tz_localize(None).dt.normalize())["value"].sum()
    return pd.DataFrame({"date": days.index, "region": env.params.region, "sms_count": days.to_numpy()})
