"""HTTP routing: the Kubernetes REST paths on a threaded loopback server (plain HTTP, any token).

Besides the resource paths (api.py): /version, /healthz, the OpenAPI documents (openapi.py),
Table answers when the Accept header asks for them (tables.py), the scale, log and finalize
subresources, server-side apply (`application/apply-patch+yaml`, YAML or JSON body, 201 when
it creates), and gzip for large answers to clients that accept it (k8s.io/apiserver
pkg/endpoints/handlers/responsewriters/writers.go: 128 KiB and up).
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from opsbook.sandbox.kube import discovery, logs, managed, namespaces, scale, tables
from opsbook.sandbox.kube.api import BIND_DELAY_SECONDS, Api
from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.openapi import Served
from opsbook.sandbox.kube.patching import APPLY
from opsbook.sandbox.kube.resources import ResourceType

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
GZIP_THRESHOLD = 128 * 1024
OPENAPI_V2_TYPES = ("application/json", "application/*", "*/*")
DECODED = ("application/json", "application/yaml")
UNDECODED = ("application/vnd.kubernetes.protobuf", "application/cbor")


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
    sub = tail[1] if len(tail) > 1 else None
    if sub is not None and sub != "status" and sub not in rtype.subresources:
        raise ApiError(404, f"the server could not find the requested resource ({plural}/{sub})")
    return Target(rtype, namespace, name, sub)


def _accepts(header: str | None, offered: tuple[str, ...]) -> bool:
    media = [c.split(";")[0].strip() for c in (header or "*/*").split(",")]
    return any(m in offered for m in media)


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
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if media in UNDECODED:
            # typed clients (kubectl create/run) send protobuf; this server decodes JSON and YAML only
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                                f"{', '.join(DECODED)}")
        try:
            return json.loads(raw)
        except ValueError as exc:
            if media not in (APPLY, "application/yaml"):
                raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ApiError(400, f"error decoding YAML: {exc}") from None

    def _gzip_ok(self) -> bool:
        return "gzip" in (self.headers.get("Accept-Encoding") or "")

    def _send(self, code: int, body: Any, warnings: list[str] | None = None,
              headers: dict[str, str] | None = None) -> None:
        text = isinstance(body, str)
        data = body.encode() if text else json.dumps(body).encode()
        encoding = None
        if len(data) >= GZIP_THRESHOLD and self._gzip_ok():
            data, encoding = gzip.compress(data, compresslevel=5), "gzip"
        self._write(code, data, "text/plain" if text else "application/json", encoding, warnings, headers)

    def _write(self, code: int, data: bytes, content_type: str, encoding: str | None,
               warnings: list[str] | None = None, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        for warning in warnings or []:
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            self.send_header("Warning", f'299 - "{escaped}"')
        self.end_headers()
        self.wfile.write(data)

    def _send_served(self, served: Served, headers: dict[str, str] | None = None) -> None:
        """A cached OpenAPI document, gzipped when the client takes it, with its ETag."""
        gz = self._gzip_ok()
        self._write(200, served.gz if gz else served.body, "application/json", "gzip" if gz else None,
                    headers={"Etag": f'"{served.etag}"', "Vary": "Accept", **(headers or {})})

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._body()
            path = url.path.rstrip("/") or "/"
            if path == "/version" and method == "GET":
                return self._send(200, discovery.version(self.server.kube_version))
            if path in HEALTH_PATHS:
                return self._send(200, "ok")
            if path == "/openapi/v2" or path.startswith("/openapi/v3"):
                return self._openapi(method, path, query)
            target = resolve(self.server.api, path)
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

    # --- OpenAPI -----------------------------------------------------------------------------

    def _openapi(self, method: str, path: str, query: dict[str, str]) -> None:
        if method != "GET":
            raise ApiError(405, f"{method} is not allowed on {path}")
        docs = self.server.api.openapi_documents()
        if path == "/openapi/v2":
            if not _accepts(self.headers.get("Accept"), OPENAPI_V2_TYPES):
                # kube-openapi answers 406 to a format it does not offer; this server offers only JSON
                return self._write(406, b"", "text/plain", None)
            return self._send_served(docs.v2())
        if path == "/openapi/v3":
            return self._send_served(docs.v3_index())
        parts = path.removeprefix("/openapi/v3/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else (
            (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else ("", ""))
        served = docs.v3(group, version) if version else None
        if served is None:
            raise ApiError(404, "the server could not find the requested resource")
        wanted = query.get("hash")
        if wanted and wanted != served.etag:
            location = f"{path}?hash={served.etag}"
            return self._write(301, b"", "text/plain", None, headers={"Location": location})
        cache = {"Cache-Control": "public, immutable"} if wanted else {}
        return self._send_served(served, cache)

    # --- resources ---------------------------------------------------------------------------

    def _call(self, query: dict[str, str]) -> Call:
        manager = query.get("fieldManager") or managed.manager_from_user_agent(self.headers.get("User-Agent"))
        return Call(dry_run=query.get("dryRun") == "All", field_validation=query.get("fieldValidation") or "Warn",
                    manager=manager)

    def _serve(self, method: str, t: Target, query: dict[str, str], body: Any) -> None:
        call = self._call(query)
        apply = method == "PATCH" and (self.headers.get("Content-Type") or "").split(";")[0].strip() == APPLY
        call.force = managed.check_apply_options(query.get("fieldManager"), query.get("force"), apply)
        if t.name is None:
            self._serve_collection(method, t, query, body, call)
        elif t.sub in ("scale", "log", "finalize"):
            self._serve_subresource(method, t, query, body, call)
        else:
            self._serve_object(method, t, query, body, call)

    def _table_version(self, query: dict[str, str]) -> str | None:
        version = tables.table_version(self.headers.get("Accept"))
        if version is not None:
            tables.check_include_object(query.get("includeObject"))
        return version

    def _serve_collection(self, method: str, t: Target, query: dict[str, str], body: Any, call: Call) -> None:
        api = self.server.api
        if method == "GET" and query.get("watch") in ("true", "1"):
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
            events = api.watch(t.rtype, t.namespace, query.get("labelSelector"), query.get("fieldSelector"),
                               query.get("resourceVersion"), timeout)
            return self._stream(events, t.rtype, self._table_version(query), query.get("includeObject"))
        if method == "GET":
            limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
            listed = api.list(t.rtype, t.namespace, query.get("labelSelector"), query.get("fieldSelector"), limit,
                              query.get("continue"))
            version = self._table_version(query)
            if version is not None:
                listed = tables.to_table(t.rtype, listed["items"], listed["metadata"], version,
                                         tables.check_include_object(query.get("includeObject")))
            return self._send(200, listed)
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
            obj = api.get(t.rtype, t.namespace, t.name)
            version = self._table_version(query)
            if version is not None:
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                obj = tables.to_table(t.rtype, [obj], meta, version,
                                      tables.check_include_object(query.get("includeObject")))
            return self._send(200, obj)
        if method == "PUT":
            return self._send(200, api.update(t.rtype, t.namespace, t.name, body, t.sub, call), call.warnings)
        if method == "PATCH":
            content_type = self.headers.get("Content-Type") or ""
            if content_type.split(";")[0].strip() == APPLY and t.sub is None:
                obj, created = api.apply(t.rtype, t.namespace, t.name, body, call)
                return self._send(201 if created else 200, obj, call.warnings)
            return self._send(200, api.patch(t.rtype, t.namespace, t.name, body, content_type, t.sub, call),
                              call.warnings)
        if method == "DELETE":
            options = dict(body) if isinstance(body, dict) else {}
            for key in ("propagationPolicy", "gracePeriodSeconds"):
                if query.get(key):
                    options[key] = int(query[key]) if key == "gracePeriodSeconds" else query[key]
            call.dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
            return self._send(200, api.delete(t.rtype, t.namespace, t.name, options, call))
        raise ApiError(405, f"{method} is not allowed on an object")

    def _serve_subresource(self, method: str, t: Target, query: dict[str, str], body: Any, call: Call) -> None:
        api = self.server.api
        assert t.name is not None
        routes = {
            ("scale", "GET"): lambda: scale.get(api, t.rtype, t.namespace or "", t.name),
            ("scale", "PUT"): lambda: scale.update(api, t.rtype, t.namespace or "", t.name, body, call),
            ("scale", "PATCH"): lambda: scale.patch(api, t.rtype, t.namespace or "", t.name, body,
                                                    self.headers.get("Content-Type") or "", call),
            ("log", "GET"): lambda: logs.read(api.logs, api.get(t.rtype, t.namespace, t.name), query),
            ("finalize", "PUT"): lambda: namespaces.finalize(api, t.name, body),
        }
        route = routes.get((t.sub or "", method))
        if route is None:
            raise ApiError(405, f"{method} is not allowed on {t.rtype.plural}/{t.sub}")
        self._send(200, route(), call.warnings)

    def _stream(self, events: Any, rtype: ResourceType, table: str | None, include: str | None) -> None:
        """A watch: chunked JSON lines, one event each, until the watch's timeout (objects as Tables if asked)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        headers = True
        for event in events:
            if table is not None and event["type"] != "ERROR":
                obj = event["object"]
                meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                event = {"type": event["type"], "object": tables.to_table(
                    rtype, [obj], meta, table, tables.check_include_object(include), headers)}
                headers = False
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
    """The emulated API server on loopback; `url` is what a kubeconfig's `server:` names.

    `kube_version` is what /version reports (by default the version emulated, see discovery);
    `controllers=False` leaves the controllers stopped until `start_controllers()` (the seed
    writes what they would have written); `bind_delay` is how long claims wait to be bound;
    `pod_subnets` maps a zone to the CIDR pods there get addresses from.
    """

    def __init__(self, kube_version: str = discovery.KUBERNETES_VERSION, host: str = "127.0.0.1", port: int = 0,
                 controllers: bool = True, bind_delay: float = BIND_DELAY_SECONDS,
                 pod_subnets: dict[str, str] | None = None) -> None:
        self.api = Api(bind_delay=bind_delay, pod_subnets=pod_subnets)
        self.httpd = ApiHTTPServer((host, port), self.api, kube_version)
        self.api.server_address = f"{host}:{self.httpd.server_address[1]}"
        self.controllers = controllers
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.api.server_address}"

    def start(self) -> KubeApiServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kube-api", daemon=True)
        self._thread.start()
        if self.controllers:
            self.api.start_controllers()
        return self

    def start_controllers(self) -> None:
        self.api.start_controllers()

    def stop(self) -> None:
        self.api.close()  # ends open watches and the controllers
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
