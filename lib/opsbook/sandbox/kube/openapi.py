"""The OpenAPI documents: /openapi/v2, and /openapi/v3 (an index and one document per group version).

Built-in kinds come from the vendored Kubernetes spec (opsbook.contracts: kubernetes/swagger.json),
limited to the group versions this server serves; each installed CRD adds its kinds' definitions
and paths as k8s.io/apiextensions-apiserver's pkg/controller/openapi/builder/builder.go builds them
(definition `<reversed group>.<version>.<Kind>` and `...List`, metadata as an ObjectMeta
reference, patch without strategic merge). A v3 document is its group version's part of the v2
one converted as k8s.io/kube-openapi pkg/openapiconv/convert.go does (`#/components/schemas/`,
a `$ref` with siblings wrapped in `allOf`, the body parameter as `requestBody`), with the shared
parameters inlined as the API server's own v3 builder (pkg/builder3) writes them.

Served as kube-openapi's handlers serve them (pkg/handler/handler.go, pkg/handler3/handler.go):
the ETag is the upper-case hex SHA-512 of the JSON; the v3 index links each document with
`?hash=<etag>`; a request with a stale hash is redirected (301) to the current one. Documents
are built once per set of served group versions and CRD versions, and cached with their gzip.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from opsbook.contracts import contract_path

V2_PREFIX, V3_PREFIX = "#/definitions/", "#/components/schemas/"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
# Built-in paths whose operations a CRD's paths copy (parameters, responses, consumes), by scope.
CRD_TEMPLATES = {
    True: ("/api/v1/namespaces/{namespace}/configmaps", "/api/v1/configmaps", "ConfigMap"),
    False: ("/api/v1/persistentvolumes", None, "PersistentVolume"),
}
STATUS_TEMPLATES = {True: "/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}/status",
                    False: "/api/v1/persistentvolumes/{name}/status"}
STRATEGIC = "application/strategic-merge-patch+json"


@lru_cache(maxsize=1)
def swagger() -> dict[str, Any]:
    """The vendored Kubernetes OpenAPI v2 spec, parsed once."""
    return json.loads(contract_path("kubernetes", "swagger.json").read_text())


@lru_cache(maxsize=1)
def builtin_definitions() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from the definitions' x-kubernetes-group-version-kind."""
    out = {}
    for name, schema in swagger()["definitions"].items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            out[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return out


def path_group_version(path: str) -> tuple[str, str] | None:
    """The group version a REST path belongs to: /api/v1/... -> ("", "v1"), /apis/g/v/... -> (g, v)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


def gv_path(group: str, version: str) -> str:
    """The key of a group version in the v3 index: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def crd_definition_name(group: str, version: str, kind: str) -> str:
    """`velero.io`, `v1`, `Backup` -> `io.velero.v1.Backup` (kube-openapi's REST-friendly name)."""
    return ".".join([*reversed(group.split(".")), version, kind])


# --- refs --------------------------------------------------------------------------------------


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(V2_PREFIX):
            found.add(ref[len(V2_PREFIX):])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _closure(roots: Iterable[Any], definitions: dict[str, Any]) -> list[str]:
    """Every definition the roots reference, directly or through other definitions."""
    todo: set[str] = set()
    for root in roots:
        _refs(root, todo)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in definitions:
            continue
        seen.add(name)
        _refs(definitions[name], todo)
    return sorted(seen)


# --- CRDs --------------------------------------------------------------------------------------


def _strip_nullable(node: Any) -> Any:
    """OpenAPI v2 has no `nullable` (apiextensions' ToStructuralOpenAPIV2 drops it)."""
    if isinstance(node, dict):
        return {k: _strip_nullable(v) for k, v in node.items() if k != "nullable"}
    if isinstance(node, list):
        return [_strip_nullable(v) for v in node]
    return node


def _crd_schema(schema: dict[str, Any], gvk: dict[str, str]) -> dict[str, Any]:
    out = _strip_nullable(copy.deepcopy(schema))
    props = out.setdefault("properties", {})
    # ObjectMeta and TypeMeta as every kind has them (the descriptions a built-in kind carries)
    typical = swagger()["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]
    props["metadata"] = {"$ref": V2_PREFIX + OBJECT_META, "description": typical["metadata"]["description"]}
    for field in ("apiVersion", "kind"):
        props[field] = {"type": "string", "description": typical[field]["description"]}
    out["x-kubernetes-group-version-kind"] = [gvk]
    return out


def _crd_list_schema(item: str, gvk: dict[str, str]) -> dict[str, Any]:
    kind = gvk["kind"]
    return {
        "description": f"{kind} is a list of {kind[:-4]}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": V2_PREFIX + item},
                      "description": f"List of {kind[:-4].lower()}s. More info: "
                                     "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"},
            "kind": {"type": "string"},
            "metadata": {"$ref": V2_PREFIX + LIST_META},
        },
        "x-kubernetes-group-version-kind": [gvk],
    }


