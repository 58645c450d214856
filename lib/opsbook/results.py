"""`record()` and `record_table()` inside notebooks, and reading a run's results back.

The runner points OPSBOOK_RESULTS_FILE at a JSON-lines file in the run folder; each
`record(key, value)` appends one line (secrets masked), so even a run whose kernel
dies keeps what it recorded up to then. `record_table(title, frame, formats)` keeps a
table for the run's report.xlsx: its rows in `tables/<n>.parquet` beside the records
(types kept: numbers stay numbers) and its title and column formats in `tables.jsonl`;
the runner writes the workbook after the run (opsbook.report.xlsx). Outside the runner,
records and tables stay in memory.
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
TABLES_INDEX = "tables.jsonl"
TABLES_DIR = "tables"
_MEMORY: dict[str, Any] = {}
_TABLES: list[tuple[dict[str, Any], Any]] = []


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


def run_dir() -> Path | None:
    """The folder of the run this kernel belongs to (None outside the runner)."""
    path = os.environ.get(RESULTS_FILE_ENV)
    return Path(path).parent if path else None


def record_table(title: str, frame: Any, formats: dict[str, str] | None = None, missing: str = "") -> None:
    """Keep a table for the run's report.xlsx; `formats`: column -> money, precise, pct or number;
    `missing`: what an empty cell of a formatted column says (e.g. "unpriced")."""
    entry = {"title": title, "formats": dict(formats or {}), "missing": missing}
    folder = run_dir()
    if folder is None:
        _TABLES.append((entry, frame))
        return
    tables = folder / TABLES_DIR
    tables.mkdir(exist_ok=True)
    entry["file"] = f"{TABLES_DIR}/{len(list(tables.glob('*.parquet'))) + 1:03d}.parquet"
    frame.reset_index(drop=True).to_parquet(folder / entry["file"], index=False)
    with open(folder / TABLES_INDEX, "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def recorded_tables() -> list[tuple[dict[str, Any], Any]]:
    """The tables this process kept so far (interactive use)."""
    return list(_TABLES)


def earlier_records(key: str) -> list[dict[str, Any]]:
    """What earlier passed runs of this notebook in this environment recorded under `key`:
    [{"run_id", "started_at", "value"}], oldest first (none outside the runner)."""
    folder = run_dir()
    if folder is None:
        return []
    found = []
    for results_file in folder.parent.glob("*/results.json"):
        if results_file.parent == folder:
            continue
        try:
            results = json.loads(results_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run still being written, or a broken file: not evidence
        if results.get("status") == "passed" and key in results.get("records", {}):
            found.append({"run_id": results.get("run_id"), "started_at": results.get("started_at"),
                          "value": results["records"][key]})
    return sorted(found, key=lambda r: r["started_at"] or "")


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
