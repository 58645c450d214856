"""`runs/index.html`: every run, newest first, with its status and headline results."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

# Records shown in the index, in this order, when a notebook recorded them.
HEADLINE_KEYS = ("headline", "drill", "summary", "totals", "backtest")


def headline(records: dict[str, Any], width: int = 160) -> str:
    """A one-line summary of a run's records."""
    for key in HEADLINE_KEYS:
        value = records.get(key)
        if isinstance(value, dict):
            if key == "drill":
                rto, rpo = value.get("rto_s"), value.get("rpo_s")
                text = f"{value.get('verdict')}: RTO {_num(rto)} s, RPO {_num(rpo)} s"
                if value.get("reason"):
                    text += f" ({value['reason']})"
                return text[:width]
            return ", ".join(f"{k} {_num(v)}" for k, v in value.items() if not isinstance(v, dict | list))[:width]
    scalars = [f"{k} {_num(v)}" for k, v in records.items() if isinstance(v, int | float | str)]
    return ", ".join(scalars[:4])[:width]


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


def load_runs(runs_root: Path) -> list[dict[str, Any]]:
    runs = []
    for path in runs_root.glob("*/*/*/results.json"):
        try:
            results = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        results["_dir"] = path.parent
        runs.append(results)
    return sorted(runs, key=lambda r: r.get("started_at", ""), reverse=True)


def write_index(runs_root: Path) -> Path:
    rows = []
    for run in load_runs(runs_root):
        rel = run["_dir"].relative_to(runs_root)
        colour = "#1a7f37" if run["status"] == "passed" else "#cf222e"
        rows.append(
            "<tr>"
            f"<td>{html.escape(run['started_at'][:19])}</td><td>{html.escape(run['env'])}</td>"
            f"<td><a href='{rel}/report.html'>{html.escape(run['name'])}</a></td>"
            f"<td style='color:{colour};font-weight:bold'>{run['status']}</td>"
            f"<td>{run['duration_s']:.1f} s</td><td>{html.escape(headline(run.get('records', {})))}</td>"
            f"<td><a href='{rel}/output.ipynb'>notebook</a> · <a href='{rel}/results.json'>results</a></td>"
            "</tr>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>opsbook runs</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}</style></head><body>"
        "<h1>opsbook runs</h1><table><tr><th>started (UTC)</th><th>env</th><th>run</th><th>status</th>"
        "<th>duration</th><th>headline</th><th>evidence</th></tr>" + "".join(rows) + "</table></body></html>"
    )
    runs_root.mkdir(parents=True, exist_ok=True)
    index = runs_root / "index.html"
    index.write_text(page)
    return index
