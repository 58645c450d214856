"""The sandbox: a local twin of the estate, assembled from the registry of services (services.py).

Each service (moto for AWS, the Kubernetes API emulator, ...) starts on loopback and
returns the environment variables through which the real clients reach it
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, `KUBECONFIG`, ...). Library code
never asks whether it runs in the sandbox: it only reads those standard variables.

A service names the services its start uses (`needs = ("aws",)`: their env and facts);
one without `needs` uses every service registered before it. Services start as soon as
what they need has started, several at once (much of a start waits on the local MariaDB and
RabbitMQ, or on another thread's server), and stop in the reverse order, several at once.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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


def dependencies() -> dict[str, set[str]]:
    """Each registered service's `needs` (by default: every service registered before it)."""
    names = [name for name, _ in SERVICES.items()]
    return {name: set(getattr(factory, "needs", names[:i])) for i, (name, factory) in enumerate(SERVICES.items())}


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
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ctx = SandboxContext(params=self.params, state_dir=self.state_dir, env=dict(SANDBOX_CREDENTIALS))
        ctx.env["AWS_DEFAULT_REGION"] = self.params.region
        t0 = time.monotonic()
        try:
            self._start_all(ctx)
            for action in ctx.on_started:
                action()
        except BaseException:
            self.stop()
            raise
        self.started_at = time.time()
        self.timings["total"] = time.monotonic() - t0
        self.env = ctx.env
        return self.env

    def _start_all(self, ctx: SandboxContext) -> None:
        """Each service once the services it needs have started; the first failure stops the lot."""
        factories, needs = dict(SERVICES.items()), dependencies()
        done: set[str] = set()
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(len(factories), thread_name_prefix="sandbox-start") as pool:
            while len(done) < len(factories):
                for name in [n for n in factories if n not in done and n not in running.values()]:
                    if needs[name] <= done:
                        running[pool.submit(self._start_one, name, factories[name], ctx)] = name
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    future.result()  # a failure: the pool lets the others finish, then start() stops all
                    done.add(name)

    def _start_one(self, name: str, factory: ServiceFactory, ctx: SandboxContext) -> None:
        begun = time.monotonic()
        service = factory()
        self.services.append(service)
        ctx.env.update(service.start(ctx))
        self.timings[name] = time.monotonic() - begun

    def stop(self) -> None:
        """Stop every service, each once nothing that needs it is still running, several at once."""
        needs = dependencies()
        remaining = list(self.services)
        while remaining:
            needed = {n for service in remaining for n in needs.get(service.name, ())}
            wave = [service for service in remaining if service.name not in needed] or remaining
            stoppers = [threading.Thread(target=_stop_quietly, args=(s,), name=f"stop-{s.name}") for s in wave]
            for thread in stoppers:
                thread.start()
            for thread in stoppers:
                thread.join()
            remaining = [service for service in remaining if service not in wave]
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
