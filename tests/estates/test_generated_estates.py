"""Every runbook and notebook, with its defaults, on generated estates of other shapes.

Each estate (`opsbook.sandbox.estates`, three a run from a new seed) gets a sandbox process
of its own (`opsbook sandbox up --env <file>`: moto's state is per process), and every
notebook runs against it through the runner, as `opsbook demo --env <file>` would. The test
is parametrized per estate, so pytest-xdist workers share the estates out.

Cost: about as long as the demo per estate (2 to 3 minutes on 2 cores, plus 15-30 s for the
sandbox to start), so 6 to 10 minutes for the three in one worker, half that over two.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opsbook.clients import Env
from opsbook.notebooks import all_notebooks
from opsbook.runner import describe_failure

from tests.estates.conftest import SEEDS, estate_id, start_estate
from tests.notebook_runs import run


@pytest.mark.parametrize("seed", SEEDS, ids=estate_id)
def test_every_notebook_runs_on_a_generated_estate(seed: int, tmp_path: Path, estate_sandboxes) -> None:
    params = start_estate(seed, tmp_path / "params")
    estate_sandboxes.append(params)
    runs = tmp_path / "runs"
    failures, silent = [], []
    for path in all_notebooks():
        result = run(path, runs, params)
        if not result.ok:
            failures.append(describe_failure(result))
        elif not result.records:
            silent.append(result.name)
    replay = f"replay: OPSBOOK_ESTATE_SEED={seed} (params {params.source})"
    assert not failures, f"{len(failures)} notebook(s) failed on estate {seed}; {replay}\n" + "\n".join(failures)
    assert not silent, f"recorded nothing with opsbook.record() on estate {seed}: {silent}; {replay}"
    secrets = _secure_values(params)
    assert secrets, "the estate's sandbox seeded no SecureString parameters"
    for file in (p for p in runs.rglob("*") if p.is_file()):
        text = file.read_text(errors="replace")
        assert not any(value in text for value in secrets), f"a seeded secret value appears in {file}"


def _secure_values(params) -> list[str]:
    ssm = Env(params=params, run_id="secrets").aws("ssm")
    return [ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] for name in params.ssm.secure]
