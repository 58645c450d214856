"""Every runbook and notebook runs through the runner against the sandbox with its defaults.

All runs of this module land in one folder; the last test scans every output notebook,
report and results file there for the secret values the sandbox seeded into SSM.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opsbook.notebooks import all_notebooks

from tests.notebook_runs import run_passing

NOTEBOOKS = all_notebooks()


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebook-runs")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_runs_on_the_sandbox(path: Path, sandbox, sandbox_params, runs_root: Path) -> None:
    result = run_passing(path, runs_root, sandbox_params)
    assert (result.run_dir / "report.html").is_file() and (result.run_dir / "output.ipynb").is_file()
    assert result.records, f"{path.name} recorded nothing with opsbook.record()"


def _seeded_secret_values(env) -> list[str]:
    ssm = env.aws("ssm")
    values = []
    for page in ssm.get_paginator("describe_parameters").paginate():
        for meta in page["Parameters"]:
            if meta["Type"] == "SecureString":
                values.append(ssm.get_parameter(Name=meta["Name"], WithDecryption=True)["Parameter"]["Value"])
    return values


def test_no_secret_value_in_any_run_output(sandbox_env, runs_root: Path) -> None:
    secrets = _seeded_secret_values(sandbox_env)
    assert secrets, "the sandbox seeded no SecureString parameters"
    files = [p for p in runs_root.rglob("*") if p.is_file()]
    assert files, "no run output to scan"
    for file in files:
        text = file.read_text(errors="replace")
        for value in secrets:
            assert value not in text, f"a seeded secret value appears in {file}"
