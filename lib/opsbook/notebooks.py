"""Find runbooks and notebooks, and read what they say about themselves.

A notebook's purpose is the first line after the title of its first markdown cell;
its parameters are what papermill infers from the cell tagged `parameters`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
import yaml

from opsbook.errors import UsageError
from opsbook.params import project_root

FOLDERS = ("runbooks", "notebooks")


@dataclass(frozen=True)
class NotebookInfo:
    name: str
    kind: str  # "runbook" or "notebook"
    path: Path
    title: str
    purpose: str
    parameters: dict[str, dict[str, Any]]


def all_notebooks(root: Path | None = None) -> list[Path]:
    root = root or project_root()
    paths: list[Path] = []
    for folder in FOLDERS:
        paths.extend(sorted((root / folder).glob("*.ipynb")))
    return paths


def find_notebook(name: str, root: Path | None = None) -> Path:
    """A notebook by file stem (or path); the error lists what exists."""
    candidate = Path(name)
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return candidate.resolve()
    matches = [p for p in all_notebooks(root) if p.stem == candidate.stem]
    if not matches:
        known = ", ".join(p.stem for p in all_notebooks(root))
        raise UsageError(f"no runbook or notebook named {name!r}; known: {known}")
    return matches[0]


def describe(path: Path) -> NotebookInfo:
    nb = nbformat.read(path, as_version=4)
    title, purpose = path.stem, ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
            if lines:
                title = lines[0].lstrip("#").strip()
                purpose = next((ln for ln in lines[1:] if not ln.startswith("#")), "")
            break
    params = papermill.inspect_notebook(str(path))
    kind = "runbook" if path.parent.name == "runbooks" else "notebook"
    return NotebookInfo(path.stem, kind, path, title, purpose, params)


_TYPE_NAMES = {"bool": bool, "int": int, "float": float, "str": str, "list": list, "dict": dict}


def parse_overrides(info: NotebookInfo, pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings into typed parameters; unknown keys and bad values are refused."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"parameter {pair!r}: expected key=value")
        if key == "env":
            raise UsageError("parameter env: the environment is not a notebook parameter (-p env=...)",
                             remedy="give the environment with --env")
        if key not in info.parameters:
            known = ", ".join(k for k in info.parameters if k != "env") or "(none)"
            raise UsageError(f"{info.name} has no parameter {key!r}; its parameters are: {known}")
        out[key] = _coerce(key, raw, info.parameters[key])
    return out


def _declared_type(spec: dict[str, Any]) -> type | None:
    """The annotation papermill saw, else the type of the default's literal value."""
    wanted = _TYPE_NAMES.get(str(spec.get("inferred_type_name", "")).split("[")[0])
    if wanted is None:
        try:
            default = ast.literal_eval(str(spec.get("default")))
        except (ValueError, SyntaxError):
            return None
        wanted = type(default) if type(default) in _TYPE_NAMES.values() else None
    return wanted


def _coerce(key: str, raw: str, spec: dict[str, Any]) -> Any:
    wanted = _declared_type(spec)
    if wanted is None:  # None default or unknown annotation: YAML decides
        return yaml.safe_load(raw) if raw else raw
    if wanted is str:
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
        expected = {bool: "true or false", int: "a whole number", float: "a number",
                    list: "a YAML list like [a, b]", dict: "a YAML mapping like {a: 1}"}[wanted]
        raise UsageError(f"parameter {key}: expected {expected} (default {spec.get('default')}), got {raw!r}")
    return value
