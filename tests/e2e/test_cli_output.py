"""What the table commands print through a pipe, and their json and csv, against real runs and leftovers.

Piped output (a log, CI) is plain columns: every run id and resource name must appear whole.
json and csv are for scripts: complete, with the same rows, and what they say is checked
against the run folders and the sandbox themselves.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess

import pytest

from tests.e2e.conftest import results_of
from tests.e2e.helpers import OPSBOOK, ROOT, opsbook


def piped(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`opsbook ARGS | cat`, as a log or CI sees it (no terminal, no COLUMNS: rich's 80 columns)."""
    base = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES", "TTY_COMPATIBLE")}
    command = " ".join(f"'{a}'" for a in (OPSBOOK, *args)) + " | cat; exit ${PIPESTATUS[0]}"
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=base, capture_output=True, text=True, timeout=600)


def whole(value: str, text: str) -> bool:
    """`value` appears in `text` as a whole word (not cut, not run into another value)."""
    return re.search(rf"(?<!\S){re.escape(value)}(?!\S)", text) is not None


def as_csv(value: object) -> str:
    """How a json value is written in a csv cell."""
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def json_and_csv(*args: str, ages: str = "") -> tuple[list[dict], list[dict]]:
    """The command's rows in json and in csv; the csv must say exactly what the json says (but for
    the ages in column `ages`, which move on between the two commands)."""
    as_json, as_text = opsbook(*args, "--format", "json"), opsbook(*args, "--format", "csv")
    assert as_json.returncode == 0 and as_text.returncode == 0, as_json.stderr + as_text.stderr
    rows = json.loads(as_json.stdout)
    table = list(csv.DictReader(io.StringIO(as_text.stdout)))

    def same(row: dict) -> dict:
        return {k: re.sub(r"\d+s old", "Ns old", v) if k == ages else v for k, v in row.items()}

    assert [same(r) for r in table] == [same({k: as_csv(v) for k, v in row.items()}) for row in rows]
    return rows, table


def drill_runs(runs_root) -> list[dict]:
    return [r for r in results_of(runs_root) if "drill" in r["records"]]


def test_history_through_a_pipe_shows_every_run_whole(evidence) -> None:
    out = piped("history", "--runs-dir", str(evidence))
    assert out.returncode == 0, out.stderr
    runs = drill_runs(evidence)
    assert len(runs) == 2
    for run in runs:
        drill = run["records"]["drill"]
        for value in (run["run_id"], run["env"], drill["name"], drill["verdict"]):
            assert whole(value, out.stdout), f"{value!r} not whole in:\n{out.stdout}"
        assert drill["reason"] in out.stdout
    assert "…" not in out.stdout
    assert len(out.stdout.splitlines()) == 2 + len(runs)  # title, header, one line per run


def test_history_json_and_csv_round_trip(evidence) -> None:
    rows, _ = json_and_csv("history", "--runs-dir", str(evidence))
    runs = {r["run_id"]: r for r in drill_runs(evidence)}
    assert {row["run_id"] for row in rows} == set(runs)
    for row in rows:
        run = runs[row["run_id"]]
        drill = run["records"]["drill"]
        assert (row["env"], row["notebook"], row["status"]) == (run["env"], run["name"], run["status"])
        assert {k: row[k] for k in ("drill", "verdict", "reason", "rto_s", "rpo_s", "rto_target_s", "rpo_target_s")} == \
            {"drill": drill["name"], **{k: drill[k] for k in ("verdict", "reason", "rto_s", "rpo_s", "rto_target_s",
                                                            "rpo_target_s")}}
        assert row["source"] == str(run["_dir"] / "results.json")
    assert [row["started_at"] for row in rows] == sorted(row["started_at"] for row in rows)  # oldest first


def test_runs_lists_every_run_whole_and_filters(evidence) -> None:
    out = piped("runs", "--runs-dir", str(evidence))
    assert out.returncode == 0, out.stderr
    results = results_of(evidence)
    for run in results:
        assert whole(run["run_id"], out.stdout) and whole(run["name"], out.stdout)
        assert whole(run["_dir"].relative_to(evidence).as_posix(), out.stdout)
    rows, _ = json_and_csv("runs", "--runs-dir", str(evidence))
    assert {r["run_id"]: (r["name"], r["env"], r["status"]) for r in rows} == \
        {r["run_id"]: (r["name"], r["env"], r["status"]) for r in results}
    for row in rows:
        folder = evidence / row["folder"]
        assert set(row["evidence"]) == {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}

    failed, _ = json_and_csv("runs", "--runs-dir", str(evidence), "--status", "failed", "--name", "rds-pitr-drill")
    assert [r["run_id"] for r in failed] == [r["run_id"] for r in results
                                             if r["status"] == "failed" and r["name"] == "rds-pitr-drill"]
    none, _ = json_and_csv("runs", "--runs-dir", str(evidence), "--since", "2999-01-01")
    assert none == []


def test_list_json_round_trips_with_typed_defaults() -> None:
    from opsbook.notebooks import all_notebooks

    rows, _ = json_and_csv("list")
    assert [r["name"] for r in rows] == [p.stem for p in all_notebooks()]
    health = next(r for r in rows if r["name"] == "health-check")
    assert health["kind"] == "runbook" and health["parameters"]["strict"] is False


def test_cleanup_through_a_pipe_shows_every_leftover_whole(leftovers) -> None:
    out = piped("cleanup", "--env", "sandbox", "--older-than", "0s")
    assert out.returncode == 0, out.stderr
    for name in leftovers.names:
        assert whole(name, out.stdout), f"{name!r} not whole in:\n{out.stdout}"
    assert whole(f"{leftovers.env.run_id},", out.stdout)  # the run that left them
    assert "…" not in out.stdout
    hint = next(line for line in out.stdout.splitlines() if line.startswith("plan only: add --apply --confirm "))
    assert set(leftovers.names) <= set(hint.split()[-3].split(","))


def test_cleanup_json_and_csv_round_trip(leftovers) -> None:
    rows, _ = json_and_csv("cleanup", "--env", "sandbox", "--older-than", "0s", ages="current")
    mine = {r["resource"]: r for r in rows if r["resource"] in leftovers.names}
    assert set(mine) == set(leftovers.names)
    kinds = {leftovers.volume: "ebs-volume", leftovers.snapshot: "rds-snapshot", leftovers.namespace: "k8s-namespace"}
    assert {name: row["attribute"] for name, row in mine.items()} == kinds
    assert all(row["action"] == "delete" and leftovers.env.run_id in row["current"] for row in mine.values())


def test_a_terminal_table_wraps_values_instead_of_cutting_them(evidence) -> None:
    env = {**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "70"}  # rich: stdout is a terminal 70 wide
    out = opsbook("runs", "--runs-dir", str(evidence), env=env)
    assert out.returncode == 0, out.stderr
    assert "│" in out.stdout or "┃" in out.stdout  # a rich table, not the plain columns
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)  # the terminal's colours aside
    assert "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= 70


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_an_empty_listing_is_still_valid_json_or_csv(tmp_path, fmt: str) -> None:
    out = opsbook("history", "--runs-dir", str(tmp_path), "--format", fmt)
    assert out.returncode == 0, out.stderr
    if fmt == "json":
        assert json.loads(out.stdout) == []
    else:
        assert next(csv.reader(io.StringIO(out.stdout)))[:3] == ["env", "drill", "notebook"]
    assert "no drill runs found" in out.stderr
