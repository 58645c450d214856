"""Pure pieces of the drills: names, times, durations, bulk confirm, history files, the proxy's handshake."""

from __future__ import annotations

import json
import re
import struct
from datetime import UTC, datetime

import pytest
from opsbook.drills.history import plot_history, read_history, summary
from opsbook.drills.rds import drill_name, parse_time
from opsbook.drills.sweeper import parse_age
from opsbook.errors import GuardError, UsageError
from opsbook.guard import Change, Plan
from opsbook.sandbox.rds.mysql_proxy import CLIENT_CONNECT_WITH_DB, CLIENT_PLUGIN_AUTH_LENENC, rewrite_login

RDS_ID = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}(?<!-)$")


@pytest.mark.parametrize("run_id", ["1a2b3c4d", "Run_ID.with/odd chars", "x" * 80])
def test_drill_names_are_valid_rds_identifiers(run_id) -> None:
    name = drill_name("smsapi-sandbox-main", "restore", run_id)
    assert RDS_ID.match(name), name
    assert name.startswith("smsapi-sandbox-main-restore-")


def test_times_parse_as_utc_and_bad_ones_are_refused() -> None:
    assert parse_time("2024-05-01T12:30:00Z") == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert parse_time("2024-05-01 14:30:00+02:00") == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert parse_time("2024-05-01T12:30:00").tzinfo == UTC
    with pytest.raises(UsageError, match="expected an ISO 8601 time"):
        parse_time("yesterday")


@pytest.mark.parametrize("text, seconds", [("2h", 7200), ("30m", 1800), ("90s", 90), ("1d", 86400), ("0", 0),
                                           ("1.5h", 5400)])
def test_durations(text, seconds) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2 hours", "-1h", "h"])
def test_bad_durations_say_what_is_expected(text) -> None:
    with pytest.raises(UsageError, match="expected a duration such as 2h"):
        parse_age(text)


def _two_deletes() -> tuple[Plan, list[str]]:
    done: list[str] = []
    plan = Plan("sweep")
    plan.add(Change("db-a", "rds-instance", "old", "deleted", "delete", lambda: done.append("db-a")))
    plan.add(Change("snap-a", "rds-snapshot", "old", "deleted", "delete", lambda: done.append("snap-a")))
    return plan, done


@pytest.mark.parametrize("confirm", ["", "db-a", "db-a,snap", "DB-A,SNAP-A", "db-a snap-a"])
def test_bulk_confirm_must_name_every_resource_or_nothing_is_deleted(confirm) -> None:
    plan, done = _two_deletes()
    with pytest.raises(GuardError, match="confirm='db-a,snap-a'"):
        plan.apply(True, confirm=confirm)
    assert done == []


def test_bulk_confirm_with_every_name_deletes() -> None:
    plan, done = _two_deletes()
    plan.apply(True, confirm="snap-a, db-a")
    assert done == ["db-a", "snap-a"]


def _run(root, env, name, run_id, started, drill=None, status="passed"):
    folder = root / env / name / f"{started:%Y%m%dT%H%M%SZ}-{run_id}"
    folder.mkdir(parents=True)
    records = {"drill": drill} if drill else {"other": 1}
    (folder / "results.json").write_text(json.dumps({
        "name": name, "env": env, "run_id": run_id, "status": status, "started_at": started.isoformat(),
        "records": records}))


def _drill(name, verdict, rto, rpo):
    return {"name": name, "verdict": verdict, "reason": "r", "rto_s": rto, "rpo_s": rpo,
            "rto_target_s": 1800, "rpo_target_s": 900, "steps": []}


def test_history_reads_drill_runs_oldest_first_and_filters(tmp_path) -> None:
    t = [datetime(2024, 5, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
    _run(tmp_path, "sandbox", "rds-pitr-drill", "r2", t[1], _drill("rds-pitr", "fail", 50.0, None), "failed")
    _run(tmp_path, "sandbox", "rds-pitr-drill", "r1", t[0], _drill("rds-pitr", "pass", 40.0, 2.0))
    _run(tmp_path, "sandbox", "rds-failover-drill", "r3", t[2], _drill("rds-failover", "pass", 3.0, 0.0))
    _run(tmp_path, "dev-pl", "rds-pitr-drill", "r4", t[3], _drill("rds-pitr", "pass", 900.0, 60.0))
    _run(tmp_path, "sandbox", "health-check", "r5", t[3])  # not a drill
    (tmp_path / "sandbox" / "rds-pitr-drill" / "broken").mkdir()
    (tmp_path / "sandbox" / "rds-pitr-drill" / "broken" / "results.json").write_text("{half")

    every = read_history(tmp_path)
    assert list(every["run_id"]) == ["r1", "r2", "r3", "r4"]
    sandbox_pitr = read_history(tmp_path, env="sandbox", drill="rds-pitr")
    assert list(sandbox_pitr["run_id"]) == ["r1", "r2"] and list(sandbox_pitr["verdict"]) == ["pass", "fail"]
    assert list(read_history(tmp_path, drill="rds-failover-drill")["run_id"]) == ["r3"]  # notebook name works too
    per = summary(every).set_index(["env", "drill"])
    assert per.loc[("sandbox", "rds-pitr"), "runs"] == 2 and per.loc[("sandbox", "rds-pitr"), "latest"] == "fail"
    assert per.loc[("sandbox", "rds-pitr"), "max_rto_s"] == 50.0
    fig = plot_history(every)
    assert len(fig.axes) == 2 and fig.axes[0].get_lines()
    assert read_history(tmp_path / "nothing").empty


def _login(user: bytes, db: bytes | None) -> bytes:
    caps = CLIENT_PLUGIN_AUTH_LENENC | 0x00008000 | 0x00080000 | (CLIENT_CONNECT_WITH_DB if db is not None else 0)
    head = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23
    auth = bytes(range(20))
    body = head + user + b"\0" + bytes([len(auth)]) + auth
    if db is not None:
        body += db + b"\0"
    return body + b"mysql_native_password\0"


def test_the_proxy_renames_user_and_database_and_keeps_the_rest() -> None:
    out = rewrite_login(_login(b"app", b"smsapi"), {"app": "ob1_app"}, {"smsapi": "ob1_i1"})
    assert out == _login(b"ob1_app", b"ob1_i1")
    # unknown names and a login without a database pass through unchanged
    assert rewrite_login(_login(b"root", None), {"app": "ob1_app"}, {}) == _login(b"root", None)
