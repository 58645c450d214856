"""A small AWS JSON 1.1 server (X-Amz-Target dispatch) for the sandbox's own emulators.

botocore sends `POST /` with `X-Amz-Target: <TargetPrefix>.<Operation>` and a JSON body;
errors go back as HTTP 400 with `{"__type": "<Code>", "message": ...}`, which botocore
turns into a ClientError carrying that code.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    """An error the real service would answer with (code, message, HTTP status)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


class JsonApiServer:
    """Serves several JSON 1.1 services on one loopback port, routed by target prefix."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        handlers = self.handlers

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet: tests read their own output
                log.debug(fmt, *args)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                target = self.headers.get("X-Amz-Target", "")
                handler = handlers.get(target)
                if handler is None:
                    self._send(400, {"__type": "UnknownOperationException", "message": f"unknown target {target!r}"})
                    return
                try:
                    body = json.loads(raw or b"{}")
                    if not isinstance(body, dict):
                        raise ApiError("SerializationException", "expected a JSON object")
                    self._send(200, handler(body))
                except json.JSONDecodeError as exc:
                    self._send(400, {"__type": "SerializationException", "message": str(exc)})
                except ApiError as exc:
                    self._send(exc.status, {"__type": exc.code, "message": exc.message})
                except Exception as exc:  # an emulator bug must not hang the client
                    log.exception("emulator failed on %s", target)
                    self._send(500, {"__type": "InternalErrorException", "message": f"{type(exc).__name__}: {exc}"})

        self.httpd = ThreadingHTTPServer((host, port), RequestHandler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="opsbook-json-api", daemon=True)
        self.thread.start()
        return f"http://{host}:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