def _retarget(template: dict[str, Any], old: tuple[str, str], new: tuple[str, str, str, str]) -> dict[str, Any]:
    """A built-in path item made into a CRD's: kind, definitions, GVK and operation ids replaced,
    and no strategic merge patch (custom resources have no patch strategies)."""
    old_kind, old_def = old
    group, version, kind, definition = new
    text = json.dumps(template)
    text = text.replace(V2_PREFIX + old_def + "List", V2_PREFIX + definition + "List")
    text = text.replace(V2_PREFIX + old_def + '"', V2_PREFIX + definition + '"').replace(old_kind, kind)
    item = json.loads(text)
    for op in item.values():
        if not isinstance(op, dict):
            continue
        if "x-kubernetes-group-version-kind" in op:
            op["x-kubernetes-group-version-kind"] = {"group": group, "kind": kind, "version": version}
        op["tags"] = [f"{group}_{version}"]
        if STRATEGIC in op.get("consumes", []):
            op["consumes"] = [c for c in op["consumes"] if c != STRATEGIC]
    return item


@dataclass(frozen=True)
class CrdVersion:
    """One served version of a CRD, what its OpenAPI needs."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    status: bool
    schema: dict[str, Any]


def crd_versions(crd: dict[str, Any]) -> list[CrdVersion]:
    spec = crd["spec"]
    out = []
    for version in spec["versions"]:
        if version.get("served", True):
            out.append(CrdVersion(spec["group"], version["name"], spec["names"]["kind"], spec["names"]["plural"],
                                  spec["scope"] == "Namespaced", "status" in (version.get("subresources") or {}),
                                  (version.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}))
    return out


def crd_parts(crd: CrdVersion) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, definitions) a CRD version adds to the v2 spec."""
    paths = swagger()["paths"]
    definition = crd_definition_name(crd.group, crd.version, crd.kind)
    gvk = {"group": crd.group, "version": crd.version, "kind": crd.kind}
    definitions = {definition: _crd_schema(crd.schema, gvk),
                   definition + "List": _crd_list_schema(definition, {**gvk, "kind": crd.kind + "List"})}
    scoped, all_namespaces, old_kind = CRD_TEMPLATES[crd.namespaced]
    old_def = builtin_definitions()[("", "v1", old_kind)]
    new = (crd.group, crd.version, crd.kind, definition)
    root = f"/apis/{crd.group}/{crd.version}" + ("/namespaces/{namespace}" if crd.namespaced else "")
    out = {f"{root}/{crd.plural}": _retarget(paths[scoped], (old_kind, old_def), new),
           f"{root}/{crd.plural}/{{name}}": _retarget(paths[scoped + "/{name}"], (old_kind, old_def), new)}
    if all_namespaces:
        every = f"/apis/{crd.group}/{crd.version}/{crd.plural}"
        out[every] = _retarget(paths[all_namespaces], (old_kind, old_def), new)
    if crd.status:
        template = STATUS_TEMPLATES[crd.namespaced]
        status_kind = "PersistentVolumeClaim" if crd.namespaced else "PersistentVolume"
        old = (status_kind, builtin_definitions()[("", "v1", status_kind)])
        out[f"{root}/{crd.plural}/{{name}}/status"] = _retarget(paths[template], old, new)
    return out, definitions


# --- v2 -> v3 ----------------------------------------------------------------------------------


