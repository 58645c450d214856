"""`opsbook list`, `opsbook run NAME --env ENV [-p key=value ...]` and `opsbook demo`."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from opsbook.commands import COMMANDS
from opsbook.commands.common import ENV_OPTION, console, err_console, handles_errors, styled
from opsbook.commands.output import FORMAT_OPTION, Format, emit
from opsbook.params import load_params

# nbformat, papermill and the runner load lazily: `opsbook params check` stays quick.


@COMMANDS.register("list")
@handles_errors
def list_notebooks(fmt: Format = FORMAT_OPTION) -> None:
    """Every runbook and notebook with its purpose and parameters.

    Columns: name, kind, purpose, parameters (json: each parameter with its default).

    Example: opsbook list --format json
    """
    from opsbook.notebooks import all_notebooks, describe

    rows = []
    for path in all_notebooks():
        info = describe(path)
        params = {k: _literal(v["default"]) for k, v in info.parameters.items() if k != "env"}
        rows.append({"name": info.name, "kind": info.kind, "purpose": info.purpose, "parameters": params})
    emit(pd.DataFrame(rows, columns=["name", "kind", "purpose", "parameters"]), fmt, "runbooks and notebooks",
         "no runbooks or notebooks found")


def _literal(source: str) -> Any:
    """A parameter's default as a value (papermill gives its source text), else that text."""
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source


@COMMANDS.register("run")
@handles_errors
def run(
    name: str = typer.Argument(..., help="Runbook or notebook file stem, e.g. health-check."),
    env: str = ENV_OPTION,
    param: list[str] = typer.Option([], "--param", "-p", help="key=value, typed like the notebook's default."),
    mirror: str = typer.Option(None, "--mirror", help="Also copy the run folder to s3://bucket/prefix."),
    runs_dir: Path = typer.Option(None, "--runs-dir", help="Where run folders go (default: runs/)."),
) -> None:
    """Run NAME against ENV and write runs/<env>/<name>/<timestamp>-<run-id>/, then refresh runs/index.html.

    Exits 1 when the run fails, printing the failing cell's error.

    Example: opsbook run rds-pitr-drill --env dev-pl -p timeout_minutes=90 --mirror s3://ops-evidence/opsbook
    """
    from opsbook.mirror import parse_s3_url
    from opsbook.notebooks import describe, find_notebook, parse_overrides
    from opsbook.params import project_root
    from opsbook.report.index import write_index
    from opsbook.runner import describe_failure, run_notebook

    params = load_params(env)
    info = describe(find_notebook(name))
    overrides = parse_overrides(info, param)
    if mirror:
        parse_s3_url(mirror)
    with _progress() as on_cell:
        result = run_notebook(str(info.path), params, overrides, runs_root=runs_dir, mirror=mirror, on_cell=on_cell)
    write_index(runs_dir or project_root() / "runs")
    if result.ok:
        console.print(styled("passed", "green", f"{result.name} on {result.env} in {result.duration_s:.1f}s -> "
                                                f"{result.run_dir}"), soft_wrap=True)
        return
    err_console.print(styled("failed", "bold red", describe_failure(result)), soft_wrap=True)
    raise typer.Exit(1)


class _progress:
    """Per-cell progress on a terminal; silent when output is not a terminal."""

    def __enter__(self):
        if not console.is_terminal:
            return None
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.progress.start()
        self.task = None

        def on_cell(event: str, index: int, total: int, label: str) -> None:
            if self.task is None:
                self.task = self.progress.add_task("", total=total)
            if event == "start":
                self.progress.update(self.task, description=f"cell {index + 1}: {label[:50]}")
            else:
                self.progress.update(self.task, completed=index + 1)

        return on_cell

    def __exit__(self, *exc):
        if console.is_terminal:
            self.progress.stop()


@COMMANDS.register("demo")
@handles_errors
def demo(
    env: str = typer.Option("sandbox", "--env", "-e", help="Environment to run everything against."),
    runs_dir: Path = typer.Option(None, "--runs-dir", help="Where run folders go (default: runs/)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help="Runs at a time (default: the number of cores).",
                             min=1),
) -> None:
    """The main job: every runbook and notebook on the sandbox, then runs/index.html.

    Example: opsbook demo --env sandbox
    """
    from opsbook.demo import run_all

    summary = run_all(env, runs_root=runs_dir, console=console, jobs=jobs)
    if not all(r.ok for r in summary.results):
        raise typer.Exit(1)

