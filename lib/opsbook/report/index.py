"""The runs portal: `runs/index.html` and one page per runbook and env, as static files.

- `index.html`: one row per runbook or notebook and env: the latest status, its age, its
  headline, a strip of the last runs (each a link to its report), RTO and RPO against
  their targets for drills, and links to the latest evidence (`report.xlsx` when a run
  left one); a filter box narrows the rows.
- `<env>/<name>.html`: that runbook's run history, newest first, with charts for drills
  and a link to every file of every run. It sits beside the folder of its runs, which
  holds run folders only.

Every link is relative and nothing is fetched, so the same pages work from `file://`
and from an S3 mirror (`publish_portal` writes them beside the mirrored run folders).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from opsbook.mirror import content_type, parse_s3_url
from opsbook.report.catalog import HEADLINE_KEYS, INCOMPLETE, Run, by_runbook, headline, local_runs, s3_runs
from opsbook.report.chart import chart_svg, describe, metric_points

__all__ = ["HEADLINE_KEYS", "build_portal", "headline", "publish_portal", "write_index"]

STRIP = 10  # runs in a dashboard row's strip
SECTIONS = {"runbook": "Runbooks (on-call)", "notebook": "Notebooks (analysis)", "": "Other runs"}
# evidence files, in the order their links are shown; any other file of a run follows
EVIDENCE = ("report.html", "report.xlsx", "output.ipynb", "results.json")
_TEMPLATES = Environment(loader=PackageLoader("opsbook.report", "templates"), autoescape=True)


def _page_of(env: str, name: str) -> str:
    """Where a runbook's page sits, relative to the runs root."""
    return f"{env}/{name}.html"


def _age(started: datetime | None, now: datetime) -> str:
    if started is None:
        return "unknown"
    seconds = (now - started).total_seconds()
    for limit, unit, size in ((90, "s", 1), (5400, "min", 60), (129600, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds / 86400:.0f} days ago"


def _report_of(run: Run, base: str = "") -> str:
    """The link a run's status opens: its report, else its results, else its folder."""
    file = next((f for f in ("report.html", "results.json") if run.has(f)), "")
    return f"{base}{run.folder}/{file}"


def _links(run: Run, base: str) -> list[tuple[str, str]]:
    ordered = [f for f in EVIDENCE if run.has(f)] + [f for f in run.files if f not in EVIDENCE]
    return [(file, f"{base}{run.folder}/{file}") for file in ordered]


def _charts(runs: Sequence[Run], base: str, compact: bool) -> list[tuple[str, Markup, str]]:
    """(title, chart, caption) of RTO and RPO for a runbook's drill runs (none when it is not a drill)."""
    out = []
    for metric in ("rto", "rpo"):
        points = metric_points(runs, metric, href=f"{base}{{folder}}/report.html")
        if points:
            title = metric.upper()
            size = {"width": 120, "height": 28} if compact else {}
            out.append((title, Markup(chart_svg(points, title, compact=compact, **size)), describe(points, title)))
    return out


def _row(key: tuple[str, str, str], runs: list[Run], now: datetime) -> dict[str, Any]:
    kind, name, env = key
    latest = runs[0]
    links = [("latest report", _report_of(latest))]
    if latest.has("report.xlsx"):
        links.append(("report.xlsx", f"{latest.folder}/report.xlsx"))
    links.append(("all runs", _page_of(env, name)))
    strip = [{"status": r.status, "href": _report_of(r),
              "title": f"{r.status} {r.started_at:%Y-%m-%d %H:%M} run {r.run_id}" if r.started_at else r.status}
             for r in reversed(runs[:STRIP])]
    charts = [Markup("<span class='spark' title='{}'>{} {}</span>").format(caption, title, svg)
              for title, svg, caption in _charts(runs, "", compact=True)]
    search = " ".join([kind, name, env, latest.status, latest.headline]).lower()
    return {"name": name, "env": env, "latest": latest, "age": _age(latest.started_at, now), "strip": strip,
            "charts": charts, "links": links, "page": _page_of(env, name), "search": search}


def _runbook_page(key: tuple[str, str, str], runs: list[Run]) -> str:
    kind, name, env = key
    base = "../"  # the page sits at <env>/<name>.html
    rows = [{"run_id": r.run_id, "status": r.status, "headline": r.headline,
             "started": f"{r.started_at:%Y-%m-%d %H:%M:%S}" if r.started_at else "unknown",
             "duration": "—" if r.duration_s is None else f"{r.duration_s:.1f} s",
             "links": _links(r, base), "search": " ".join([r.run_id, r.status, r.headline]).lower()}
            for r in runs]
    return _TEMPLATES.get_template("runbook.html").render(
        name=name, env=env, kind=kind, runs=rows, home=f"{base}index.html",
        passed=sum(r.ok for r in runs), failed=sum(r.status == "failed" for r in runs),
        incomplete=sum(r.status == INCOMPLETE for r in runs),
        charts=[(svg, caption) for _, svg, caption in _charts(runs, base, compact=False)])


def build_portal(runs: Sequence[Run], now: datetime | None = None) -> dict[str, str]:
    """{page path relative to the runs root: HTML} for the dashboard and every runbook page."""
    now = now or datetime.now(UTC)
    pages: dict[str, str] = {}
    sections: dict[str, list[dict[str, Any]]] = {}
    groups = list(by_runbook(runs))
    for key, group in groups:
        sections.setdefault(SECTIONS.get(key[0], SECTIONS[""]), []).append(_row(key, group, now))
        pages[_page_of(key[2], key[1])] = _runbook_page(key, group)
    ordered = [(title, sections[title]) for title in SECTIONS.values() if title in sections]
    pages["index.html"] = _TEMPLATES.get_template("index.html").render(
        sections=ordered, groups=groups, total=len(runs), strip=STRIP, written=f"{now:%Y-%m-%d %H:%M}")
    return pages


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` whole: a reader (or a parallel run) never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_index(runs_root: Path) -> Path:
    """(Re)write the portal under a local runs root from its run folders; returns index.html."""
    runs_root = Path(runs_root)
    for page, text in build_portal(local_runs(runs_root)).items():
        _write_atomic(runs_root / page, text)
    return runs_root / "index.html"


def publish_portal(s3: Any, uri: str) -> list[str]:
    """(Re)write the portal in an S3 mirror from the run folders mirrored there; returns the keys."""
    bucket, prefix = parse_s3_url(uri)
    keys = []
    for page, text in build_portal(s3_runs(s3, uri)).items():
        key = "/".join(filter(None, [prefix, page]))
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type(page))
        keys.append(key)
    return keys
