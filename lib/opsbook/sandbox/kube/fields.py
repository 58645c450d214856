"""Field paths of objects, as server-side apply tracks them, and the schemas that shape them.

A field set is a set of paths; a path is a tuple of steps: ("f", name) for a struct or map
field, ("k", '{"name":"web"}') for an item of a list of type map (identified by its
x-kubernetes-list-map-keys), ("v", '"x"') for an item of a list of type set. Lists of type
atomic, and maps or structs marked x-kubernetes-map-type: atomic, are one leaf. This is the
model of sigs.k8s.io/structured-merge-diff (fieldpath, and the schema's list and map types
read from the OpenAPI extensions), serialised as metav1.FieldsV1 (`f:`, `k:`, `v:`, `.`).

The schemas come from the vendored Kubernetes spec for built-in kinds, and from the CRD's
openAPIV3Schema for custom resources; a part without a schema is deduced as
structured-merge-diff deduces it: maps granular, lists atomic.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from opsbook.sandbox.kube.openapi import builtin_definitions, swagger

Path = tuple[tuple[str, str], ...]
# Metadata the server owns: never part of anyone's field set (fieldmanager ignores them).
IGNORED_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink")
IGNORED_ROOT = ("apiVersion", "kind")


class Schema:
    """A node of an OpenAPI schema, `$ref` and single-`allOf` resolved against the vendored definitions."""

    def __init__(self, node: dict[str, Any] | None) -> None:
        self.node = self._resolve(node)

    @staticmethod
    def _resolve(node: dict[str, Any] | None) -> dict[str, Any] | None:
        seen = 0
        while isinstance(node, dict) and seen < 8:
            ref = node.get("$ref") or (node.get("allOf") or [{}])[0].get("$ref")
            if not ref:
                break
            node = swagger()["definitions"].get(ref.rsplit("/", 1)[-1])
            seen += 1
        return node if isinstance(node, dict) else None

    def field(self, name: str) -> Schema:
        if self.node is None:
            return Schema(None)
        props = self.node.get("properties") or {}
        if name in props:
            return Schema(props[name])
        additional = self.node.get("additionalProperties")
        return Schema(additional if isinstance(additional, dict) else None)

    def items(self) -> Schema:
        return Schema((self.node or {}).get("items"))

    @property
    def atomic_map(self) -> bool:
        return (self.node or {}).get("x-kubernetes-map-type") == "atomic"

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        """("map", keys), ("set", ()) or ("atomic", ()): how the list's items are owned and merged."""
        node = self.node or {}
        kind = node.get("x-kubernetes-list-type")
        if kind == "map" and node.get("x-kubernetes-list-map-keys"):
            return "map", tuple(node["x-kubernetes-list-map-keys"])
        if kind is None and node.get("x-kubernetes-patch-strategy", "").startswith("merge") and \
                node.get("x-kubernetes-patch-merge-key"):
            return "map", (node["x-kubernetes-patch-merge-key"],)
        if kind == "set":
            return "set", ()
        return "atomic", ()


def schema_for(group: str, version: str, kind: str, crd_schema: dict[str, Any] | None) -> Schema:
    """The root schema of a kind: its CRD's openAPIV3Schema, or the built-in definition."""
    if crd_schema is not None:
        return Schema(crd_schema)
    name = builtin_definitions().get((group, version, kind))
    return Schema({"$ref": f"#/definitions/{name}"} if name else None)


def item_key(item: Any, keys: tuple[str, ...]) -> str:
    """The `k:` step of a map-list item: its key fields as compact JSON."""
    return json.dumps({k: item.get(k) for k in keys if isinstance(item, dict) and k in item}, separators=(",", ":"))


