"""Shared fixtures: one sandbox for the whole test session, and the local servers.

The sandbox's env (AWS_ENDPOINT_URL, KUBECONFIG, ...) is exported into os.environ, so
papermill kernels and CLI subprocesses started by tests reach the same sandbox.

Tests run in parallel (pytest-xdist, `make test`), one sandbox per worker. What two
sandboxes of one env would share on this machine is the stateful data plane: RabbitMQ
vhosts and MariaDB databases named by the params templates `stateful_access`. So each
worker (and a run without xdist) reads its params from a folder of its own
(OPSBOOK_PARAMS_DIR, inherited by kernels and subprocesses) in which `sandbox.yaml` is
the repository's with those templates prefixed by a tag of this checkout and worker;
every other params file is a link to the repository's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
import yaml
from opsbook.clients import Env
from opsbook.params import PARAMS_DIR_ENV, Params, load_params

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("OPSBOOK_REQUIRE_SERVICES") == "1"


def worker_tag() -> str:
    """Names this checkout's test worker: stable across runs (no leftovers pile up), distinct
    between checkouts and between the workers of one run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"t{hashlib.sha256(str(ROOT).encode()).hexdigest()[:4]}_{worker}"


def write_worker_params(folder: Path, tag: str) -> None:
    """params/ as links, but sandbox.yaml with its data-plane templates prefixed by `tag`."""
    for path in (ROOT / "params").iterdir():
        if path.name != "sandbox.yaml":
            (folder / path.name).symlink_to(path)
    data = yaml.safe_load((ROOT / "params" / "sandbox.yaml").read_text())
    access = data["stateful_access"]
    access["rabbitmq"]["vhost"] = f"{tag.replace('_', '-')}.{access['rabbitmq']['vhost']}"
    access["mysql"]["database"] = f"{tag}_{access['mysql']['database']}"
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def pytest_configure(config: pytest.Config) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"opsbook-params-{worker_tag()}-"))
    write_worker_params(folder, worker_tag())
    os.environ[PARAMS_DIR_ENV] = str(folder)
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pytest_report_header() -> str:
    """The generated estates' seeds of this run (tests/estates), so a failing run can be replayed."""
    from tests.estates.conftest import BASE_SEED, SEEDS

    return f"generated estates: seeds {SEEDS} (replay: OPSBOOK_ESTATE_SEED={BASE_SEED})"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def need_service(name: str, port: int) -> None:
    """Fail (in CI) or skip (on a laptop) when a local server a test needs is down."""
    if _reachable(port):
        return
    message = f"{name} is not answering on 127.0.0.1:{port}; run scripts/services.sh"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mariadb() -> dict:
    need_service("MariaDB", 3306)
    return {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@pytest.fixture(scope="session")
def rabbitmq() -> dict:
    need_service("RabbitMQ", 5672)
    need_service("RabbitMQ management API", 15672)
    return {"host": "127.0.0.1", "port": 5672, "management": "http://127.0.0.1:15672", "user": "guest", "password": "guest"}


@pytest.fixture(scope="session")
def sandbox_params() -> Params:
    return load_params("sandbox")


@pytest.fixture(scope="session")
def sandbox(sandbox_params: Params, mariadb: dict, rabbitmq: dict):
    """The sandbox twin, started once for the session and exported into os.environ."""
    from opsbook.sandbox.attach import SANDBOX_ENV_MARK, start_in_process

    if os.environ.get(SANDBOX_ENV_MARK) == sandbox_params.env:
        yield None
        return
    box = start_in_process(sandbox_params)
    yield box
    box.stop()
    os.environ.pop(SANDBOX_ENV_MARK, None)


@pytest.fixture()
def sandbox_env(sandbox, sandbox_params: Params) -> Env:
    """An opened sandbox environment with a fresh run id."""
    from opsbook.clients import new_run_id

    return Env(params=sandbox_params, run_id=new_run_id())
