"""`GET /api/v1/query`: the part of Datadog's metric query language the estate needs.

`<space aggr>:<metric>{<scope>} [by {<tags>}]` followed by `.as_rate()`, `.as_count()`
or `.rollup(<aggr>[, <seconds>])`. Each series is reduced in time per interval (the
rollup, avg by default; `as_count` integrates a per-second rate), then series are
combined per group with the space aggregator, as Datadog does.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from opsbook.sandbox.datadog.signals import Estate, Series

QUERY = re.compile(
    r"^\s*(?P<aggr>avg|sum|min|max):(?P<metric>[A-Za-z][\w.]*)\{(?P<scope>[^{}]*)\}"
    r"(?:\s*by\s*\{(?P<by>[^{}]*)\})?(?P<funcs>(?:\.\w+\([^()]*\))*)\s*$"
)
FUNCTION = re.compile(r"\.(\w+)\(([^()]*)\)")
AGGREGATORS = {"avg": statistics.fmean, "sum": sum, "min": min, "max": max}
# the interval Datadog picks for a window: the smallest of these giving <= 300 points
INTERVALS = (20, 60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
MAX_POINTS = 1500


class QueryError(ValueError):
    """A query the API answers with 400."""


@dataclass
class Query:
    aggr: str
    metric: str
    scope: dict[str, str]
    by: list[str]
    as_count: bool = False
    rollup: str = "avg"
    interval: int | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Query:
        match = QUERY.match(text)
        if not match:
            raise QueryError(f"Error parsing query: unable to parse {text!r}: expected aggr:metric{{scope}}")
        scope: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in match["scope"].split(","))):
            if part == "*":
                continue
            key, sep, value = part.partition(":")
            if not sep:
                raise QueryError(f"Error parsing query: scope item {part!r} is not tag:value")
            scope[key] = value
        by = [t.strip() for t in (match["by"] or "").split(",") if t.strip()]
        query = cls(match["aggr"], match["metric"], scope, by, text=text.strip())
        for name, args in FUNCTION.findall(match["funcs"]):
            query._apply(name, [a.strip() for a in args.split(",") if a.strip()])
        return query

    def _apply(self, name: str, args: list[str]) -> None:
        if name == "as_count":
            self.as_count = True
        elif name == "as_rate":
            self.as_count = False
        elif name == "rollup":
            for arg in args:
                if arg.isdigit():
                    self.interval = int(arg)
                elif arg in AGGREGATORS:
                    self.rollup = arg
                else:
                    raise QueryError(f"Error parsing query: rollup argument {arg!r} is neither an aggregator nor seconds")
            if self.interval is not None and self.interval < 1:
                raise QueryError("Error parsing query: rollup interval must be positive")
        else:
            raise QueryError(f"Error parsing query: unknown function {name}()")

    def matches(self, series: Series) -> bool:
        return all(series.tags.get(k) == v for k, v in self.scope.items())


def pick_interval(seconds: float, requested: int | None) -> int:
    if requested is not None:
        interval = requested
    else:
        interval = next((i for i in INTERVALS if seconds / i <= 300), INTERVALS[-1])
    while seconds / interval > MAX_POINTS:  # Datadog widens a rollup that gives too many points
        interval *= 2
    return interval


def _bucket_value(series: Series, start: float, interval: int, query: Query) -> float:
    step = max(interval / 30, min(interval, 60))
    samples = [series.value(start + k * step) for k in range(max(1, int(interval // step)))]
    if series.kind == "rate" and query.as_count:
        return statistics.fmean(samples) * interval
    return AGGREGATORS[query.rollup](samples)


def run_query(estate: Estate, text: str, start: int, end: int, now: float) -> dict:
    """The MetricsQueryResponse body for one query over [start, end] (epoch seconds)."""
    if end <= start:
        raise QueryError("'from' must be before 'to'")
    query = Query.parse(text)
    interval = pick_interval(end - start, query.interval)
    first = start - start % interval
    buckets = [b for b in range(first, end, interval) if b <= now]
    groups: dict[tuple[str, ...], list[Series]] = {}
    for series in filter(query.matches, estate.series(query.metric)):
        key = tuple(f"{tag}:{series.tags.get(tag, 'N/A')}" for tag in query.by)
        groups.setdefault(key, []).append(series)
    out = []
    for key, members in sorted(groups.items()):
        points = [
            [float(b * 1000), float(AGGREGATORS[query.aggr]([_bucket_value(s, b, interval, query) for s in members]))]
            for b in buckets
        ]
        scope = ",".join([*(f"{k}:{v}" for k, v in query.scope.items()), *key]) or "*"
        out.append({
            "metric": query.metric, "display_name": query.metric, "expression": query.text,
            "scope": scope, "tag_set": list(key), "aggr": query.aggr, "interval": interval,
            "length": len(points), "pointlist": points, "query_index": 0,
            "start": buckets[0] * 1000 if buckets else start * 1000,
            "end": (buckets[-1] + interval) * 1000 - 1 if buckets else end * 1000,
        })
    return {
        "status": "ok", "res_type": "time_series", "query": query.text, "message": "",
        "from_date": start * 1000, "to_date": end * 1000, "group_by": query.by, "series": out,
    }
