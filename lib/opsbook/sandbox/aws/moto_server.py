"""AWS in the sandbox: moto in server mode on loopback, seeded with the estate."""

from __future__ import annotations

import logging

from opsbook.net import free_port
from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.services import SERVICES


@SERVICES.register("aws")
class MotoService:
    """moto's server in a thread of this process, reached through AWS_ENDPOINT_URL."""

    name = "aws"

    def __init__(self) -> None:
        self.server = None

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        endpoint = f"http://127.0.0.1:{port}"
        env = {"AWS_ENDPOINT_URL": endpoint}
        from opsbook.sandbox.aws.seed import seed_estate

        seed_estate(ctx.params, {**ctx.env, **env}, ctx.facts)
        return env

    def stop(self) -> None:
        if self.server is not None:
            # moto keeps its state per process, not per server: forget it, so that a later
            # sandbox in this process seeds a clean estate
            from moto.moto_api._internal import moto_api_backend

            moto_api_backend.reset()
            self.server.stop()
            self.server = None
