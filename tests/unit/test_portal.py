"""The runs portal's parts without a browser: the catalog of runs, the charts, the pages, the CLI's tables."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from opsbook.commands.output import plain_columns, rows_of
from opsbook.errors import UsageError
from opsbook.report.catalog import INCOMPLETE, local_runs, make_run, parse_since, select
from opsbook.report.chart import chart_svg, describe, metric_points
from opsbook.report.index import STRIP, build_portal, write_index

T0 = datetime(2025, 3, 1, 2, 17, tzinfo=UTC)


def results(name: str, status: str, started: datetime, run_id: str, **records) -> dict:
    return {"name": name, "env": "prod-pl", "run_id": run_id, "status": status, "started_at": started.isoformat(),
            "duration_s": 12.5, "notebook": f"runbooks/{name}.ipynb", "records": records,
            "error": None if status == "passed" else {"ename": "RuntimeError", "evalue": "restore found no row"}}


def drill(rto: float | None, rto_target: float, verdict: str = "pass") -> dict:
    return {"name": "rds-pitr", "verdict": verdict, "reason": "", "rto_s": rto, "rto_target_s": rto_target,
            "rpo_s": 30.0, "rpo_target_s": 900.0}


def write_run(root: Path, result: dict, *extra: str) -> Path:
    folder = root / result["env"] / result["name"] / f"{datetime.fromisoformat(result['started_at']):%Y%m%dT%H%M%SZ}-{result['run_id']}"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(result))
    for name in ("report.html", "output.ipynb", *extra):
        (folder / name).write_text("x")
    return folder


def test_a_folder_without_readable_results_is_an_incomplete_run(tmp_path: Path) -> None:
    folder = tmp_path / "prod-pl" / "rds-pitr-drill" / "20250301T021700Z-ab12cd34"
    folder.mkdir(parents=True)
    (folder / "output.ipynb").write_text("{}")
    (folder / "results.json").write_text("{not json")
    [run] = local_runs(tmp_path)
    assert (run.status, run.run_id, run.started_at, run.env) == (INCOMPLETE, "ab12cd34", T0, "prod-pl")
    assert "no readable results.json" in run.headline
    assert run.files == ("output.ipynb", "results.json")


def test_a_failed_run_shows_its_error_unless_it_is_a_drill_verdict() -> None:
    plain = make_run("e/n/20250301T021700Z-a", [], results("health-check", "failed", T0, "a"))
    assert plain.headline == "RuntimeError: restore found no row"
    failed_drill = make_run("e/n/20250301T021700Z-b", [], results("rds-pitr-drill", "failed", T0, "b",
                                                                  drill=drill(2000.0, 1800.0, "fail")))
    assert failed_drill.headline.startswith("fail: RTO 2,000.00 s")


@pytest.mark.parametrize("text, expected", [
    ("7d", T0 - timedelta(days=7)), ("12h", T0 - timedelta(hours=12)), ("30m", T0 - timedelta(minutes=30)),
    ("2025-02-01", datetime(2025, 2, 1, tzinfo=UTC)), ("2025-02-01T06:00Z", datetime(2025, 2, 1, 6, tzinfo=UTC)),
])
def test_since_takes_an_age_or_a_date(text: str, expected: datetime) -> None:
    assert parse_since(text, now=T0) == expected


def test_since_refuses_anything_else_saying_what_it_expects() -> None:
    with pytest.raises(UsageError, match=r"--since: expected an age such as 30m.*got 'last week'"):
        parse_since("last week")


def test_select_applies_every_filter() -> None:
    runs = [make_run(f"prod-pl/{n}/20250301T021700Z-{i}", [], results(n, s, T0 + timedelta(hours=i), str(i)))
            for i, (n, s) in enumerate([("a", "passed"), ("a", "failed"), ("b", "failed")])]
    assert [r.run_id for r in select(runs, name="a", status="failed")] == ["1"]
    assert [r.run_id for r in select(runs, since=T0 + timedelta(minutes=30))] == ["1", "2"]
    assert select(runs, env="dev-pl") == []


def test_chart_marks_over_target_and_unmeasured_runs() -> None:
    runs = [make_run(f"prod-pl/d/20250301T0{i}1700Z-{i}", ["report.html"],
                     results("d", "passed", T0 + timedelta(hours=i), str(i), drill=drill(rto, target)))
            for i, (rto, target) in enumerate([(600.0, 1800.0), (2400.0, 1800.0), (None, 1800.0), (700.0, 900.0)])]
    points = metric_points(runs, "rto")
    assert [p.over_target for p in points] == [False, True, False, False]
    assert describe(points, "RTO") == "RTO: 4 run(s), 1 over target, 1 not measured"
    svg = chart_svg(points, "RTO")
    assert svg.count("<circle") == 3 and svg.count("#cf222e") == 1  # the unmeasured run is a cross, not a dot
    [target] = re.findall(r"<polyline points='([^']*)'[^>]*class='target'", svg)
    heights = [float(point.split(",")[1]) for point in target.split()]
    assert len(set(heights[:4])) == 1 and heights[4] > heights[3]  # 1800 s for four runs, then a step down to 900 s
    assert svg.count("href='prod-pl/d/") == 4  # each run links to its report


def test_dashboard_has_a_row_per_runbook_and_env_with_the_last_runs(tmp_path: Path) -> None:
    for i in range(STRIP + 2):
        write_run(tmp_path, results("rds-pitr-drill", "failed" if i % 3 else "passed", T0 + timedelta(days=i), f"r{i:02d}",
                                    drill=drill(100.0 + i, 1800.0)))
    write_run(tmp_path, results("cost-monthly-review", "passed", T0, "c1", headline={"total": 1.5}), "report.xlsx")
    index = write_index(tmp_path)
    page = index.read_text()
    assert page.count("<tr data-search=") == 2
    assert page.count("class=\"passed\" href=") + page.count("class=\"failed\" href=") == STRIP + 1
    assert 'href="prod-pl/cost-monthly-review/20250301T021700Z-c1/report.xlsx"' in page
    runbook = (tmp_path / "prod-pl/rds-pitr-drill.html").read_text()
    assert all(f"r{i:02d}" in runbook for i in range(STRIP + 2))  # the history keeps every run


def test_pages_escape_what_runs_recorded() -> None:
    run = make_run("prod-pl/x/20250301T021700Z-a", ["report.html"],
                   results("x", "passed", T0, "a", headline={"note": "<script>alert(1)</script>"}))
    for html in build_portal([run]).values():
        assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in build_portal([run])["index.html"]


def test_plain_columns_never_cut_a_value() -> None:
    long = "opsbook-drill-abcdef-restored-snapshot-" * 4
    text = plain_columns(["resource", "action"], [[long, "delete"], ["vol-1", "no-op"]])
    assert long in text and len(text.splitlines()) == 3


def test_rows_are_json_ready() -> None:
    frame = pd.DataFrame({"when": [pd.Timestamp(T0), pd.NaT], "rto_s": [1.5, float("nan")], "n": [1, 2]})
    assert rows_of(frame) == [{"when": T0.isoformat(), "rto_s": 1.5, "n": 1}, {"when": None, "rto_s": None, "n": 2}]
