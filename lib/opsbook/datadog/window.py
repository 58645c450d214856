"""Time windows given as notebook parameters: a span, or a calendar month (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opsbook.errors import UsageError


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def epoch(self) -> tuple[int, int]:
        return int(self.start.timestamp()), int(self.end.timestamp())

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC"


def parse_moment(value: str | datetime, name: str) -> datetime:
    """An ISO-8601 date or date-time (UTC when no zone is given)."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"parameter {name}: expected an ISO date-time such as 2025-03-14T09:30, got {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def span(start: str | datetime, end: str | datetime, now: datetime | None = None) -> Window:
    """The window [start, end]; an empty end means now."""
    now = now or datetime.now(UTC)
    window = Window(parse_moment(start, "start"), parse_moment(end, "end") if end else now)
    if window.end <= window.start:
        raise UsageError(f"parameters start/end: expected start before end, got {window}")
    return window


def month(value: str = "", now: datetime | None = None) -> Window:
    """A calendar month 'YYYY-MM'; empty means the last full month."""
    now = now or datetime.now(UTC)
    if value:
        try:
            first = datetime.strptime(value.strip(), "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise UsageError(f"parameter month: expected YYYY-MM such as 2025-03, got {value!r}") from None
    else:
        first = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    if first > now:
        raise UsageError(f"parameter month: {value} has not started yet",
                         remedy="pick the current month or an earlier one, or leave month empty for the last full one")
    return Window(first, following)


def label(window: Window) -> str:
    return f"{window.start:%Y-%m}"
