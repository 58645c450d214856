"""Find or start the sandbox for a params file that has a `sandbox:` section.

Order: the sandbox already exported into this process (the runner did it), then one
kept running by `opsbook sandbox up` (its state file), else a new one in-process. A new
one can start in the background (`begin`), so that a caller does other work meanwhile (the
runner starts the notebook's kernel) and exports its env once it is up (`SandboxStart.wait`).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from opsbook.errors import OpsbookError
from opsbook.params import Params, project_root
from opsbook.sandbox.core import Sandbox

SANDBOX_ENV_MARK = "OPSBOOK_SANDBOX_ENV"
_IN_PROCESS: dict[str, Sandbox] = {}


def state_file(env: str) -> Path:
    return project_root() / ".opsbook" / f"sandbox-{env}.json"


def running_daemon(env: str) -> dict | None:
    """The state of a sandbox kept by `opsbook sandbox up`, if it is alive."""
    path = state_file(env)
    if not path.is_file():
        return None
    from opsbook.sandbox.local_servers import pid_alive  # with its clients, only when a state file exists

    state = json.loads(path.read_text())
    if not pid_alive(state["pid"]):
        path.unlink(missing_ok=True)
        return None
    return state


class SandboxStart:
    """A sandbox starting in a thread of this process; `wait()` exports its env once it is up."""

    def __init__(self, params: Params) -> None:
        self.sandbox = Sandbox(params)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._start, name="opsbook-sandbox-start", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        try:
            self.sandbox.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            self.error = exc

    def wait(self) -> Sandbox:
        """The started sandbox, its env exported into this process, stopped when it exits."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        sandbox = self.sandbox
        if _IN_PROCESS.get(sandbox.params.env) is not sandbox:
            sandbox.env[SANDBOX_ENV_MARK] = sandbox.params.env
            os.environ.update(sandbox.env)
            _IN_PROCESS[sandbox.params.env] = sandbox
            atexit.register(sandbox.stop)
        return sandbox


def begin(params: Params) -> SandboxStart | None:
    """Start the sandbox of a sandbox env in the background unless one is reachable already
    (exported into this process, or kept by `opsbook sandbox up`: its env is exported now).
    None when there is nothing to wait for (also for real environments)."""
    if params.sandbox is None or os.environ.get(SANDBOX_ENV_MARK) == params.env:
        return None
    state = running_daemon(params.env)
    if state is not None:
        os.environ.update(state["env"])
        return None
    return SandboxStart(params)


def start_in_process(params: Params) -> Sandbox:
    """Start a sandbox in this process, export its env, stop it when the process exits."""
    return SandboxStart(params).wait()


def ensure_reachable(params: Params) -> None:
    """Make sure a sandbox env's emulators answer; a no-op for real environments."""
    starting = begin(params)
    if starting is not None:
        starting.wait()


def up(params: Params, wait_seconds: float = 120) -> dict:
    """Start a sandbox in a background process that outlives this command."""
    state = running_daemon(params.env)
    if state is not None:
        return state
    path = state_file(params.env)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_suffix(".log")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opsbook.sandbox.daemon", params.source, str(path)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise OpsbookError(f"the sandbox failed to start; its log says:\n{log.read_text()[-2000:]}")
        if path.is_file():
            return json.loads(path.read_text())
        time.sleep(0.2)
    proc.terminate()
    raise OpsbookError(f"the sandbox did not start within {wait_seconds:.0f}s; see {log}")


def down(env: str) -> bool:
    from opsbook.sandbox.local_servers import pid_alive

    state = running_daemon(env)
    if state is None:
        return False
    os.kill(state["pid"], signal.SIGTERM)
    for _ in range(100):
        if not pid_alive(state["pid"]):
            break
        time.sleep(0.1)
    state_file(env).unlink(missing_ok=True)
    return True
