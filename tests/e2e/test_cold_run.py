"""`opsbook run` from a shell with no sandbox: the runner starts one in the background while the
kernel boots, and hands the kernel its env before the first cell; a sandbox that cannot start
fails the command with the seed's own error and leaves no run folder."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import yaml
from opsbook.params import params_dir

from tests.e2e.helpers import opsbook, write_notebook


def _fresh_shell() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG", "DD_", "OPSBOOK_SANDBOX"))}


def _params(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "cold.yaml"
    # this worker's sandbox.yaml: its own data-plane names (tests/conftest.py)
    path.write_text(yaml.safe_dump({"extends": str(params_dir() / "sandbox.yaml"),
                                    "env": f"sandbox-cold-{uuid.uuid4().hex[:6]}", **overrides}))
    return path


def test_the_kernel_has_the_sandbox_before_its_first_cell(tmp_path: Path) -> None:
    params = _params(tmp_path)
    nb = write_notebook(
        tmp_path / "cold.ipynb",
        "import os\nopsbook_env = {k: os.environ.get(k) for k in ('OPSBOOK_SANDBOX_ENV', 'AWS_ENDPOINT_URL', 'KUBECONFIG')}",
        "import opsbook\nctx = opsbook.open_env(env)\nident = ctx.check_credentials()\n"
        "opsbook.record('before_first_cell', opsbook_env)\nopsbook.record('account', ctx.params.account_id)",
        params=f'env = "{params}"',
    )
    out = opsbook("run", str(nb), "--env", str(params), "--runs-dir", str(tmp_path / "runs"), env=_fresh_shell())
    assert out.returncode == 0, out.stderr
    [results] = list((tmp_path / "runs").glob("*/*/*/results.json"))
    seen = json.loads(results.read_text())["records"]["before_first_cell"]
    assert seen["OPSBOOK_SANDBOX_ENV"] == yaml.safe_load(params.read_text())["env"]
    assert seen["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and Path(seen["KUBECONFIG"]).name == "kubeconfig"


def test_a_sandbox_that_cannot_start_fails_the_run_before_any_evidence(tmp_path: Path) -> None:
    params = _params(tmp_path, sandbox={"omit": ["nat_gateway/mars-1a"]})
    nb = write_notebook(tmp_path / "never.ipynb", "import opsbook\nopsbook.record('ran', True)", params=f'env = "{params}"')
    out = opsbook("run", str(nb), "--env", str(params), "--runs-dir", str(tmp_path / "runs"), env=_fresh_shell())
    message = " ".join(out.stderr.split())
    assert out.returncode == 2, out.stderr
    assert "sandbox.omit.0" in message and "mars-1a" in message and "Traceback" not in out.stderr
    assert not list((tmp_path / "runs").glob("**/*"))
