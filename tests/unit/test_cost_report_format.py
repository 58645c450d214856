"""How figures read in finance reports, and report.xlsx written from the tables a run kept."""

from __future__ import annotations

import json
import math

import openpyxl
import pandas as pd
import pytest
from opsbook import results
from opsbook.cost import charts
from opsbook.report import formatting
from opsbook.report.html import write_report
from opsbook.report.xlsx import sheet_name, write_workbook


@pytest.mark.parametrize("value, text", [(-49.375, "-$49.38"), (1234.56, "$1,234.56"), (0.0, "$0.00"),
                                         (-0.001, "$0.00"), (1_000_000, "$1,000,000.00")])
def test_money(value, text) -> None:
    assert formatting.money(value) == text


def test_percentages_counts_and_missing_figures() -> None:
    assert formatting.pct(12.345) == "12.3%"
    assert formatting.pct(-4.0, signed=True) == "-4.0%" and formatting.pct(4.0, signed=True) == "+4.0%"
    assert formatting.number(1234567.4) == "1,234,567"
    assert formatting.money(float("nan"), missing="unpriced") == "unpriced"
    assert formatting.money(None) == formatting.MISSING


def test_table_shows_unpriced_rows_as_unpriced_not_zero() -> None:
    frame = pd.DataFrame({"item": ["vol-a", "vol-b"], "monthly_saving": [-49.375, float("nan")],
                          "share_pct": [12.34, 50.0]})
    page = charts.table(frame, "Savings (USD)", money=["monthly_saving"], pct=["share_pct"], missing="unpriced").to_html()
    assert "-$49.38" in page and "unpriced" in page and "12.3%" in page
    assert "$0.00" not in page and "$-" not in page and "nan" not in page


def test_cards_show_labelled_figures_not_a_dict() -> None:
    shown = charts.cards({"month": "2025-10", "this": 4151.16, "change": -49.375, "change_pct": -1.2}, "October",
                         money=["this", "change"], pct=["change_pct"]).data
    assert "$4,151.16" in shown and "-$49.38" in shown and "-1.2%" in shown and "2025-10" in shown
    assert "{'" not in shown and "this" in shown and "change pct" in shown


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    """A run folder as the runner lays it out, with its records file named in the environment."""
    monkeypatch.setenv(results.RESULTS_FILE_ENV, str(tmp_path / "records.jsonl"))
    return tmp_path


def test_workbook_has_the_about_sheet_and_one_sheet_per_table(run_dir) -> None:
    by_service = pd.DataFrame({"service": ["AmazonEC2", "AmazonS3"], "this": [1234.56, -49.38],
                               "change_pct": [12.34, float("nan")], "hours": [744, 720]})
    charts.table(by_service, "Cost by service: October 2025 (USD)", money=["this"], pct=["change_pct"],
                 number=["hours"])
    charts.cards({"month": "2025-10", "this": 1185.18}, "October in one line", money=["this"])
    about = {"source": "CUR", "metric": "amortized", "month": "2025-10", "last_export": "2025-11-02T06:00:00+00:00",
             "months_complete": 13, "data_through": "2025-10-31", "line": "2025-10, amortized cost from CUR; ..."}
    outcome = {"name": "cost-monthly-review", "env": "sandbox", "run_id": "abcd1234", "status": "passed",
               "started_at": "2025-11-03T07:00:00+00:00", "records": {"about": about}}
    book = openpyxl.load_workbook(write_workbook(run_dir, outcome))
    first = {row[0]: row[1] for row in book["about"].iter_rows(min_row=2, values_only=True)}
    assert first["run id"] == "abcd1234" and first["source"] == "CUR" and first["metric"] == "amortized"
    assert first["month"] == "2025-10" and first["months complete"] == 13
    assert first["last export (UTC)"] == about["last_export"] and first["data freshness"] == about["line"]
    assert book.sheetnames == ["about", "Cost by service October 2025 (U", "October in one line"]
    ws = book["Cost by service October 2025 (U"]
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == ["service", "this", "change_pct", "hours"]
    assert ws["B2"].value == 1234.56 and ws["B2"].number_format == formatting.XLSX_MONEY
    assert ws["B3"].value == -49.38  # a number, shown by Excel as -$49.38
    assert ws["C2"].value == pytest.approx(12.34) and ws["C2"].number_format == formatting.XLSX_PCT
    assert ws["C3"].value is None  # no figure, not a zero
    cards = book["October in one line"]
    assert cards["B3"].value == 1185.18 and cards["B3"].number_format == formatting.XLSX_MONEY


def test_no_tables_no_workbook(run_dir) -> None:
    assert write_workbook(run_dir, {"records": {}}) is None


def test_sheet_names_are_excel_safe_and_unique() -> None:
    taken = {"about"}
    assert sheet_name("a: b/c [d]?", taken) == "a b c d"
    long = "Cost by service, October 2025 against the month before"
    first, second = sheet_name(long, taken), sheet_name(long, taken)
    assert len(first) <= 31 and len(second) <= 31 and first != second


def test_report_html_shows_the_data_freshness_at_the_top(tmp_path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A report")])
    line = "2025-10, amortized cost from CUR; last export 2025-11-02 06:00 UTC; 13 months complete"
    outcome = {"name": "x", "env": "sandbox", "run_id": "r", "status": "passed", "started_at": "t", "duration_s": 1.0,
               "records": {"about": {"line": line}}}
    page = write_report(nb, outcome, tmp_path / "report.html").read_text()
    assert page.index("13 months complete") < page.index("A report")


def test_recorded_tables_keep_numbers_as_numbers(run_dir) -> None:
    results.record_table("t", pd.DataFrame({"a": [1.5, math.nan]}), {"a": "money"}, "unpriced")
    entry = json.loads((run_dir / results.TABLES_INDEX).read_text())
    assert entry["formats"] == {"a": "money"} and entry["missing"] == "unpriced"
    assert pd.read_parquet(run_dir / entry["file"])["a"].iloc[0] == 1.5


def test_unpriced_money_cells_say_so_in_the_workbook(run_dir) -> None:
    frame = pd.DataFrame({"item": ["a", "b"], "monthly_saving": [2.5, float("nan")], "note": ["", float("nan")]})
    charts.table(frame, "Savings", money=["monthly_saving"], missing="unpriced")
    ws = openpyxl.load_workbook(write_workbook(run_dir, {"records": {}}))["Savings"]
    assert ws["B2"].value == 2.5 and ws["B3"].value == "unpriced"
    assert ws["C3"].value is None  # only money cells say "unpriced"
