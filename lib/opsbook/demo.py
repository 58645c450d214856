"""The main job: run every runbook and notebook against one environment, then index the runs;
and the same on generated estates (`check_estates`), each in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
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


@dataclass
class EstateResult:
    seed: int
    params: Path
    ok: bool
    failed: list[str]  # notebooks that failed (or the reason the demo could not start)


def check_estates(base: int, count: int, runs_root: Path, console: Console | None = None) -> list[EstateResult]:
    """The demo on `count` generated estates from seed `base`, each in a subprocess (moto's state is
    per process); their params go to `<runs_root>/estates/`, their runs under `<runs_root>/<env>/`."""
    from opsbook.sandbox.estates import seeds, write_estate

    console = console or Console()
    results = []
    for seed in seeds(base, count):
        path = write_estate(seed, runs_root / "estates")
        params = load_params(path)
        console.print(f"estate {seed}: {params.region}, {len(params.rds)} RDS, {len(params.namespaces)} "
                      f"namespaces ({path})", highlight=False)
        proc = subprocess.run([sys.executable, "-c", "from opsbook.cli import app; app()", "demo", "--env",
                               str(path), "--runs-dir", str(runs_root)], capture_output=True, text=True)
        failed = sorted({json.loads(r.read_text())["name"] for r in (runs_root / params.env).glob("*/*/results.json")
                         if json.loads(r.read_text())["status"] != "passed"})
        if proc.returncode and not failed:
            failed = [f"demo exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"]
        results.append(EstateResult(seed, path, proc.returncode == 0, failed))
    table = Table("seed", "params", "status", "failed", title=f"opsbook demo on {count} generated estates")
    for r in results:
        table.add_row(str(r.seed), str(r.params), "[green]passed[/]" if r.ok else "[red]failed[/]", ", ".join(r.failed))
    console.print(table)
    console.print(f"replay: OPSBOOK_ESTATE_SEED={base} opsbook estates check --count {count}")
    return results