def to_v3_schema(node: Any) -> Any:
    """openapiconv.ConvertSchema: v3 refs, and a `$ref` with siblings wrapped in allOf (builder3 WrapRefs)."""
    if isinstance(node, list):
        return [to_v3_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_v3_schema(v) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if isinstance(ref, str):
        ref = ref.replace(V2_PREFIX, V3_PREFIX, 1)
        if out:
            out["allOf"] = [{"$ref": ref}]
        else:
            out["$ref"] = ref
    return out


def _v3_parameter(param: dict[str, Any]) -> dict[str, Any]:
    """openapiconv.ConvertParameter, the simple type moved into `schema`."""
    out = {k: param[k] for k in ("name", "in", "description", "required", "allowEmptyValue") if k in param}
    if "schema" in param:
        out["schema"] = to_v3_schema(param["schema"])
    else:
        out["schema"] = {k: param[k] for k in ("type", "format", "uniqueItems") if k in param}
    return out


def _resolve(param: dict[str, Any]) -> dict[str, Any]:
    ref = param.get("$ref", "")
    return swagger()["parameters"][ref.rsplit("/", 1)[-1]] if ref.startswith("#/parameters/") else param


def _v3_operation(op: dict[str, Any]) -> dict[str, Any]:
    """openapiconv.ConvertOperation: the body parameter becomes requestBody, one entry per media type."""
    out: dict[str, Any] = {k: v for k, v in op.items()
                           if k not in ("parameters", "responses", "consumes", "produces", "schemes", "operationId")}
    if "operationId" in op:
        out["operationId"] = op["operationId"]
    params = []
    for raw in op.get("parameters") or []:
        param = _resolve(raw)
        if param.get("in") == "body":
            schema = to_v3_schema(param["schema"])
            out["requestBody"] = {"content": {c: {"schema": schema} for c in op.get("consumes") or []}}
            if param.get("required"):
                out["requestBody"]["required"] = True
        else:
            params.append(_v3_parameter(param))
    if params:
        out["parameters"] = params
    responses = {}
    for code, response in (op.get("responses") or {}).items():
        converted = {"description": response.get("description", "")}
        if "schema" in response:
            schema = to_v3_schema(response["schema"])
            converted["content"] = {p: {"schema": schema} for p in op.get("produces") or []}
        responses[code] = converted
    out["responses"] = responses
    return out


def _v3_path(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "parameters":
            out["parameters"] = [_v3_parameter(_resolve(p)) for p in value]
        elif isinstance(value, dict):
            out[key] = _v3_operation(value)
        else:
            out[key] = value
    return out


# --- documents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """One document as it goes on the wire: JSON, its gzip, and its ETag."""

    body: bytes
    gz: bytes
    etag: str

    @classmethod
    def of(cls, doc: Any) -> Served:
        body = json.dumps(doc, separators=(",", ":")).encode()
        return cls(body, gzip.compress(body, compresslevel=5), hashlib.sha512(body).hexdigest().upper())


class Documents:
    """The v2 document and the v3 documents for one state of the server (its group versions and CRDs)."""

    def __init__(self, group_versions: Iterable[tuple[str, str]], crds: Iterable[dict[str, Any]]) -> None:
        spec = swagger()
        served = set(group_versions)
        self.paths = {p: item for p, item in spec["paths"].items() if path_group_version(p) in served}
        self.definitions = dict(spec["definitions"])
        for crd in crds:
            for version in crd_versions(crd):
                paths, definitions = crd_parts(version)
                self.paths.update(paths)
                self.definitions.update(definitions)
        self.group_versions = sorted(served & {path_group_version(p) for p in self.paths})
        self._v2: Served | None = None
        self._v3: dict[tuple[str, str], Served] = {}
        self._lock = threading.Lock()

    def v2(self) -> Served:
        with self._lock:
            if self._v2 is None:
                spec = swagger()
                self._v2 = Served.of({"swagger": spec["swagger"], "info": spec["info"], "paths": self.paths,
                                      "definitions": self.definitions, "parameters": spec["parameters"],
                                      "security": spec["security"], "securityDefinitions": spec["securityDefinitions"]})
            return self._v2

    def v3(self, group: str, version: str) -> Served | None:
        """The document of one group version, or None when this server does not serve it."""
        if (group, version) not in self.group_versions:
            return None
        with self._lock:
            if (group, version) not in self._v3:
                self._v3[(group, version)] = Served.of(self._v3_document(group, version))
            return self._v3[(group, version)]

    def _v3_document(self, group: str, version: str) -> dict[str, Any]:
        paths = {p: item for p, item in self.paths.items() if path_group_version(p) == (group, version)}
        resolved = [[_resolve(p) for p in op.get("parameters") or []] if isinstance(op, dict) else op
                    for item in paths.values() for op in item.values()]
        names = _closure([paths, resolved], self.definitions)
        spec = swagger()
        return {
            "openapi": "3.0.0",
            "info": spec["info"],
            "paths": {p: _v3_path(item) for p, item in paths.items()},
            "components": {
                "schemas": {n: to_v3_schema(self.definitions[n]) for n in names},
                "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                                    "name": "authorization", "in": "header"}},
            },
        }

    def v3_index(self) -> Served:
        """/openapi/v3: each group version's document path with the hash of its current content."""
        entries = {}
        for group, version in self.group_versions:
            doc = self.v3(group, version)
            assert doc is not None
            entries[gv_path(group, version)] = {
                "serverRelativeURL": f"/openapi/v3/{gv_path(group, version)}?hash={doc.etag}"}
        return Served.of({"paths": entries})


class OpenApi:
    """The documents of the server's current state, rebuilt when its group versions or CRDs change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Any = None
        self._docs: Documents | None = None

    def documents(self, group_versions: Iterable[tuple[str, str]], crds: list[dict[str, Any]]) -> Documents:
        gvs = tuple(sorted(set(group_versions)))
        key = (gvs, tuple((c["metadata"]["name"], c["metadata"].get("resourceVersion")) for c in crds))
        with self._lock:
            if key != self._key or self._docs is None:
                self._docs, self._key = Documents(gvs, crds), key
            return self._docs
