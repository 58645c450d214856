"""The main job: run every runbook and notebook against one environment, then index the runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from opsbook.notebooks import all_notebooks
from opsbook.params import load_params, project_root
from opsbook.report.index import headline, write_index
from opsbook.runner import RunResult, describe_failure, preflight, run_notebook


@dataclass
class DemoSummary:
    results: list[RunResult]
    index: Path


def run_all(env: str = "sandbox", runs_root: Path | None = None, console: Console | None = None) -> DemoSummary:
    console = console or Console()
    params = load_params(env)
    preflight(params)  # starts the sandbox once, for every run below
    runs_root = Path(runs_root or project_root() / "runs")
    results = []
    for path in all_notebooks():
        console.print(f"running {path.parent.name}/{path.name} ...", highlight=False)
        result = run_notebook(str(path), params, runs_root=runs_root)
        results.append(result)
        if not result.ok:
            console.print(f"[red]{describe_failure(result)}[/]", highlight=False)
    index = write_index(runs_root)
    table = Table("notebook", "status", "duration", "headline", title=f"opsbook demo on {params.env}")
    for r in results:
        colour = "green" if r.ok else "red"
        table.add_row(r.name, f"[{colour}]{r.status}[/]", f"{r.duration_s:.1f}s", headline(r.records))
    console.print(table)
    console.print(f"index: {index}")
    return DemoSummary(results, index)
