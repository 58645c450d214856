"""How figures read in every report: money as `$1,234.56` and `-$49.38`, percentages with one
decimal, counts with thousands separators; the same rules in tables, charts, headlines and
the Excel workbook (whose number formats say the same in Excel's own terms)."""

from __future__ import annotations

import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

MISSING = "–"
UNPRICED = "unpriced"
# Excel number formats matching the text ones (the cell keeps the number itself)
XLSX_MONEY = '"$"#,##0.00;-"$"#,##0.00'
XLSX_PRECISE = '"$"#,##0.0000;-"$"#,##0.0000'
XLSX_PCT = '0.0"%"'
XLSX_NUMBER = "#,##0"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: Any, missing: str = MISSING, digits: int = 2) -> str:
    """-$49.38, $1,234.56; `missing` for a figure that could not be made (e.g. "unpriced")."""
    if _missing(value):
        return missing
    value = float(value)
    text = f"${abs(value):,.{digits}f}"
    return f"-{text}" if value < 0 and round(abs(value), digits) != 0 else text


def money_whole(value: Any, missing: str = MISSING) -> str:
    """-$49, $1,235: for chart axes and prose where cents are noise."""
    return money(value, missing, digits=0)


def pct(value: Any, missing: str = MISSING, signed: bool = False) -> str:
    """12.3% (the value is already in percent); +12.3% when `signed`."""
    if _missing(value):
        return missing
    return f"{float(value):+,.1f}%" if signed else f"{float(value):,.1f}%"


def number(value: Any, missing: str = MISSING) -> str:
    if _missing(value):
        return missing
    return f"{float(value):,.0f}"


def money_axis(ax: Axes, axis: str = "y") -> None:
    """Tick labels of a chart axis as whole dollars."""
    formatter = FuncFormatter(lambda v, _pos: money_whole(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def figure(value: Any, kind: str, missing: str = MISSING) -> str:
    """One value by its kind: money, precise (4 decimals), pct, number, or text."""
    if kind == "money":
        return money(value, missing)
    if kind == "precise":
        return money(value, missing, digits=4)
    if kind == "pct":
        return pct(value, missing)
    if kind == "number":
        return number(value, missing)
    return missing if _missing(value) else str(value)
