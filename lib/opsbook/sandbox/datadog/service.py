"""The emulator as a sandbox service (registered on import, by opsbook.sandbox.services)."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

from opsbook.sandbox.core import SandboxContext
from opsbook.sandbox.datadog import _RUNNING
from opsbook.sandbox.services import SERVICES


def _ssm_client(ctx: SandboxContext):
    import boto3

    return boto3.client(
        "ssm", endpoint_url=ctx.env["AWS_ENDPOINT_URL"], region_name=ctx.params.region,
        aws_access_key_id=ctx.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ctx.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=ctx.env.get("AWS_SESSION_TOKEN"),
    )


def _keys(ctx: SandboxContext) -> tuple[str, str, dict[str, str]]:
    """The API and application keys to accept, and env vars for keys not kept in SSM."""
    names = {"DD_API_KEY": ctx.params.datadog.api_key_ssm, "DD_APP_KEY": ctx.params.datadog.app_key_ssm}
    keys: dict[str, str] = {}
    exported: dict[str, str] = {}
    ssm = _ssm_client(ctx) if any(names.values()) else None
    for var, name in names.items():
        if name is None:
            keys[var] = exported[var] = secrets.token_hex(16)
            continue
        try:
            keys[var] = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            # the seed left it out (params `sandbox.omit`): accept a key nobody holds, so
            # clients see what they would in production with a missing secret
            keys[var] = secrets.token_hex(16)
    return keys["DD_API_KEY"], keys["DD_APP_KEY"], exported


@SERVICES.register("datadog")
class DatadogService:
    """The emulator's HTTP server in a thread of this process."""

    name = "datadog"
    needs = ("aws",)  # its keys are in SSM

    def __init__(self) -> None:
        self.server = None
        self.thread: threading.Thread | None = None
        self.observers: list = []
        self.store = None
        self.url = ""

    def start(self, ctx: SandboxContext) -> dict[str, str]:
        from werkzeug.serving import WSGIRequestHandler, make_server

        from opsbook.sandbox.datadog.app import create_app
        from opsbook.sandbox.datadog.signals import Estate, incident_start_for
        from opsbook.sandbox.datadog.store import Store
        from opsbook.sandbox.datadog.usage import Usage

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs) -> None:  # the runs' logs stay readable
                pass

        api_key, app_key, exported = _keys(ctx)
        now = datetime.now(UTC)
        estate = Estate(ctx.params, incident_start_for(now))
        self.store = Store(estate, now.timestamp())
        app = create_app(self.store, Usage(estate), api_key, app_key, self.observers)
        # port 0: the OS picks a free port as it binds (sandboxes starting at once never race for one)
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="datadog-emulator", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        _RUNNING.append(self)
        return {"DD_HOST": self.url, **exported}

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self in _RUNNING:
            _RUNNING.remove(self)
