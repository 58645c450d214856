"""The drill runbooks and the history notebook run by the runner on the sandbox, the way CI and
`make demo` run them; a run that dies after the restore; and no secret in any output.

Tests run in file order: the history and the secret scan read what the runs before left.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import nbformat
import pytest
from opsbook.clients import new_run_id
from opsbook.drills.history import read_history

from tests.e2e.helpers import ROOT, opsbook
from tests.notebook_runs import run, run_passing

DRILLS = {"rds-snapshot-restore-drill": "rds-snapshot-restore", "rds-pitr-drill": "rds-pitr",
          "rds-failover-drill": "rds-failover"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("drill-runs")


@pytest.fixture(scope="module")
def mirror(sandbox, sandbox_params) -> str:
    return f"s3://{sandbox_params.buckets.logs}/opsbook-drill-test-{new_run_id()}"


def drill_leftovers(region: str, run_id: str | None = None) -> list[str]:
    """Instances and manual snapshots tagged as a drill's (of one run, if given), read with boto3."""
    rds = boto3.client("rds", region_name=region)

    def mine(tags: list[dict]) -> bool:
        tags = {t["Key"]: t["Value"] for t in tags or []}
        return tags.get("opsbook:purpose") == "drill" and (run_id is None or tags.get("opsbook:run-id") == run_id)

    names = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"] if mine(i.get("TagList"))]
    names += [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
              if mine(s.get("TagList"))]
    return names


@pytest.mark.parametrize("name", list(DRILLS))
def test_each_drill_runbook_passes_with_its_defaults(sandbox, sandbox_params, runs, mirror, name) -> None:
    result = run_passing(name, runs, mirror=mirror)
    drill = result.records["drill"]
    assert drill["name"] == DRILLS[name] and drill["verdict"] == "pass", drill["reason"]
    assert drill["rto_s"] is not None and drill["rto_s"] <= drill["rto_target_s"]
    assert drill["rpo_s"] is not None and drill["rpo_s"] <= drill["rpo_target_s"]
    assert {"name", "start", "end", "duration_s", "ok"} <= set(drill["steps"][0])
    assert (result.run_dir / "report.html").is_file()
    assert drill_leftovers(sandbox_params.region, result.run_id) == []


def test_history_shows_every_drill_from_the_runs_and_from_the_mirror(sandbox, sandbox_params, runs, mirror) -> None:

    local = read_history(runs, env="sandbox")
    assert sorted(local["drill"]) == sorted(DRILLS.values()) and set(local["verdict"]) == {"pass"}
    s3 = boto3.client("s3", region_name=sandbox_params.region)
    mirrored = read_history(runs / "nothing-here", env="sandbox", s3_uri=mirror, s3_client=s3)
    assert sorted(mirrored["run_id"]) == sorted(local["run_id"])

    result = run_passing("drill-history", runs, overrides={"runs_dir": str(runs)})
    assert result.records["drill_runs"] == len(local)

    cli = opsbook("history", "--env", "sandbox", "--runs-dir", str(runs), "--drill", "rds-pitr",
                  env={**os.environ, "COLUMNS": "250"})
    assert cli.returncode == 0, cli.stderr
    assert "rds-pitr" in cli.stdout and "rds-failover" not in cli.stdout
    pitr = local[local["drill"] == "rds-pitr"].iloc[0]
    assert f"{pitr['rto_s']}" in cli.stdout


def test_history_notebook_runs_with_no_drill_runs_yet(sandbox, runs) -> None:

    empty = runs / "empty"
    empty.mkdir()
    result = run_passing("drill-history", runs / "history-of-nothing", overrides={"runs_dir": str(empty)})
    assert result.records["drill_runs"] == 0


def test_cleanup_runbook_defaults_to_a_plan(sandbox, runs) -> None:
    result = run_passing("drill-cleanup", runs)
    assert "cleanup" in result.records


def _dies_after_restore(runs: Path, ending: str) -> tuple[str, dict | None]:
    """Run the snapshot drill with `ending` as a cell right after the restore; returns its run id and error."""
    nb = nbformat.read(ROOT / "runbooks" / "rds-snapshot-restore-drill.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip() == "drill.restore()")
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(ending))
    folder = runs / "dying" / new_run_id()
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "rds-snapshot-restore-drill.ipynb")
    result = run(folder / "rds-snapshot-restore-drill.ipynb", folder / "runs")
    return result.run_id, result.error


def test_a_run_that_raises_after_the_restore_cleans_up_at_kernel_shutdown(sandbox, sandbox_params, runs) -> None:
    run_id, error = _dies_after_restore(runs, 'raise RuntimeError("the run dies after the restore")')
    assert error is not None and "the run dies after the restore" in error["evalue"]
    deadline = time.monotonic() + 20
    while drill_leftovers(sandbox_params.region, run_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert drill_leftovers(sandbox_params.region, run_id) == []


def test_a_killed_kernel_leaves_resources_that_the_sweeper_removes(sandbox, sandbox_params, runs) -> None:
    run_id, error = _dies_after_restore(runs, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert error is not None
    left = drill_leftovers(sandbox_params.region, run_id)
    assert len(left) == 2, left  # the restored instance and the snapshot
    columns = {**os.environ, "COLUMNS": "250"}

    plan = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s", env=columns)
    assert plan.returncode == 0, plan.stderr
    assert all(name in plan.stdout for name in left) and "plan only" in plan.stdout

    everything = drill_leftovers(sandbox_params.region)
    wrong = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s", "--apply", "--confirm", left[0], env=columns)
    assert wrong.returncode == 4 and "nothing was changed" in wrong.stderr
    assert sorted(drill_leftovers(sandbox_params.region)) == sorted(everything)

    done = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s", "--apply", "--confirm", ",".join(everything),
                   env=columns)
    assert done.returncode == 0, done.stderr
    assert drill_leftovers(sandbox_params.region) == []


def test_bad_cleanup_input_is_refused_with_what_is_expected(sandbox) -> None:
    bad = opsbook("cleanup", "--env", "sandbox", "--older-than", "two hours")
    assert bad.returncode == 2 and "expected a duration such as 2h" in bad.stderr


def test_no_secret_value_appears_in_any_output(sandbox, sandbox_params, runs) -> None:
    ssm = boto3.client("ssm", region_name=sandbox_params.region)
    secrets = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/", Recursive=True, WithDecryption=True):
        secrets += [p["Value"] for p in page["Parameters"] if p["Type"] == "SecureString"]
    assert sandbox_params.rds[0].password_ssm in [
        p["Name"] for page in ssm.get_paginator("describe_parameters").paginate() for p in page["Parameters"]]
    assert secrets and all(len(s) >= 8 for s in secrets)
    files = [p for p in runs.rglob("*") if p.is_file()]
    kinds = {p.name for p in files}
    assert {"output.ipynb", "report.html", "results.json"} <= kinds
    for path in files:
        text = path.read_text(errors="replace")
        for value in secrets:
            assert value not in text, f"a SecureString value appears in {path}"
