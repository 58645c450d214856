"""Drill RTO and RPO against their targets over time, as inline SVG (no script, no network).

The portal is static files opened from `file://` or an S3 mirror, so a chart is markup
drawn here: the measured values as a line of dots (green within target, red over it), the
target as a dashed step line (targets may change between runs), and a grey cross on the
axis for a run whose value was not measured, so a gap is seen, never drawn as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

GREEN, RED, GREY, INK = "#1a7f37", "#cf222e", "#8c959f", "#57606a"


@dataclass(frozen=True)
class Point:
    """One run on a chart: when, the measured value (None: not measured) and its target."""

    when: datetime
    value: float | None
    target: float | None
    label: str  # the tooltip: which run, its verdict
    href: str = ""  # the run's report, relative to the page

    @property
    def over_target(self) -> bool:
        return self.value is not None and self.target is not None and self.value > self.target


def metric_points(runs: Sequence, metric: str, href: str = "{folder}/report.html") -> list[Point]:
    """Points for `metric` ('rto' or 'rpo') from drill runs (catalog.Run with a drill record), oldest first."""
    points = []
    for run in sorted((r for r in runs if r.drill and r.started_at), key=lambda r: r.started_at):
        value, target = run.drill.get(f"{metric}_s"), run.drill.get(f"{metric}_target_s")
        shown = "not measured" if value is None else f"{value:g} s"
        label = (f"{run.started_at:%Y-%m-%d %H:%M} run {run.run_id}: {metric.upper()} {shown}"
                 f"{'' if target is None else f' (target {target:g} s)'}, verdict {run.drill.get('verdict')}")
        points.append(Point(run.started_at, value, target, label,
                            href.format(folder=run.folder) if run.has("report.html") else ""))
    return points


@dataclass(frozen=True)
class _Frame:
    """Where the plot area sits in the picture, and the ranges it maps."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    t0: float
    t1: float
    ymax: float

    def x(self, when: datetime) -> float:
        span = self.t1 - self.t0
        share = 0.5 if span <= 0 else (when.timestamp() - self.t0) / span
        return self.left + share * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        return self.height - self.bottom - value / self.ymax * (self.height - self.top - self.bottom)


def _frame(points: Sequence[Point], width: int, height: int, compact: bool) -> _Frame:
    values = [v for p in points for v in (p.value, p.target) if v is not None]
    times = [p.when.timestamp() for p in points]
    margins = (3, 3, 3, 3) if compact else (52, 90, 24, 30)
    return _Frame(width, height, *margins, min(times), max(times), (max(values, default=0) or 1) * 1.15)


def _dot(f: _Frame, p: Point, radius: float) -> str:
    title = f"<title>{escape(p.label)}</title>"
    if p.value is None:
        x, y = f.x(p.when), f.y(0)
        shape = (f"<path d='M{x - radius:.1f},{y - radius:.1f}l{2 * radius:.1f},{2 * radius:.1f}"
                 f"m0,{-2 * radius:.1f}l{-2 * radius:.1f},{2 * radius:.1f}' stroke='{GREY}' stroke-width='2'>"
                 f"{title}</path>")
    else:
        colour = RED if p.over_target else GREEN
        shape = (f"<circle cx='{f.x(p.when):.1f}' cy='{f.y(p.value):.1f}' r='{radius}' fill='{colour}'>"
                 f"{title}</circle>")
    return f"<a href='{escape(p.href)}'>{shape}</a>" if p.href else shape


def _polyline(f: _Frame, pairs: list[tuple[datetime, float]], style: str) -> str:
    if not pairs:
        return ""
    coords = " ".join(f"{f.x(t):.1f},{f.y(v):.1f}" for t, v in pairs)
    return f"<polyline points='{coords}' fill='none' {style}/>"


def _target_steps(points: Sequence[Point]) -> list[tuple[datetime, float]]:
    """The target as a step line: each run's target holds until the next run's."""
    steps: list[tuple[datetime, float]] = []
    for p in points:
        if p.target is None:
            continue
        if steps and steps[-1][1] != p.target:
            steps.append((p.when, steps[-1][1]))
        steps.append((p.when, p.target))
    return steps


def _labels(f: _Frame, points: Sequence[Point], title: str) -> str:
    text = f"font-size='11' fill='{INK}' font-family='sans-serif'"
    bottom = f.height - f.bottom
    parts = [f"<text x='{f.left}' y='14' {text} font-weight='bold'>{escape(title)}</text>",
             f"<line x1='{f.left}' y1='{bottom}' x2='{f.width - f.right}' y2='{bottom}' stroke='{GREY}'/>",
             f"<text x='{f.left - 6}' y='{bottom}' {text} text-anchor='end'>0 s</text>",
             f"<text x='{f.left - 6}' y='{f.top + 8}' {text} text-anchor='end'>{f.ymax / 1.15:,.0f} s</text>",
             f"<text x='{f.left}' y='{f.height - 8}' {text}>{points[0].when:%Y-%m-%d %H:%M}</text>"]
    if len(points) > 1:
        parts.append(f"<text x='{f.width - f.right}' y='{f.height - 8}' {text} text-anchor='end'>"
                     f"{points[-1].when:%Y-%m-%d %H:%M}</text>")
    last_target = next((p.target for p in reversed(points) if p.target is not None), None)
    if last_target is not None:
        parts.append(f"<text x='{f.width - f.right + 6}' y='{f.y(last_target) + 4:.1f}' {text}>"
                     f"target {last_target:g} s</text>")
    return "".join(parts)


def chart_svg(points: Sequence[Point], title: str, width: int = 620, height: int = 200, compact: bool = False) -> str:
    """An inline <svg> of `points` (oldest first); compact: a sparkline without text."""
    if not points:
        return ""
    f = _frame(points, width, height, compact)
    measured = [(p.when, p.value) for p in points if p.value is not None]
    body = [
        "" if compact else _labels(f, points, title),
        _polyline(f, _target_steps(points), f"stroke='{INK}' stroke-width='1' stroke-dasharray='5 4' class='target'"),
        _polyline(f, measured, f"stroke='{INK}' stroke-width='1.5' class='measured'"),
        *(_dot(f, p, 2.5 if compact else 4) for p in points),
    ]
    summary = describe(points, title)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' role='img' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' aria-label='{escape(summary)}'><title>{escape(summary)}</title>"
            + "".join(body) + "</svg>")


def describe(points: Sequence[Point], title: str) -> str:
    """What the chart shows, in words (its caption and accessible name)."""
    over = sum(p.over_target for p in points)
    missing = sum(p.value is None for p in points)
    untargeted = sum(p.value is not None and p.target is None for p in points)
    words = [f"{title}: {len(points)} run(s)", f"{over} over target"]
    if missing:
        words.append(f"{missing} not measured")
    if untargeted:
        words.append(f"{untargeted} without a target")
    return ", ".join(words)
