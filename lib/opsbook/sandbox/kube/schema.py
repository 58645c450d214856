"""Structural schemas of CRDs: pruning, defaulting and validation as the API server does them.

A CRD's openAPIV3Schema is OpenAPI v3, not JSON Schema: `nullable`, `x-kubernetes-*`
and the `date-time`/`byte` formats are translated here before jsonschema validates.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import re
from functools import lru_cache
from typing import Any

import jsonschema

ROOT_FIELDS = ("apiVersion", "kind", "metadata")
PRESERVE = "x-kubernetes-preserve-unknown-fields"

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError("not an RFC 3339 date-time")
    dt.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", value))
    return True


@_FORMATS.checks("byte", raises=(binascii.Error, ValueError))
def _byte(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


def to_json_schema(node: Any) -> Any:
    """Translate an OpenAPI v3 (Kubernetes structural) schema into JSON Schema draft 4."""
    if not isinstance(node, dict):
        return node
    out = {key: _translate(key, value) for key, value in node.items()
           if not key.startswith("x-kubernetes-") and key not in ("nullable", "description", "example")}
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        _allow_null(out)
    return out


def _translate(key: str, value: Any) -> Any:
    """One keyword's value, its sub-schemas translated."""
    if key in ("properties", "patternProperties"):
        return {name: to_json_schema(sub) for name, sub in value.items()}
    if key in ("items", "additionalProperties", "not") and isinstance(value, dict):
        return to_json_schema(value)
    if key in ("allOf", "anyOf", "oneOf"):
        return [to_json_schema(sub) for sub in value]
    return value


def _allow_null(out: dict[str, Any]) -> None:
    """`nullable: true`: null is one more type, and one more enum value."""
    if "type" in out:
        out["type"] = [out["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(to_json_schema(json.loads(schema_json)), format_checker=_FORMATS)


def validator_for(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    return _validator(json.dumps(schema, sort_keys=True))


def _path(parts: list[Any] | Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _quote(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, dict | list) else type(value).__name__


def validate(obj: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, str]]:
    """Validation causes (reason, message, field) for an object, [] when it is valid."""
    body = {k: v for k, v in obj.items() if k != "metadata"}
    sub_schema = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items() if k != "metadata"}}
    causes = []
    errors = sorted(validator_for(sub_schema).iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        where = list(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else str(error.validator_value)
            field = _path([*where, missing])
            causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field})
        elif error.validator == "enum":
            supported = ", ".join(_quote(v) for v in error.validator_value if v is not None)
            causes.append({
                "reason": "FieldValueNotSupported",
                "message": f"Unsupported value: {_quote(error.instance)}: supported values: {supported}",
                "field": _path(where),
            })
        elif error.validator == "type":
            expected = error.validator_value
            expected = expected[0] if isinstance(expected, list) else expected
            got = _json_type(error.instance)
            causes.append({
                "reason": "FieldValueTypeInvalid",
                "message": f'Invalid value: "{got}": {_path(where)} in body must be of type {expected}: "{got}"',
                "field": _path(where),
            })
        else:
            causes.append({
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {_quote(error.instance)}: {error.message}",
                "field": _path(where),
            })
    return causes


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def prune(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Drop fields the schema does not know (as the API server does); return their paths."""
    dropped: list[str] = []
    for key in list(obj):
        if key in ROOT_FIELDS:
            continue
        props = schema.get("properties", {})
        if key in props:
            obj[key] = _prune(obj[key], props[key], key, dropped)
            if obj[key] is None and not props[key].get("nullable"):
                del obj[key]
        elif not schema.get(PRESERVE):
            dropped.append(key)
            del obj[key]
    return dropped


def _prune(value: Any, schema: dict[str, Any], path: str, dropped: list[str]) -> Any:
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key in list(value):
            sub_path = f"{path}.{key}"
            if props is not None and key in props:
                value[key] = _prune(value[key], props[key], sub_path, dropped)
                # nulls of non-nullable fields are pruned before defaulting
                if value[key] is None and not props[key].get("nullable"):
                    del value[key]
            elif isinstance(additional, dict):
                value[key] = _prune(value[key], additional, sub_path, dropped)
            elif not schema.get(PRESERVE) and additional is not True:
                dropped.append(sub_path)
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(item, schema["items"], f"{path}[{i}]", dropped) for i, item in enumerate(value)]
    return value


def apply_defaults(value: Any, schema: dict[str, Any], root: bool = True) -> Any:
    """Fill `default` values of absent fields, depth first, like structural defaulting."""
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if root and key in ROOT_FIELDS:
                continue
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(value[key], sub, root=False)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in schema.get("properties", {}):
                    value[key] = apply_defaults(value[key], additional, root=False)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"], root=False) for item in value]
    return value
