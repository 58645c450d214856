"""Table responses (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): what `kubectl get` prints.

The Table shape is k8s.io/apimachinery pkg/apis/meta/v1/types.go (Table, TableColumnDefinition,
TableRow); rows carry the object as `includeObject` asks (k8s.io/apiserver
pkg/endpoints/handlers/response.go: PartialObjectMetadata by default, the whole object, or none).
Built-in kinds use the server's printers (printers.py); custom resources their CRD version's
additionalPrinterColumns, or a single Age column when it has none
(k8s.io/apiextensions-apiserver pkg/registry/customresource/tableconvertor/tableconvertor.go,
pkg/apiserver/helpers.go serveDefaultColumnsIfEmpty).
"""

from __future__ import annotations

import json
import re
from typing import Any

from opsbook.sandbox.kube import printers
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.resources import ResourceType

TABLE_VERSIONS = ("v1", "v1beta1")
INCLUDE_OBJECT = ("Metadata", "Object", "None")
_STEP = re.compile(r"^([^\[\]]*)((?:\[\d+\])*)$")


def table_version(accept: str | None) -> str | None:
    """The meta.k8s.io version of the first Table media type the Accept header asks for, else None."""
    for clause in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in clause.split(";")[1:] if "=" in p)
        if (clause.split(";")[0].strip() == "application/json" and params.get("as") == "Table"
                and params.get("g") == "meta.k8s.io" and params.get("v") in TABLE_VERSIONS):
            return params["v"]
    return None


def _jsonpath(obj: Any, path: str) -> Any:
    """The value at a simple JSONPath (`.status.phase`, `.spec.items[0].name`), None when absent."""
    value = obj
    for step in path.strip().removeprefix(".").split("."):
        match = _STEP.match(step)
        if match is None:
            return None
        key, indexes = match.groups()
        if key:
            value = value.get(key) if isinstance(value, dict) else None
        for index in re.findall(r"\d+", indexes):
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
    return value


def _crd_cell(column: dict[str, Any], obj: dict[str, Any]) -> Any:
    """tableconvertor.cellForJSONValue: the column's type decides how a found value is shown."""
    value = _jsonpath(obj, column.get("jsonPath", ""))
    if value is None:
        return None
    kind = column.get("type")
    if kind == "string":
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        return text
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return "<invalid>" if printers.parse_time(value) is None else printers.since(value)
    return None


def crd_columns(rtype: ResourceType) -> list[dict[str, Any]]:
    """The CRD version's additionalPrinterColumns, or the default Age column."""
    return list(rtype.printer_columns) or [{
        "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
        "description": printers.doc(printers.META, "creationTimestamp")}]


def _columns_and_cells(rtype: ResourceType) -> tuple[list[dict[str, Any]], Any]:
    if not rtype.crd:
        return printers.printer(rtype.group, rtype.kind)
    crd = crd_columns(rtype)
    columns = [printers.name_column(), *(printers.column(
        c["name"], c.get("type", "string"),
        c.get("description") or f"Custom resource definition column (in JSONPath format): {c.get('jsonPath')}",
        c.get("priority", 0), c.get("format", "")) for c in crd)]
    return columns, lambda obj: [obj["metadata"]["name"], *(_crd_cell(c, obj) for c in crd)]


def _row_object(obj: dict[str, Any], rtype: ResourceType, include: str, version: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return {"kind": rtype.kind, "apiVersion": rtype.api_version, **obj}
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}", "metadata": obj["metadata"]}


def check_include_object(value: str | None) -> str:
    include = value or "Metadata"
    if include not in INCLUDE_OBJECT:
        raise ApiError(400, f'unrecognized includeObject value: "{include}"')
    return include


def to_table(rtype: ResourceType, objects: list[dict[str, Any]], meta: dict[str, Any], version: str,
             include: str = "Metadata", headers: bool = True) -> dict[str, Any]:
    """A Table of the objects (a list, one object, or one watch event's object)."""
    columns, cells = _columns_and_cells(rtype)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj)}
        conditions = None if rtype.crd else printers.extra_conditions(rtype.group, rtype.kind, obj)
        if conditions:
            row["conditions"] = conditions
        item = _row_object(obj, rtype, include, version)
        if item is not None:
            row["object"] = item
        rows.append(row)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": meta,
            "columnDefinitions": columns if headers else None, "rows": rows}
