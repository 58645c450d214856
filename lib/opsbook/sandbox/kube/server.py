"""HTTP routing: the Kubernetes REST paths on a threaded loopback server (plain HTTP, any token)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opsbook.sandbox.kube import discovery
from opsbook.sandbox.kube.api import Api, Call
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.resources import ResourceType

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


class Target:
    """A resource path resolved: kind, namespace, name and subresource."""

    def __init__(self, rtype: ResourceType, namespace: str | None, name: str | None, sub: str | None) -> None:
        self.rtype, self.namespace, self.name, self.sub = rtype, namespace, name, sub


def resolve(api: Api, path: str) -> Target | dict[str, Any]:
    """A discovery document for discovery paths, else the resource the path names."""
    found = _group_version(api, [p for p in path.split("/") if p])
    if isinstance(found, dict):
        return found
    group, version, rest = found
    if not rest:
        return discovery.resource_list(api.registry, group, version)
    return _target(api, group, version, rest)


def _group_version(api: Api, parts: list[str]) -> tuple[str, str, list[str]] | dict[str, Any]:
    """The discovery document of /api, /apis and /apis/<group>; else the group, version and the rest."""
    if parts == ["api"]:
        return discovery.core_versions(api.server_address)
    if parts == ["apis"]:
        return discovery.group_list(api.registry)
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) == 2 and parts[0] == "apis":
        return discovery.group(api.registry, parts[1])
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    raise ApiError(404, "the server could not find the requested resource")


def _target(api: Api, group: str, version: str, rest: list[str]) -> Target:
    """The resource under /<group>/<version>: [namespaces/<ns>/]<plural>[/<name>[/<subresource>]]."""
    namespaced_path = (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and api.registry.get(group, version, rest[2]) is None)
    )
    if namespaced_path:
        namespace, plural, tail = rest[1], rest[2], rest[3:]
    else:
        namespace, plural, tail = None, rest[0], rest[1:]
    if len(tail) > 2:
        raise ApiError(404, "the server could not find the requested resource")
    rtype = api.resource(group, version, plural)
    name = tail[0] if tail else None
    if namespace is not None and not rtype.namespaced:
        raise ApiError(404, f"the server could not find the requested resource ({plural} is cluster-scoped)")
    if rtype.namespaced and namespace is None and name is not None:
        raise ApiError(404, f"the server could not find the requested resource ({plural} is namespaced)")
    return Target(rtype, namespace, name, tail[1] if len(tail) > 1 else None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls
    server: ApiHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # --- plumbing ------------------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None

    def _send(self, code: int, body: Any, warnings: list[str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for warning in warnings or []:
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            self.send_header("Warning", f'299 - "{escaped}"')
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._body()
            path = url.path.rstrip("/") or "/"
            if path == "/version" and method == "GET":
                return self._send(200, discovery.version(self.server.kube_version))
            if path in HEALTH_PATHS:
                return self._send(200, "ok")
            target = resolve(api, path)
            if isinstance(target, dict):
                if method != "GET":
                    raise ApiError(405, f"{method} is not allowed on {path}")
                return self._send(200, target)
            self._serve(method, target, query, body)
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - an emulator bug answers 500 like a server would
            self._send(500, ApiError(500, f"internal error in the sandbox API server: {exc!r}").status())

    def _serve(self, method: str, t: Target, query: dict[str, str], body: Any) -> None:
        call = Call(dry_run=query.get("dryRun") == "All", field_validation=query.get("fieldValidation") or "Warn")
        if t.name is None:
            self._serve_collection(method, t, query, body, call)
        else:
            self._serve_object(method, t, query, body, call)

    def _serve_collection(self, method: str, t: Target, query: dict[str, str], body: Any, call: Call) -> None:
        api = self.server.api
        if method == "GET" and query.get("watch") in ("true", "1"):
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
            events = api.watch(t.rtype, t.namespace, query.get("labelSelector"), query.get("fieldSelector"),
                               query.get("resourceVersion"), timeout)
            return self._stream(events)
        if method == "GET":
            limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
            return self._send(200, api.list(t.rtype, t.namespace, query.get("labelSelector"),
                                            query.get("fieldSelector"), limit, query.get("continue")))
        if method == "POST":
            if t.rtype.namespaced and t.namespace is None:
                raise ApiError(405, f"create {t.rtype.plural} needs a namespace in the path")
            return self._send(201, api.create(t.rtype, t.namespace, body, call), call.warnings)
        if method == "DELETE":
            call.dry_run = call.dry_run or "All" in ((body or {}).get("dryRun") or [])
            return self._send(200, api.delete_collection(t.rtype, t.namespace, query.get("labelSelector"),
                                                         query.get("fieldSelector"), call))
        raise ApiError(405, f"{method} is not allowed on a collection")

    def _serve_object(self, method: str, t: Target, query: dict[str, str], body: Any, call: Call) -> None:
        api = self.server.api
        if method == "GET":
            return self._send(200, api.get(t.rtype, t.namespace, t.name))
        if method == "PUT":
            return self._send(200, api.update(t.rtype, t.namespace, t.name, body, t.sub, call), call.warnings)
        if method == "PATCH":
            content_type = self.headers.get("Content-Type") or ""
            return self._send(200, api.patch(t.rtype, t.namespace, t.name, body, content_type, t.sub, call),
                              call.warnings)
        if method == "DELETE":
            options = dict(body) if isinstance(body, dict) else {}
            if query.get("propagationPolicy"):
                options["propagationPolicy"] = query["propagationPolicy"]
            call.dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
            return self._send(200, api.delete(t.rtype, t.namespace, t.name, options, call))
        raise ApiError(405, f"{method} is not allowed on an object")

    def _stream(self, events: Any) -> None:
        """A watch: chunked JSON lines, one event each, until the watch's timeout."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: Api, kube_version: str) -> None:
        super().__init__(address, Handler)
        self.api = api
        self.kube_version = kube_version


class KubeApiServer:
    """The emulated API server on loopback; `url` is what a kubeconfig's `server:` names."""

    def __init__(self, kube_version: str = "1.30", host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = Api()
        self.httpd = ApiHTTPServer((host, port), self.api, kube_version)
        self.api.server_address = f"{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.api.server_address}"

    def start(self) -> KubeApiServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kube-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.api.close()  # ends open watches
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

