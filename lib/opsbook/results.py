"""`record()` inside notebooks, and reading a run's results back.

The runner points OPSBOOK_RESULTS_FILE at a JSON-lines file in the run folder; each
`record(key, value)` appends one line (secrets masked), so even a run whose kernel
dies keeps what it recorded up to then. Outside the runner, records stay in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from opsbook.secrets import mask

RESULTS_FILE_ENV = "OPSBOOK_RESULTS_FILE"
_MEMORY: dict[str, Any] = {}


# what `to_jsonable` turns other values into, by what they have: (applies, convert), tried in order
_CONVERSIONS: list[tuple[Callable[[Any], bool], Callable[[Any], Any]]] = [
    (lambda v: hasattr(v, "model_dump"), lambda v: v.model_dump(mode="json")),  # pydantic
    (lambda v: hasattr(v, "to_dict") and hasattr(v, "columns"), lambda v: v.to_dict(orient="records")),  # DataFrame
    (lambda v: hasattr(v, "to_dict"), lambda v: v.to_dict()),  # Series
    (lambda v: hasattr(v, "item"), lambda v: v.item()),  # numpy scalar
    (lambda v: hasattr(v, "__dataclass_fields__"), asdict),
]


def to_jsonable(value: Any) -> Any:
    """Plain JSON for pandas, numpy, pydantic models, dataclasses, datetimes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    for applies, convert in _CONVERSIONS:
        if applies(value):
            return to_jsonable(convert(value))
    return str(value)


def record(key: str, value: Any) -> Any:
    """Keep `value` under `key` in the run's results.json; returns the value."""
    # records are results, not inputs: a check named after a password parameter is no
    # secret, so only values seen as secrets are masked here (parameters are masked by name too)
    clean = mask(to_jsonable(value), by_name=False)
    _MEMORY[key] = clean
    path = os.environ.get(RESULTS_FILE_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"key": key, "value": clean}) + "\n")
    return value


def recorded() -> dict[str, Any]:
    """What this process recorded so far (interactive use)."""
    return dict(_MEMORY)


def read_records(path: Path) -> dict[str, Any]:
    """Fold a records file into {key: last value}."""
    out: dict[str, Any] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                out[item["key"]] = item["value"]
    return out


def load_results(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "results.json").read_text())
