"""`report.html`: the executed notebook with code hidden, under a header saying how the run went
and, for a finance run, what its data is and how fresh (its `about` record: source, metric,
the CUR's last export time, months complete)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

TEMPLATES = Path(__file__).parent / "templates" / "nbconvert"  # lab's template without CDN scripts


def _freshness(results: dict[str, Any]) -> list[tuple[str, str]]:
    about = results.get("records", {}).get("about")
    return [("data", about["line"])] if isinstance(about, dict) and about.get("line") else []


def _header(results: dict[str, Any]) -> str:
    colour = "#1a7f37" if results["status"] == "passed" else "#cf222e"
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in [
            ("environment", results["env"]), ("run id", results["run_id"]),
            ("started (UTC)", results["started_at"]), ("duration", f"{results['duration_s']:.1f} s"),
            ("git commit", results.get("git_commit") or "—"),
            *_freshness(results),
        ]
    )
    error = results.get("error")
    failure = ""
    if error:
        failure = (f"<p><b>Failed in cell {error.get('cell')}:</b> "
                   f"{html.escape(error['ename'])}: {html.escape(error['evalue'])}</p>")
    return (f"<div style='border-left:6px solid {colour};padding:0.5em 1em;margin-bottom:1em'>"
            f"<h2 style='margin:0;color:{colour}'>{html.escape(results['name'])}: {results['status'].upper()}</h2>"
            f"<table>{rows}</table>{failure}</div>")


def write_report(nb: nbformat.NotebookNode, results: dict[str, Any], path: Path) -> Path:
    """Render the executed notebook for readers who are not engineers (no code, no prompts)."""
    nb = nbformat.from_dict(nb)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(_header(results)))
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            template_name="lab", template_file="offline.html.j2",
                            extra_template_paths=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    path.write_text(body)
    return path
