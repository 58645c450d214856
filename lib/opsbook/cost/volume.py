"""SMS volume, the business driver: daily SMS sent per region.

Sources (params `cost.sms_volume.source`), a registry rather than an if-chain:
- `csv`: a file with columns date, region, sms_count (a local path or s3:// URL);
- `constant`: `monthly_constant` SMS a month in the env's region, spread evenly over days;
- `datadog`: the Datadog metric (params `datadog.metrics.sms_sent_count`), summed per day;
- `auto` (the default): `datadog` when Datadog is configured (its keys), else `csv` when a
  CSV is named, else `constant`.
"""

from __future__ import annotations

import calendar
import io
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from opsbook.clients import Env
from opsbook.errors import OpsbookError, ParamsError
from opsbook.registry import Registry

COLUMNS = ["date", "region", "sms_count"]
# Where daily SMS counts come from (params cost.sms_volume.source): a function env, start, end -> frame.
VolumeSource = Callable[[Env, date, date], pd.DataFrame]
VOLUME_SOURCES: Registry[VolumeSource] = Registry("SMS volume source", ["opsbook.cost.volume"])


def _read_csv_text(env: Env, location: str) -> str:
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        s3 = env.aws("s3")
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            raise OpsbookError(f"SMS volume CSV {location} does not exist (params cost.sms_volume.csv)",
                               remedy="put the SMS export there or fix params cost.sms_volume.csv") from None
    path = Path(location)
    if not path.is_file():
        raise OpsbookError(f"SMS volume CSV {location} does not exist (params cost.sms_volume.csv)",
                           remedy="put the SMS export there or fix params cost.sms_volume.csv")
    return path.read_text()


def parse_csv(text: str, where: str) -> pd.DataFrame:
    """Validate and type an SMS-volume CSV (date, region, sms_count)."""
    frame = pd.read_csv(io.StringIO(text), dtype={"region": str})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise OpsbookError(f"{where}: missing columns {missing}; expected a header {','.join(COLUMNS)}")
    try:
        frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    except ValueError as exc:
        raise OpsbookError(f"{where}: column date must hold YYYY-MM-DD dates ({exc})") from None
    counts = pd.to_numeric(frame["sms_count"], errors="coerce")
    bad = frame[counts.isna() | (counts < 0)]
    if len(bad):
        raise OpsbookError(f"{where}: sms_count must be a number >= 0; row {bad.index[0] + 2} has {bad.iloc[0]['sms_count']!r}")
    frame["sms_count"] = counts.astype(float)
    return frame[COLUMNS]


@VOLUME_SOURCES.register("csv")
def from_csv(env: Env, start: date, end: date) -> pd.DataFrame:
    location = env.params.cost.sms_volume.csv
    return parse_csv(_read_csv_text(env, location), location)


@VOLUME_SOURCES.register("constant")
def from_constant(env: Env, start: date, end: date) -> pd.DataFrame:
    monthly = env.params.cost.sms_volume.monthly_constant
    if monthly is None:
        raise ParamsError(f"{env.params.source}: field 'cost.sms_volume.monthly_constant': required for source constant")
    days = pd.date_range(start, end - timedelta(days=1), freq="D")
    per_day = [monthly / calendar.monthrange(d.year, d.month)[1] for d in days]
    return pd.DataFrame({"date": days, "region": env.params.region, "sms_count": per_day})


@VOLUME_SOURCES.register("datadog")
def from_datadog(env: Env, start: date, end: date) -> pd.DataFrame:
    """SMS sent per day from Datadog (`datadog.metrics.sms_sent_count`)."""
    from opsbook.datadog.volume import daily_sms  # the Datadog client loads only when used

    return daily_sms(env, start, end)


def source_of(env: Env) -> str:
    """The source params choose, with `auto` resolved."""
    volume = env.params.cost.sms_volume
    if volume.source != "auto":
        return volume.source
    from opsbook.datadog.client import configured

    if configured(env.params):
        return "datadog"
    return "csv" if volume.csv else "constant"


def sms_volume(env: Env, start: date, end: date) -> pd.DataFrame:
    """Daily SMS per region between start (inclusive) and end (exclusive)."""
    source = source_of(env)
    frame = VOLUME_SOURCES.get(source)(env, start, end)
    mask = (frame["date"] >= pd.Timestamp(start)) & (frame["date"] < pd.Timestamp(end))
    frame = frame[mask]
    if frame.empty:
        raise OpsbookError(f"no SMS volume between {start} and {end} from source {source}",
                           remedy="check that the source covers that period, or ask for fewer months")
    return frame.reset_index(drop=True)


def monthly(volume: pd.DataFrame, by_region: bool = True) -> pd.DataFrame:
    """SMS a month (and region), with the number of days that month has data for."""
    frame = volume.assign(period=volume["date"].dt.to_period("M").dt.to_timestamp())
    keys = ["period", "region"] if by_region else ["period"]
    return frame.groupby(keys, as_index=False).agg(sms=("sms_count", "sum"), days=("date", "nunique"))