def _value_step(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"), sort_keys=True)


def field_set(obj: dict[str, Any], schema: Schema, with_status: bool) -> set[Path]:
    """Every field path an object sets (server-owned metadata excluded; status only when asked)."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in IGNORED_ROOT or (key == "status" and not with_status):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in IGNORED_METADATA}
            if value:
                _walk(value, schema.field(key), (("f", key),), out)
            continue
        _walk(value, schema.field(key), (("f", key),), out)
    return out


def _walk(value: Any, schema: Schema, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict) and value and not schema.atomic_map:
        for key, sub in value.items():
            _walk(sub, schema.field(key), (*path, ("f", key)), out)
    elif isinstance(value, list) and value:
        kind, keys = schema.list_type()
        if kind == "map":
            for item in value:
                item_path = (*path, ("k", item_key(item, keys)))
                out.add(item_path)
                if isinstance(item, dict):
                    _walk(item, schema.items(), item_path, out)
        elif kind == "set":
            out.update((*path, ("v", _value_step(item))) for item in value)
        else:
            out.add(path)
    else:
        out.add(path)


# --- values at paths -----------------------------------------------------------------------------


def _find_item(items: list[Any], step: tuple[str, str]) -> int | None:
    kind, text = step
    wanted = json.loads(text)
    for i, item in enumerate(items):
        if kind == "k" and isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
            return i
        if kind == "v" and item == wanted:
            return i
    return None


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    """The value a path names, or a marker when absent (compare with `is_missing`)."""
    value = obj
    for step in path:
        if step[0] == "f":
            value = value.get(step[1], _MISSING) if isinstance(value, dict) else _MISSING
        else:
            index = _find_item(value, step) if isinstance(value, list) else None
            value = _MISSING if index is None else value[index]
        if value is _MISSING:
            return _MISSING
    return value


def is_missing(value: Any) -> bool:
    return value is _MISSING


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the field or list item a path names (and nothing else)."""
    parent: Any = value_at(obj, path[:-1]) if len(path) > 1 else obj
    step = path[-1]
    if step[0] == "f" and isinstance(parent, dict):
        parent.pop(step[1], None)
    elif isinstance(parent, list):
        index = _find_item(parent, step)
        if index is not None:
            parent.pop(index)


def prune_empty(obj: dict[str, Any], path: Path) -> None:
    """After a removal, drop the maps and lists left empty on the way (never the root fields)."""
    for depth in range(len(path) - 1, 1, -1):
        value = value_at(obj, path[:depth])
        if isinstance(value, dict | list) and not value and path[depth - 1][0] == "f":
            remove_path(obj, path[:depth])


# --- merge ---------------------------------------------------------------------------------------


def merge(live: Any, applied: Any, schema: Schema) -> Any:
    """The applied configuration merged into the live object: maps and map-lists by key, the rest replaced."""
    if isinstance(live, dict) and isinstance(applied, dict) and not schema.atomic_map:
        out = copy.deepcopy(live)
        for key, value in applied.items():
            out[key] = merge(live.get(key), value, schema.field(key))
        return out
    if isinstance(live, list) and isinstance(applied, list):
        kind, keys = schema.list_type()
        if kind == "map":
            out = copy.deepcopy(live)
            for item in applied:
                index = _find_item(out, ("k", item_key(item, keys)))
                if index is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[index] = merge(out[index], item, schema.items())
            return out
        if kind == "set":
            return [*copy.deepcopy(live), *(copy.deepcopy(i) for i in applied if i not in live)]
    return copy.deepcopy(applied)


# --- FieldsV1 ------------------------------------------------------------------------------------


def encode(paths: set[Path]) -> dict[str, Any]:
    """metav1.FieldsV1 of a field set: nested `f:`/`k:`/`v:` keys, `.` marking an owned list item."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for kind, text in path:
            node = node.setdefault(f"{kind}:{text}", {})
        if path and path[-1][0] == "k":
            node["."] = {}
    return root


def decode(fields: Any) -> set[Path]:
    """The field set a FieldsV1 value describes."""
    out: set[Path] = set()

    def walk(node: Any, path: Path) -> None:
        if not isinstance(node, dict):
            return
        children = {k: v for k, v in node.items() if k != "."}
        if path and (not children or "." in node):
            out.add(path)
        for key, sub in children.items():
            kind, _, text = key.partition(":")
            if kind in ("f", "k", "v"):
                walk(sub, (*path, (kind, text)))

    walk(fields, ())
    return out


# --- unknown fields ------------------------------------------------------------------------------


def _closed(node: dict[str, Any] | None) -> bool:
    """A struct: it declares its properties and takes no others."""
    return bool(node) and "properties" in node and not node.get("additionalProperties") and \
        not node.get("x-kubernetes-preserve-unknown-fields")


def prune_unknown(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Drop the fields a built-in kind's schema does not have, as decoding into its Go type does;
    return their dotted paths (what `fieldValidation` reports as `unknown field`)."""
    dropped: list[str] = []
    _prune_map(obj, schema, "", dropped, root=True)
    return dropped


def _prune_map(value: dict[str, Any], schema: Schema, path: str, dropped: list[str], root: bool = False) -> None:
    node = schema.node
    known = (node or {}).get("properties") or {}
    for key in list(value):
        if root and key in IGNORED_ROOT:
            continue
        where = f"{path}.{key}" if path else key
        if _closed(node) and key not in known:
            dropped.append(where)
            del value[key]
        else:
            _prune_value(value[key], schema.field(key), where, dropped)


def _prune_value(value: Any, schema: Schema, path: str, dropped: list[str]) -> None:
    if isinstance(value, dict) and schema.node:
        _prune_map(value, schema, path, dropped)
    elif isinstance(value, list) and (schema.node or {}).get("items"):
        for i, item in enumerate(value):
            _prune_value(item, schema.items(), f"{path}[{i}]", dropped)
