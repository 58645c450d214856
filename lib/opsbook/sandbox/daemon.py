"""`python -m opsbook.sandbox.daemon PARAMS STATE`: the process behind `opsbook sandbox up`."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from opsbook.params import load_params
from opsbook.sandbox.attach import SANDBOX_ENV_MARK
from opsbook.sandbox.core import Sandbox


def main(params_file: str, state_path: str) -> None:
    params = load_params(params_file)
    sandbox = Sandbox(params, state_dir=Path(state_path).with_suffix(".d"))
    env = sandbox.start()
    env[SANDBOX_ENV_MARK] = params.env
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    tmp = Path(state_path + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "env": env, "timings": sandbox.timings}, indent=2))
    tmp.replace(state_path)  # atomic: readers never see half a file
    try:
        stop.wait()
    finally:
        sandbox.stop()
        Path(state_path).unlink(missing_ok=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
