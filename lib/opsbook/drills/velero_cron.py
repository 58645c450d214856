"""Velero Schedule expressions: five-field cron and the `@daily`/`@every 6h` descriptors.

Velero parses `spec.schedule` with robfig/cron's standard parser (minute, hour, day of
month, month, day of week; `*`, lists, ranges, steps; the `@` descriptors). This module
reads the same forms, in UTC, to tell when a Schedule runs next and how far apart its
runs are (the audit compares that interval with the RPO target).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opsbook.errors import UsageError

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
_NAMES = {
    3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_go_duration(value: str) -> timedelta:
    """A Go duration such as `72h0m0s`, `30m` or `1h30m`."""
    parts = _DURATION_PART.findall(value or "")
    if not parts or "".join(n + u for n, u in parts) != value:
        raise UsageError(f"expected a duration such as 72h0m0s or 30m, got {value!r}")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


@dataclass(frozen=True)
class Cron:
    expression: str
    sets: tuple[frozenset[int], ...] | None  # None: an @every schedule
    every: timedelta | None
    dom_any: bool = True
    dow_any: bool = True

    def matches(self, at: datetime) -> bool:
        """True when a run is due in the minute of `at` (five-field schedules)."""
        if self.sets is None:
            raise UsageError(f"{self.expression!r} runs every {self.every}, not at set minutes")
        minute, hour, dom, month, dow = self.sets
        at = at.astimezone(UTC)
        day_dow = (at.weekday() + 1) % 7
        if at.minute not in minute or at.hour not in hour or at.month not in month:
            return False
        # cron's rule: when both day fields are restricted, either may match
        if not self.dom_any and not self.dow_any:
            return at.day in dom or day_dow in dow
        return at.day in dom and day_dow in dow

    def next_after(self, after: datetime) -> datetime:
        """The first run strictly after `after`."""
        after = after.astimezone(UTC)
        if self.every is not None:
            return after + self.every
        at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = at + timedelta(days=366 * 5)
        while at < limit:
            if self.sets is not None and at.month not in self.sets[3]:
                # jump to the first day of the next month
                at = (at.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if self.matches(at):
                return at
            if self.sets is not None and at.hour not in self.sets[1]:
                at = at.replace(minute=0) + timedelta(hours=1)
                continue
            at += timedelta(minutes=1)
        raise UsageError(f"schedule {self.expression!r} never runs")

    def interval(self, at: datetime | None = None) -> timedelta:
        """The longest gap between consecutive runs over the week after `at` (now by default)."""
        if self.every is not None:
            return self.every
        start = self.next_after(at or datetime.now(UTC))
        gap, run, end = timedelta(0), start, start + timedelta(days=8)
        while run < end:
            nxt = self.next_after(run)
            gap = max(gap, nxt - run)
            run = nxt
        return gap


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    name, lo, hi = _FIELDS[index]
    values: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"bad step {step_text!r} in the {name} field")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(part, index)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ValueError(f"{text!r} is out of range {lo}-{hi} for the {name} field")
        values.update(range(start, end + 1, step))
    return frozenset(values), text in ("*", "?")


def _value(text: str, index: int) -> int:
    if text in _NAMES.get(index, {}):
        return _NAMES[index][text]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number for the {_FIELDS[index][0]} field")
    value = int(text)
    return 0 if index == 4 and value == 7 else value  # Sunday is 0 or 7


def parse(expression: str) -> Cron:
    """A Velero schedule expression; UsageError says what is wrong and what is expected."""
    text = " ".join((expression or "").split())
    if match := _EVERY.match(text):
        return Cron(text, None, parse_go_duration(match.group(1)))
    fields = DESCRIPTORS.get(text, text).split(" ")
    if len(fields) != 5:
        raise UsageError(f"schedule {expression!r}: expected five cron fields (minute hour day-of-month month "
                         "day-of-week), a descriptor such as @daily, or @every <duration>")
    try:
        parsed = [_field(f, i) for i, f in enumerate(fields)]
    except ValueError as exc:
        raise UsageError(f"schedule {expression!r}: {exc}") from None
    return Cron(text, tuple(s for s, _ in parsed), None, dom_any=parsed[2][1], dow_any=parsed[4][1])
