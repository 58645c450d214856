"""Files the runbooks generate (backend block, terraform.tfvars, Helm values) as plan rows.

A generated file is planned like any other change: one row per setting, `create` when
the file or the setting is absent, `update` when its value differs, `no-op` when equal.
Applying writes the whole file, so applying twice leaves it as it is. The default
folder is `runs/<env>/generated/` (git-ignored), stable across runs so a second plan of
an applied file shows no change; a parameter can point at the Terraform checkout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import yaml

from opsbook.errors import OpsbookError
from opsbook.guard import Change
from opsbook.params import Params, project_root


def output_dir(params: Params, given: str | os.PathLike[str] = "", *parts: str) -> Path:
    """Where generated files go: `given` when set, else runs/<env>/generated/<parts>."""
    if given:
        return Path(given).expanduser().resolve()
    return (project_root() / "runs" / params.env / "generated").joinpath(*parts)


def write_text(path: Path, text: str) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


# --- HCL (terraform.tfvars, backend blocks) --------------------------------------------------


def _quoted(value: Any) -> Any:
    """python-hcl2 writes str values as expressions: a string literal carries its quotes."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return value


def to_hcl(data: dict[str, Any]) -> str:
    """Plain values (str, int, bool, lists, maps) as HCL attributes."""
    return hcl2.dumps(_quoted(data))


def backend_hcl(settings: dict[str, Any]) -> str:
    """A `terraform { backend "s3" { ... } }` block."""
    block = {"terraform": [{"backend": [{'"s3"': {**_quoted(settings), "__is_block__": True}}],
                            "__is_block__": True}]}
    return hcl2.dumps(block)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def read_hcl(path: Path) -> dict[str, Any]:
    """Parse an HCL file into plain values; a syntax error names the file."""
    try:
        data = hcl2.loads(path.read_text(), serialization_options=hcl2.SerializationOptions(strip_string_quotes=True))
    except Exception as exc:  # noqa: BLE001 - python-hcl2 raises lark errors of many kinds
        raise OpsbookError(f"{path}: not valid HCL ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                           remedy="fix or move the file, then plan again") from None
    return _clean(data)


def backend_settings(path: Path) -> dict[str, Any] | None:
    """The settings of the `backend "s3"` block in a file, or None when it has none."""
    data = read_hcl(path)
    for terraform in data.get("terraform", []):
        for backend in terraform.get("backend", []):
            for name, settings in backend.items():
                if name.strip('"') == "s3":
                    return settings
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise OpsbookError(f"{path}: not valid YAML ({exc})", remedy="fix or move the file, then plan again") from None
    return data if isinstance(data, dict) else {}


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


# --- plan rows ------------------------------------------------------------------------------


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested maps as dotted keys (lists stay whole: they are one setting)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def setting_rows(resource: str, current: dict[str, Any] | None, desired: dict[str, Any],
                 write: Callable[[], Any], nested: bool = True) -> list[Change]:
    """One row per setting of a generated file; every pending row writes the whole file."""
    have = (flatten(current) if nested else current) if current is not None else {}
    want = flatten(desired) if nested else desired
    rows = []
    for key, value in want.items():
        if current is None or key not in have:
            action = "create"
        elif have[key] != value:
            action = "update"
        else:
            action = "no-op"
        rows.append(Change(resource, key, have.get(key), value, action, do=write))
    return rows


def file_row(resource: str, attribute: str, current: dict[str, Any] | None, desired: dict[str, Any],
             write: Callable[[], Any]) -> Change:
    """One row for a whole generated file, naming the settings that differ."""
    if current is None:
        return Change(resource, attribute, None, f"{len(flatten(desired))} settings", "create", do=write)
    have, want = flatten(current), flatten(desired)
    differ = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    if not differ:
        return Change(resource, attribute, f"{len(have)} settings", f"{len(want)} settings", "no-op", do=write)
    shown = ", ".join(differ[:5]) + (f" (+{len(differ) - 5} more)" if len(differ) > 5 else "")
    return Change(resource, attribute, f"differs at: {shown}", f"{len(want)} settings", "update", do=write)
