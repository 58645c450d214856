"""The sandbox: a local twin of the estate, assembled from the registry of services (services.py).

Each service (moto for AWS, the Kubernetes API emulator, ...) starts on loopback and
returns the environment variables through which the real clients reach it
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, `KUBECONFIG`, ...). Library code
never asks whether it runs in the sandbox: it only reads those standard variables.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from opsbook.params import Params
from opsbook.sandbox.services import SERVICES

# Credentials the sandbox hands to boto3: moto accepts any, real AWS none of these.
SANDBOX_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_SESSION_TOKEN": "sandbox",
}


@dataclass
class SandboxContext:
    """What a starting service can use: the params, a state folder, and the env so far."""

    params: Params
    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    # facts one service's seed hands to the next (e.g. EBS volume ids for the PVs)
    facts: dict[str, object] = field(default_factory=dict)
    # what a service wants done once every service has started (e.g. moto's ids random again)
    on_started: list[Callable[[], None]] = field(default_factory=list)


class SandboxService(Protocol):
    name: str

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        """Start, seed, and return the env vars that point real clients at this service."""

    def stop(self) -> None: ...


ServiceFactory = Callable[[], SandboxService]


class Sandbox:
    """The running twin. `start()` returns the env; `stop()` stops every service."""

    def __init__(self, params: Params, state_dir: Path | None = None) -> None:
        self.params = params
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="opsbook-sandbox-"))
        self.env: dict[str, str] = {}
        self.services: list[SandboxService] = []
        self.started_at: float | None = None
        self.timings: dict[str, float] = {}

    def start(self) -> dict[str, str]:
        services = SERVICES.items()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ctx = SandboxContext(params=self.params, state_dir=self.state_dir, env=dict(SANDBOX_CREDENTIALS))
        ctx.env["AWS_DEFAULT_REGION"] = self.params.region
        t0 = time.monotonic()
        try:
            for name, factory in services:
                begun = time.monotonic()
                service = factory()
                self.services.append(service)
                ctx.env.update(service.start(ctx))
                self.timings[name] = time.monotonic() - begun
            for action in ctx.on_started:
                action()
        except BaseException:
            self.stop()
            raise
        self.started_at = time.time()
        self.timings["total"] = time.monotonic() - t0
        self.env = ctx.env
        return self.env

    def stop(self) -> None:
        """Stop every service: all but the first at once (each mostly waits for its server
        threads to notice), then the first, which the others may use while they stop."""
        first, *rest = self.services or [None]
        stoppers = [threading.Thread(target=_stop_quietly, args=(s,), name=f"stop-{s.name}") for s in rest]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        if first is not None:
            _stop_quietly(first)
        self.services.clear()


def _stop_quietly(service: SandboxService) -> None:
    try:
        service.stop()
    except Exception:  # noqa: BLE001 - stopping must reach every service
        pass


@contextmanager
def exported(env: dict[str, str]) -> Iterator[None]:
    """Set env vars for the duration (kernels started inside inherit them)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
