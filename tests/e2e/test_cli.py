"""The `opsbook` command end to end, in subprocesses, against the session's sandbox."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import ROOT, opsbook, write_notebook


def test_list_shows_every_notebook_with_purpose(sandbox) -> None:
    from opsbook.notebooks import all_notebooks, describe

    out = opsbook("list", env={**os.environ, "COLUMNS": "250"})
    assert out.returncode == 0, out.stderr
    for path in all_notebooks():
        assert path.stem in out.stdout
        assert describe(path).purpose[:30] in " ".join(out.stdout.split())


def test_run_writes_the_run_folder(sandbox, tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "probe.ipynb",
        "import os, opsbook\nctx = opsbook.open_env(env)\nident = ctx.check_credentials()",
        "opsbook.record('summary', {'account': ident['account'], 'n': n})\n"
        "opsbook.record('endpoint', os.environ['AWS_ENDPOINT_URL'])",
        params='env = "sandbox"\nn = 1',
    )
    out = opsbook("run", str(nb), "--env", "sandbox", "-p", "n=41", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr
    [run_dir] = list((tmp_path / "runs" / "sandbox" / "probe").iterdir())
    assert run_dir.name.endswith(run_dir.name.split("-")[-1]) and len(run_dir.name.split("-")[-1]) == 8
    assert {p.name for p in run_dir.iterdir()} >= {"output.ipynb", "report.html", "results.json"}
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "passed" and results["run_id"] in run_dir.name
    assert results["parameters"] == {"env": "sandbox", "n": 41}
    assert results["records"]["summary"]["n"] == 41
    assert results["records"]["endpoint"] == os.environ["AWS_ENDPOINT_URL"]  # reached the same sandbox
    assert results["git_commit"] and results["duration_s"] > 0
    report = (run_dir / "report.html").read_text()
    assert "PASSED" in report and "opsbook.open_env(env)" not in report  # code hidden for readers


def test_failed_run_exits_nonzero_with_the_error(sandbox, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "broken.ipynb", "x = 1", "raise RuntimeError('restore step found no canary row')")
    out = opsbook("run", str(nb), "--env", "sandbox", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1
    assert "failed in cell" in out.stderr and "(raise RuntimeError(" in out.stderr and "restore step found no canary row" in out.stderr
    assert len(out.stderr.splitlines()) < 15
    [run_dir] = list((tmp_path / "runs" / "sandbox" / "broken").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "failed" and results["error"]["ename"] == "RuntimeError"


def test_mirror_copies_the_run_to_s3(sandbox, sandbox_env, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "mirrored.ipynb", "import opsbook\nopsbook.record('summary', {'ok': 1})")
    bucket = sandbox_env.params.buckets.logs
    prefix = f"opsbook-runs/{tmp_path.name}"
    out = opsbook("run", str(nb), "--env", "sandbox", "--runs-dir", str(tmp_path / "runs"),
                  "--mirror", f"s3://{bucket}/{prefix}")
    assert out.returncode == 0, out.stderr
    [run_dir] = list((tmp_path / "runs" / "sandbox" / "mirrored").iterdir())
    listed = sandbox_env.aws("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    keys = {o["Key"].split(f"/{run_dir.name}/")[-1] for o in listed}
    assert keys == {p.name for p in run_dir.iterdir()}


def test_bad_mirror_url_is_refused_before_running(sandbox, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "never.ipynb", "raise SystemExit('should not run')")
    out = opsbook("run", str(nb), "--env", "sandbox", "--runs-dir", str(tmp_path / "runs"), "--mirror", "bucket/x")
    assert out.returncode == 2 and "expected s3://bucket/prefix" in out.stderr
    assert not (tmp_path / "runs").exists()


class _Listener:
    """A TCP port that counts connections: proves no API call was attempted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("case", ["malformed_cidr", "unknown_key_nested", "extends_loop_a"])
def test_bad_params_fail_before_any_api_call(case: str) -> None:
    listener = _Listener()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOOK_SANDBOX")}
    env.update(AWS_ENDPOINT_URL=listener.url, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    try:
        out = opsbook("run", "health-check", "--env", str(ROOT / f"tests/unit/bad_params/{case}.yaml"), env=env)
    finally:
        listener.close()
    assert out.returncode == 2, out.stderr
    assert f"{case}.yaml" in out.stderr.replace("\n", "")
    assert listener.connections == 0


def test_production_without_credentials_says_how_to_provide_them() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSBOOK_SANDBOX"))}
    # no credentials anywhere; instance metadata off so nothing leaves this machine
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true")
    out = opsbook("run", "health-check", "--env", "prod-pl", env=env, timeout=60)
    assert out.returncode == 3
    message = " ".join(out.stderr.split())
    assert "AWS credentials are missing" in message and "AWS_PROFILE" in message
    assert "Traceback" not in out.stderr


def test_sandbox_up_status_down_and_reuse(tmp_path: Path) -> None:
    params = tmp_path / "sandbox-daemon.yaml"
    params.write_text(yaml.safe_dump({"extends": str(ROOT / "params/sandbox.yaml"), "env": "sandbox-daemon"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG", "OPSBOOK_SANDBOX"))}
    up = opsbook("sandbox", "up", "--env", str(params), env=env)
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((ROOT / ".opsbook/sandbox-sandbox-daemon.json").read_text())
        assert opsbook("sandbox", "status", "--env", str(params), env=env).returncode == 0
        nb = write_notebook(tmp_path / "reuse.ipynb",
                            "import os, opsbook\nopsbook.open_env(env)\n"
                            "opsbook.record('endpoint', os.environ['AWS_ENDPOINT_URL'])",
                            params=f'env = "{params}"')
        out = opsbook("run", str(nb), "--env", str(params), "--runs-dir", str(tmp_path / "runs"), env=env)
        assert out.returncode == 0, out.stderr
        [results] = list((tmp_path / "runs").glob("*/*/*/results.json"))
        assert json.loads(results.read_text())["records"]["endpoint"] == state["env"]["AWS_ENDPOINT_URL"]
    finally:
        down = opsbook("sandbox", "down", "--env", str(params), env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert opsbook("sandbox", "status", "--env", str(params), env=env).returncode == 1


def test_a_dead_kernel_still_leaves_evidence(sandbox, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "dies.ipynb", "import opsbook\nopsbook.record('before', 1)",
                        "import os\nos._exit(9)")
    out = opsbook("run", str(nb), "--env", "sandbox", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1
    [run_dir] = list((tmp_path / "runs" / "sandbox" / "dies").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "failed" and results["records"] == {"before": 1}
    assert results["error"]["ename"] == "DeadKernelError"
    assert (run_dir / "report.html").is_file()
