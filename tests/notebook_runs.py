"""The one way tests run a runbook or notebook: through opsbook's runner, as `opsbook run` does.

A run leaves its evidence (output.ipynb, report.html, results.json) under `runs_root`, so
a failing test points at the executed notebook; `run_passing` fails the test with the
runner's own description of the failing cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsbook.params import Params
from opsbook.runner import RunResult, describe_failure, run_notebook


def run(name: str | Path, runs_root: Path, env: str | Params = "sandbox", overrides: dict[str, Any] | None = None,
        mirror: str | None = None) -> RunResult:
    """Run a notebook (name or path) with parameter overrides; the result may be a failure."""
    return run_notebook(str(name), env, overrides, runs_root=runs_root, mirror=mirror)


def run_passing(name: str | Path, runs_root: Path, env: str | Params = "sandbox",
                overrides: dict[str, Any] | None = None, mirror: str | None = None) -> RunResult:
    """Run a notebook and fail the test, naming the failing cell, unless the run passed."""
    result = run(name, runs_root, env, overrides, mirror)
    assert result.ok, describe_failure(result)
    return result
