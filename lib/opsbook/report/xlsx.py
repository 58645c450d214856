"""`report.xlsx`: a finance run's tables as a workbook a reader can take away.

The first sheet says what the figures are: the notebook, the cost source, the metric, the
month, the data's freshness (the CUR's last export time, the months complete) and the run
id, from the run's `about` record (opsbook.cost.freshness) and results.json. Then one sheet
per table the notebook showed (results.record_table, which `cost.charts.table` and
`cost.charts.cards` call), in the order shown: numbers stay numbers, in Excel number
formats that read as the report does ($1,234.56, 12.3%), with the header frozen. Written
with pandas and openpyxl.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from opsbook.report import formatting
from opsbook.results import TABLES_INDEX

NUMBER_FORMATS = {"money": formatting.XLSX_MONEY, "precise": formatting.XLSX_PRECISE, "pct": formatting.XLSX_PCT,
                  "number": formatting.XLSX_NUMBER}
ABOUT_SHEET = "about"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def about_rows(results: dict[str, Any]) -> list[tuple[str, Any]]:
    """The first sheet: what, from where, how fresh, which run."""
    about = results.get("records", {}).get("about") or {}
    return [
        ("notebook", results.get("name")), ("environment", results.get("env")), ("run id", results.get("run_id")),
        ("started (UTC)", results.get("started_at")), ("status", results.get("status")),
        ("source", about.get("source", "not recorded")), ("metric", about.get("metric", "not recorded")),
        ("month", about.get("month") or "—"), ("data freshness", about.get("line", "not recorded")),
        ("last export (UTC)", about.get("last_export") or "not known to this source"),
        ("months complete", about.get("months_complete")), ("data through", about.get("data_through")),
    ]


def sheet_name(title: str, taken: set[str]) -> str:
    """An Excel sheet name (at most 31 characters, none of []:*?/\\) unique in the workbook."""
    base = " ".join(_BAD_SHEET_CHARS.sub(" ", title).split())[:31].strip() or "table"
    name, k = base, 2
    while name.lower() in taken:
        suffix = f" ({k})"
        name, k = base[: 31 - len(suffix)] + suffix, k + 1
    taken.add(name.lower())
    return name


def _format_sheet(ws: Worksheet, frame: pd.DataFrame, formats: dict[str, str]) -> None:
    ws.freeze_panes = "A2"
    for i, column in enumerate(frame.columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = min(60, max(12, len(str(column)) + 2))
        kind = formats.get(column)
        for row, cell in enumerate(ws[letter][1:]):
            cell_kind = frame["kind"].iloc[row] if kind == "by kind" else kind
            if cell_kind in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[cell_kind]


def _tables(run_dir: Path) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    index = run_dir / TABLES_INDEX
    if not index.is_file():
        return []
    entries = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
    return [(entry, pd.read_parquet(run_dir / entry["file"])) for entry in entries]


def _cell_ready(frame: pd.DataFrame, entry: dict[str, Any]) -> pd.DataFrame:
    """Values Excel can hold: naive datetimes, text for what is neither number nor date, and the
    table's word for an empty money cell (e.g. "unpriced") where it has one."""
    out = frame.copy()
    if entry.get("missing"):
        for column, kind in entry.get("formats", {}).items():
            if kind in ("money", "precise") and column in out:
                out[column] = out[column].astype(object).where(out[column].notna(), entry["missing"])
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_localize(None)
        elif out[column].dtype == object:
            out[column] = out[column].map(lambda v: v if v is None or isinstance(v, str | int | float) else str(v))
    return out


def write_workbook(run_dir: Path, results: dict[str, Any]) -> Path | None:
    """Write `report.xlsx` in the run folder when the run kept tables; returns its path."""
    tables = _tables(run_dir)
    if not tables:
        return None
    path = run_dir / "report.xlsx"
    taken = {ABOUT_SHEET}
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        about = pd.DataFrame(about_rows(results), columns=["item", "value"])
        about = pd.concat([about, pd.DataFrame({"item": ["tables"], "value": [len(tables)]})], ignore_index=True)
        about.to_excel(writer, sheet_name=ABOUT_SHEET, index=False)
        writer.sheets[ABOUT_SHEET].freeze_panes = "A2"
        writer.sheets[ABOUT_SHEET].column_dimensions["A"].width = 20
        writer.sheets[ABOUT_SHEET].column_dimensions["B"].width = 90
        about_sheet = writer.sheets[ABOUT_SHEET]
        for k, (entry, frame) in enumerate(tables):
            name = sheet_name(entry["title"], taken)
            frame = _cell_ready(frame, entry)
            frame.to_excel(writer, sheet_name=name, index=False)
            _format_sheet(writer.sheets[name], frame, entry.get("formats", {}))
            about_sheet.cell(row=len(about) + 2 + k, column=1, value=name)
            about_sheet.cell(row=len(about) + 2 + k, column=2, value=entry["title"])
    return path
