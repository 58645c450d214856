"""`opsbook demo --jobs 2` against `--jobs 1` on the session's sandbox: the same statuses and
headlines, every run in the index. The demo runs over a checkout holding some of the notebooks
(OPSBOOK_ROOT): holders of the `rds` lock (the health check shares it, two RDS drills hold it
alone) and one that locks nothing, so both the waiting and the running together happen."""

from __future__ import annotations

import os
from pathlib import Path

from opsbook.demo import outcomes
from opsbook.notebooks import all_notebooks

from tests.e2e.helpers import ROOT, opsbook

SUBSET = ["runbooks/certificate", "runbooks/health-check", "runbooks/rds-failover-drill",
          "runbooks/rds-snapshot-restore-drill"]


def _checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for name in SUBSET:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.ipynb").symlink_to(ROOT / f"{name}.ipynb")
    (root / "params").symlink_to(ROOT / "params")
    return root


def test_two_jobs_give_the_results_of_one_and_index_every_run(sandbox, tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    env = {**os.environ, "OPSBOOK_ROOT": str(checkout), "COLUMNS": "200"}
    one = opsbook("demo", "--jobs", "1", "--runs-dir", str(tmp_path / "one"), env=env)
    two = opsbook("demo", "--jobs", "2", "--runs-dir", str(tmp_path / "two"), env=env)
    assert one.returncode == 0, one.stdout + one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    names = {name.rsplit("/", 1)[1] for name in SUBSET}
    serial, parallel = outcomes(tmp_path / "one"), outcomes(tmp_path / "two")
    assert set(serial) == names and parallel == serial
    # results print in the notebooks' order whatever finished first
    order = [line.split()[1] for line in two.stdout.splitlines() if line.startswith(("passed ", "failed "))]
    assert order == [f"{p.parent.name}/{p.name}" for p in all_notebooks(checkout)] and len(order) == len(SUBSET)
    index = (tmp_path / "two" / "index.html").read_text()
    for run in (tmp_path / "two").glob("*/*/*/results.json"):
        assert f"{run.parent.relative_to(tmp_path / 'two')}/report.html" in index
