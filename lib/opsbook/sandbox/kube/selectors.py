"""Label and field selectors with the API server's syntax and errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from opsbook.sandbox.kube.errors import ApiError

Matcher = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_CMP = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_./-]*)\s*$")


def _split(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(term: str) -> Matcher:
    if match := _CMP.match(term):
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _SET.match(term):
        negate, key, op, values = match.groups()
        if op:
            if negate:
                raise ApiError(400, f"unable to parse requirement: {term!r}")
            choices = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                return lambda labels: labels.get(key) in choices
            return lambda labels: labels.get(key) not in choices
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ApiError(400, f"unable to parse requirement: found {term.strip()!r}, expected a label selector term")


def label_matcher(selector: str | None) -> Matcher:
    """A predicate on an object's labels for `=, ==, !=, in, notin, key, !key`."""
    if not selector:
        return lambda obj: True
    requirements = [_requirement(term) for term in _split(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


# Field labels every kind supports, and those specific kinds add (as the real API server does).
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "Secret": ("type",),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "PersistentVolumeClaim": ("status.phase",),
    "PersistentVolume": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_matcher(selector: str | None, kind: str) -> Matcher:
    """A predicate for `field=value`, `field==value`, `field!=value` terms."""
    if not selector:
        return lambda obj: True
    allowed = COMMON_FIELDS + KIND_FIELDS.get(kind, ())
    terms = []
    for term in _split(selector):
        match = _CMP.match(term)
        if not match:
            raise ApiError(400, f"invalid field selector: {term.strip()!r}: expected field=value or field!=value")
        path, op, value = match.groups()
        if path not in allowed:
            raise ApiError(400, f'field label not supported: "{path}"')
        terms.append((path, op == "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) != negate for path, negate, value in terms)

    return matches
