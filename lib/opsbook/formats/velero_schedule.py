"""Velero's time formats: Schedule cron expressions and Go durations, shared by the drills and the emulator.

## Cron

Velero parses `Schedule.spec.schedule` with robfig/cron v3.0.1's `cron.ParseStandard`
(pkg/controller/schedule_controller.go `parseCronSchedule`), so this module reads exactly
what robfig's parser.go and spec.go accept, with their error texts:

- five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec),
  day of week (0-6 or sun-sat; 7 is out of range); `*`, `?`, lists, ranges, steps, and
  `N/step` meaning `N-max/step`;
- the descriptors `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight`
  `@hourly` and `@every <Go duration>` (at least a second, whole seconds);
- an optional time zone first: `CRON_TZ=Europe/Warsaw 0 3 * * *` or `TZ=...`; without
  one robfig uses the process's local zone, which is UTC in the Velero container.

Day of month and day of week: when either field is a star (`*`, `?`, `*/1`), both must
match, else either may (robfig's `dayMatches`). `next_after` finds the first run strictly
after a moment the way robfig's `SpecSchedule.Next` does: it moves forward in absolute
time and matches the wall-clock fields in the schedule's zone, so a run in the hour a
spring-forward skips does not happen that day and one in the hour a fall-back repeats
happens twice. When nothing matches within five years robfig returns the zero time
(None here).

## Go durations

`ttl`, `csiSnapshotTimeout` and `@every` take Go's `time.ParseDuration` syntax
(`72h0m0s`, `1h30m`, `1.5h`, `300ms`; units ns us µs ms s m h).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opsbook.errors import UsageError

EXPECTED = ("five fields (minute hour day-of-month month day-of-week), a descriptor such as @daily, or "
            "@every <duration>, optionally after CRON_TZ=<zone> (e.g. 'CRON_TZ=Europe/Warsaw 0 3 * * *')")
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
SEARCH_YEARS = 5  # robfig gives up (zero time) after five years


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int]


_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# minute, hour, day of month, month, day of week (robfig's spec.go bounds)
_BOUNDS = (_Bounds(0, 59, {}), _Bounds(0, 23, {}), _Bounds(1, 31, {}), _Bounds(1, 12, _MONTHS),
           _Bounds(0, 6, _DAYS))


class CronError(UsageError):
    """A schedule robfig/cron refuses; `reason` is robfig's own text (Velero shows it after 'invalid schedule: ')."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"schedule {expression!r}: {reason}", remedy=f"write the schedule as {EXPECTED}")
        self.reason = reason


# --- Go durations ------------------------------------------------------------------------------

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"\d*(\.\d*)?")
_UNIT = re.compile(r"[^\d.]*")


def _go_duration_seconds(value: str) -> float:
    """Go's time.ParseDuration; ValueError with Go's message."""
    quoted = json.dumps(value, ensure_ascii=False)
    text, sign = value, 1.0
    if text[:1] in ("-", "+"):
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while text:
        number = _NUMBER.match(text).group(0)  # type: ignore[union-attr]
        if number in ("", "."):
            raise ValueError(f"time: invalid duration {quoted}")
        text = text[len(number):]
        unit = _UNIT.match(text).group(0)  # type: ignore[union-attr]
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNIT_SECONDS:
            raise ValueError(f"time: unknown unit {json.dumps(unit, ensure_ascii=False)} in duration {quoted}")
        total += float(number) * _UNIT_SECONDS[unit]
        text = text[len(unit):]
    return sign * total


def parse_go_duration(value: str) -> timedelta:
    """A Go duration such as `72h0m0s`, `30m` or `1h30m`; UsageError with Go's reason."""
    try:
        return timedelta(seconds=_go_duration_seconds(value or ""))
    except ValueError as exc:
        raise UsageError(f"{exc}; expected a duration such as 72h0m0s, 30m or 1h30m") from None


