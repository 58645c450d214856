"""What a cost question is (`CostQuery`) and the one DataFrame schema every source answers in.

A frame has `period` (the first day of the month or the day), one column per `group_by`
dimension (strings, in the order asked), `cost` (USD, the query's metric) and
`usage_quantity` (the summed usage amounts, units mixed unless grouped by usage type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pandas as pd

from opsbook.errors import UsageError

UNTAGGED = "(untagged)"
DIMENSIONS = (
    "service", "usage_type", "operation", "region", "account", "az", "record_type", "resource_id",
    "instance_type", "billing_entity", "team",
)
METRICS = ("unblended", "amortized", "net_unblended")
Granularity = Literal["MONTHLY", "DAILY"]
_TAG = re.compile(r"^tag:[\w.:/=+\-@ ]{1,128}$")


def is_tag(dim: str) -> bool:
    return dim.startswith("tag:")


def tag_key(dim: str) -> str:
    """The resource tag key of a dimension ('team' -> 'team', 'tag:eks:cluster-name' -> that key)."""
    return "team" if dim == "team" else dim.removeprefix("tag:")


def cur_tag_key(key: str) -> str:
    """The key a user tag has in CUR 2.0's resource_tags map ('eks:cluster-name' -> 'user_eks_cluster_name')."""
    return "user_" + re.sub(r"[^A-Za-z0-9]", "_", key)


def _check_dim(dim: str, where: str) -> None:
    if dim not in DIMENSIONS and not _TAG.match(dim):
        raise UsageError(f"{where}: unknown dimension {dim!r}; expected one of {', '.join(DIMENSIONS)} or 'tag:<key>'")


@dataclass(frozen=True)
class CostQuery:
    """Cost between `start` (inclusive) and `end` (exclusive), grouped and filtered."""

    start: date
    end: date
    granularity: Granularity = "MONTHLY"
    group_by: tuple[str, ...] = ()
    metric: str = "amortized"
    include: dict[str, tuple[str, ...]] = field(default_factory=dict)  # dim -> values ('%' = wildcard)
    exclude: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise UsageError(f"cost query: start and end must be dates, got {self.start!r} and {self.end!r}")
        if self.start >= self.end:
            raise UsageError(f"cost query: start {self.start} must be before end {self.end} (end is exclusive)")
        if self.granularity not in ("MONTHLY", "DAILY"):
            raise UsageError(f"cost query: granularity must be MONTHLY or DAILY, got {self.granularity!r}")
        if self.metric not in METRICS:
            raise UsageError(f"cost query: metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if len(set(self.group_by)) != len(self.group_by):
            raise UsageError(f"cost query: group_by repeats a dimension: {self.group_by}")
        for dim in self.group_by:
            _check_dim(dim, "cost query group_by")
        for name, filters in (("include", self.include), ("exclude", self.exclude)):
            for dim, values in filters.items():
                _check_dim(dim, f"cost query {name}")
                if isinstance(values, str) or not values:
                    raise UsageError(f"cost query {name}[{dim!r}]: expected a non-empty tuple of values, got {values!r}")

    @property
    def columns(self) -> list[str]:
        return ["period", *self.group_by, "cost", "usage_quantity"]


def normalize(frame: pd.DataFrame, query: CostQuery) -> pd.DataFrame:
    """Coerce a source's answer into the schema (types, column order, sort) and check it."""
    missing = [c for c in query.columns if c not in frame.columns]
    if missing:
        raise UsageError(f"cost source answered without columns {missing} (got {list(frame.columns)})")
    out = frame[query.columns].copy()
    out["period"] = pd.to_datetime(out["period"]).dt.tz_localize(None).astype("datetime64[ns]")
    for dim in query.group_by:
        out[dim] = out[dim].fillna("").astype(str)
    out["cost"] = out["cost"].astype("float64").fillna(0.0)
    out["usage_quantity"] = out["usage_quantity"].astype("float64").fillna(0.0)
    keys = ["period", *query.group_by]
    out = out.groupby(keys, as_index=False, sort=True)[["cost", "usage_quantity"]].sum()
    return out.reset_index(drop=True)


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(y, m + 1, 1)


def periods(start: date, end: date) -> list[str]:
    """Billing periods ('YYYY-MM') touching [start, end)."""
    out, cur = [], month_start(start)
    while cur < end:
        out.append(cur.strftime("%Y-%m"))
        cur = add_months(cur, 1)
    return out
