"""Tables for people and for scripts: `--format table|json|csv` on every command that lists.

- `json`: a list of objects, one per row, keys in the command's column order; numbers stay
  numbers, missing values are null, times are ISO 8601 (UTC). Complete: nothing is cut.
- `csv`: the same rows and columns with a header line; a list or mapping is a JSON cell.
- `table`: on a terminal, a rich table whose cells wrap (never an ellipsis); when stdout is
  not a terminal (a pipe, a log, CI), plain aligned columns, one line per row, every value
  whole, so `| grep` and `| cat` see what was found.

Messages that are not rows (a hint, "nothing found") go to stderr for json and csv, so
stdout stays machine-readable.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Any

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from opsbook.commands.common import console, say
from opsbook.results import to_jsonable


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FORMAT_OPTION = typer.Option(
    Format.table, "--format", "-f", case_sensitive=False,
    help="table (for people), json or csv (every value whole, stable columns, for scripts).",
)


def _cell(value: Any) -> Any:
    """JSON-ready: NaN, NaT and None -> None; times -> ISO 8601; numpy -> Python."""
    if not isinstance(value, dict | list | tuple) and pd.isna(value):
        return None
    return to_jsonable(value)


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame as JSON-ready rows, keys in column order."""
    return [{str(c): _cell(v) for c, v in zip(frame.columns, row, strict=True)}
            for row in frame.itertuples(index=False)]


def _text(value: Any) -> str:
    """A cell as people read it: a mapping as k=value (Python literals), a list comma-separated, one line."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v!r}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return " ".join(str(value).splitlines())


def _csv_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else value)


def plain_columns(columns: list[str], rows: list[list[str]]) -> str:
    """Aligned columns, two spaces apart, one line per row; no value is ever cut."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    lines = [columns, *rows]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _rich_table(columns: list[str], rows: list[list[str]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")  # wrap long values, never cut them
    for row in rows:
        table.add_row(*(Text(v) for v in row))
    return table


def emit(frame: pd.DataFrame, fmt: Format, title: str, empty: str) -> None:
    """Print `frame` in `fmt`; `empty` is said (on stderr for json/csv) when there are no rows."""
    rows = rows_of(frame)
    columns = [str(c) for c in frame.columns]
    if fmt is Format.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    elif fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
    if fmt is not Format.table:
        if not rows:
            say(empty, stderr=True)
        return
    if not rows:
        say(empty)
        return
    cells = [[_text(row[c]) for c in columns] for row in rows]
    if console.is_terminal:
        console.print(_rich_table(columns, cells, title))
    else:
        say(f"{title}\n{plain_columns(columns, cells)}")


def note(message: str, fmt: Format) -> None:
    """A line for people beside the rows: stdout for a table, stderr for json and csv."""
    say(message, stderr=fmt is not Format.table)
