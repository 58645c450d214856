"""The main job: run every runbook and notebook against one environment, then index the runs.

Runs go `jobs` at a time (default: the machine's cores), in processes of their own, on one
sandbox. A notebook that changes or reads a part of the estate other notebooks change says so
in its metadata, as locks on parts named in LOCKS:

    "metadata": {"opsbook": {"locks": {"rds": "exclusive", "drills": "shared"}}}

Two notebooks conflict when they hold a lock of the same name and not both "shared". A
notebook starts only once every notebook before it (in `opsbook list` order) that it
conflicts with has finished, so conflicting notebooks never overlap and run in the order of a
run one after another: the results are those of `--jobs 1`. Results print in that order too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from rich.console import Console
from rich.table import Table
from rich.text import Text

from opsbook.errors import UsageError
from opsbook.notebooks import all_notebooks
from opsbook.params import Params, load_params, project_root
from opsbook.report.index import headline, write_index
from opsbook.runner import RunResult, describe_failure, preflight, run_notebook

# The parts of an estate notebooks lock; a name says what a holder changes or depends on.
LOCKS = {
    "rds": "the params' RDS instances: their state, data and snapshots (a failover makes one refuse connections)",
    "velero": "Velero's backups and restores of the cluster",
    "workloads": "the cluster's namespaces, pods and volumes (a restore drill adds some for a while)",
    "drills": "what running drills leave: tagged resources, Datadog events, drill runs in runs/",
}
MODES = ("shared", "exclusive")


@dataclass(frozen=True)
class Job:
    path: Path
    locks: dict[str, str] = field(default_factory=dict)

    def conflicts_with(self, other: Job) -> bool:
        return any(name in other.locks and "exclusive" in (mode, other.locks[name])
                   for name, mode in self.locks.items())


def locks_of(path: Path) -> dict[str, str]:
    """A notebook's declared locks (metadata opsbook.locks), checked against LOCKS and MODES."""
    declared = nbformat.read(path, as_version=4).metadata.get("opsbook", {}).get("locks", {})
    for name, mode in declared.items():
        if name not in LOCKS or mode not in MODES:
            raise UsageError(f"{path}: metadata opsbook.locks: {name!r}: {mode!r}; expected a lock of "
                             f"{', '.join(LOCKS)} held {' or '.join(MODES)}")
    return dict(declared)


def startable(jobs: list[Job], done: set[int], started: set[int]) -> list[int]:
    """The jobs not started yet whose earlier conflicting jobs have all finished."""
    return [i for i, job in enumerate(jobs) if i not in started
            and all(k in done for k in range(i) if jobs[k].conflicts_with(job))]


@dataclass
class DemoSummary:
    results: list[RunResult]
    index: Path


Report = Callable[[int, RunResult], None]


def run_all(env: str = "sandbox", runs_root: Path | None = None, console: Console | None = None,
            jobs: int | None = None) -> DemoSummary:
    console = console or Console()
    params = load_params(env)
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise UsageError(f"--jobs: expected at least 1, got {jobs}")
    plan = [Job(path, locks_of(path)) for path in all_notebooks()]
    preflight(params)  # starts the sandbox once, for every run below
    runs_root = Path(runs_root or project_root() / "runs")
    console.print(f"running {len(plan)} notebooks on {params.env}, {jobs} at a time", highlight=False)
    printer = _InOrder(plan, console)
    if jobs == 1:
        results = [_run(job, params, runs_root, printer, i) for i, job in enumerate(plan)]
    else:
        results = _run_parallel(plan, params, runs_root, jobs, printer)
    index = write_index(runs_root)
    table = Table("notebook", "status", "duration", "headline", title=f"opsbook demo on {params.env}")
    for r in results:
        colour = "green" if r.ok else "red"
        table.add_row(Text(r.name), Text(r.status, style=colour), f"{r.duration_s:.1f}s", Text(headline(r.records)))
    console.print(table)
    console.print(f"index: {index}")
    return DemoSummary(results, index)


def _run(job: Job, params: Params, runs_root: Path, report: Report, i: int) -> RunResult:
    result = run_notebook(str(job.path), params, runs_root=runs_root)
    report(i, result)
    return result


def _run_parallel(plan: list[Job], params: Params, runs_root: Path, jobs: int, report: Report) -> list[RunResult]:
    """Each run in a worker process (they reach the sandbox through the env exported above)."""
    results: dict[int, RunResult] = {}
    started: set[int] = set()
    running: dict[Future[RunResult], int] = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while len(results) < len(plan):
            for i in startable(plan, set(results), started):
                if len(running) < jobs:
                    started.add(i)
                    running[pool.submit(run_notebook, str(plan[i].path), params, runs_root=runs_root)] = i
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                results[i] = future.result()
                report(i, results[i])
    return [results[i] for i in range(len(plan))]


class _InOrder:
    """Prints each result once every run listed before it has printed: the same order at any --jobs."""

    def __init__(self, plan: list[Job], console: Console) -> None:
        self.plan, self.console = plan, console
        self.waiting: dict[int, RunResult] = {}
        self.next = 0

    def __call__(self, i: int, result: RunResult) -> None:
        self.waiting[i] = result
        while self.next in self.waiting:
            done, path = self.waiting.pop(self.next), self.plan[self.next].path
            colour = "green" if done.ok else "red"
            line = Text(done.status, style=colour).append(f" {path.parent.name}/{path.name} in {done.duration_s:.1f}s")
            self.console.print(line, highlight=False)
            if not done.ok:  # values from the run (errors, names) are never read as markup
                self.console.print(Text(describe_failure(done), style="red"), highlight=False)
            self.next += 1


def outcomes(runs_root: Path) -> dict[str, tuple[str, str]]:
    """{notebook: (status, headline)} of the runs under `runs_root`: what two demos of one estate
    must agree on (a drill's measured RTO and RPO are numbers of the moment, so they are masked)."""
    out = {}
    for path in runs_root.glob("*/*/*/results.json"):
        results = json.loads(path.read_text())
        line = headline(results["records"])
        if "drill" in results["records"]:
            line = re.sub(r"\d[\d.,]*", "#", line)
        out[results["name"]] = (results["status"], line)
    return out