# --- cron ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    """A parsed Velero schedule: the run times of a five-field spec, or a constant delay (`@every`)."""

    expression: str
    zone: tzinfo
    fields: tuple[frozenset[int], ...] = ()  # minute, hour, day of month, month, day of week
    dom_star: bool = True
    dow_star: bool = True
    every: timedelta | None = None

    @property
    def zone_name(self) -> str:
        return str(self.zone)

    def _day_matches(self, at: datetime) -> bool:
        dom = at.day in self.fields[2]
        dow = (at.isoweekday() % 7) in self.fields[4]
        return dom and dow if self.dom_star or self.dow_star else dom or dow

    def next_after(self, after: datetime) -> datetime | None:
        """The first run strictly after `after` (UTC), or None when there is none within five years."""
        after = after.astimezone(UTC)
        if self.every is not None:  # robfig ConstantDelaySchedule.Next: whole seconds
            return after.replace(microsecond=0) + self.every
        at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        last_year = at.astimezone(self.zone).year + SEARCH_YEARS
        minutes, hours, _, months, _ = self.fields
        while True:
            local = at.astimezone(self.zone)
            if local.year > last_year:
                return None
            if local.month not in months or not self._day_matches(local):
                at = self._next_local_day(local)
            elif local.hour not in hours:
                at += timedelta(minutes=60 - local.minute)  # the next hour boundary, in absolute time
            elif local.minute not in minutes:
                at += timedelta(minutes=1)
            else:
                return at

    def _next_local_day(self, local: datetime) -> datetime:
        """The first instant of the next wall-clock day in the zone (after a gap at midnight, its end)."""
        day = local.date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).astimezone(UTC)

    def interval(self, at: datetime | None = None) -> timedelta:
        """The longest gap between consecutive runs over the week after `at` (now by default)."""
        if self.every is not None:
            return self.every
        start = self._must_next(at or datetime.now(UTC))
        gap, run, end = timedelta(0), start, start + timedelta(days=8)
        while run < end:
            nxt = self._must_next(run)
            gap = max(gap, nxt - run)
            run = nxt
        return gap

    def _must_next(self, after: datetime) -> datetime:
        nxt = self.next_after(after)
        if nxt is None:
            raise CronError(self.expression, f"never runs (no time matches within {SEARCH_YEARS} years)")
        return nxt


def _zone(name: str) -> tzinfo:
    """Go's time.LoadLocation: "" and "UTC" are UTC, "Local" the process's zone (UTC in Velero's container)."""
    if name in ("", "UTC", "Local"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"provided bad location {name}: unknown time zone {name}") from None


def _number(text: str, names: dict[str, int]) -> int:
    """robfig's parseIntOrName / mustParseInt."""
    if text.lower() in names:
        return names[text.lower()]
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if value < 0:
        raise ValueError(f"negative number ({value}) not allowed: {text}")
    return value


def _range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    """robfig's getRange: `number | number "-" number [ "/" number ]` (or `*`/`?`); the values and the star bit."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    star = low_high[0] in ("*", "?")
    if star:
        start, end = bounds.low, bounds.high
    elif len(low_high) > 2:
        raise ValueError(f"too many hyphens: {expr}")
    else:
        start = _number(low_high[0], bounds.names)
        end = _number(low_high[-1], bounds.names)
    step = 1
    if len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], {})
        end = bounds.high if len(low_high) == 1 else end  # "N/step" means "N-max/step"
        star = star and step <= 1
    if start < bounds.low:
        raise ValueError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise ValueError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _field(text: str, bounds: _Bounds) -> tuple[frozenset[int], bool]:
    """robfig's getField: a comma-separated list of ranges."""
    values: set[int] = set()
    star = False
    for part in (p for p in text.split(",") if p):
        got, part_star = _range(part, bounds)
        values |= got
        star = star or part_star
    return frozenset(values), star


def _descriptor(spec: str, zone: tzinfo) -> tuple[str, timedelta | None]:
    """A five-field equivalent of a named schedule, or the delay of `@every`."""
    if spec in DESCRIPTORS:
        return DESCRIPTORS[spec], None
    if spec.startswith("@every "):
        try:
            seconds = _go_duration_seconds(spec[len("@every "):])
        except ValueError as exc:
            raise ValueError(f"failed to parse duration {spec}: {exc}") from None
        return "", timedelta(seconds=max(1, int(seconds)))  # robfig Every(): at least a second, whole seconds
    raise ValueError(f"unrecognized descriptor: {spec}")


def _parse(spec: str, expression: str) -> Cron:
    if not spec:
        raise ValueError("empty spec string")
    zone: tzinfo = UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, eq = spec.find(" "), spec.find("=")
        if space < 0:
            raise ValueError(f"provided bad location {spec[eq + 1:]}: no schedule after the time zone")
        zone = _zone(spec[eq + 1:space])
        spec = spec[space:].strip()
    every = None
    if spec.startswith("@"):
        spec, every = _descriptor(spec, zone)
        if every is not None:
            return Cron(expression, zone, every=every)
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [_field(text, bounds) for text, bounds in zip(fields, _BOUNDS, strict=True)]
    return Cron(expression, zone, tuple(values for values, _ in parsed), dom_star=parsed[2][1],
                dow_star=parsed[4][1])


def parse(expression: str) -> Cron:
    """A Velero schedule expression as robfig/cron's ParseStandard reads it; CronError with robfig's reason."""
    try:
        return _parse(expression or "", expression)
    except ValueError as exc:
        raise CronError(expression, str(exc)) from None
