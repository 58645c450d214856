"""Secrets never print; record() masks them and keeps JSON-able values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
from opsbook import results
from opsbook.secrets import MASK, Secret, mask


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2-s3cr3t", name="/x/password")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-s3cr3t"


def test_mask_hides_seen_values_and_secret_keys() -> None:
    Secret("tok-XYZ-123")
    masked = mask({"note": "connected with tok-XYZ-123 ok", "db_password": "plain", "n": 3})
    assert masked == {"note": f"connected with {MASK} ok", "db_password": MASK, "n": 3}


def test_record_appends_masked_json_lines(tmp_path, monkeypatch) -> None:
    target = tmp_path / "records.jsonl"
    monkeypatch.setenv(results.RESULTS_FILE_ENV, str(target))
    Secret("pw-98765")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "pw-98765"]})
    when = datetime(2026, 1, 2, tzinfo=UTC)
    results.record("table", frame)
    results.record("when", when)
    results.record("table", frame.head(1))  # later value wins
    folded = results.read_records(target)
    assert folded == {"table": [{"a": 1, "b": "x"}], "when": when.isoformat()}
    assert "pw-98765" not in target.read_text()
    assert all(json.loads(line) for line in target.read_text().splitlines())


def test_records_mask_secret_values_but_not_secret_looking_names(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(results.RESULTS_FILE_ENV, str(tmp_path / "r.jsonl"))
    Secret("s3cr3t-value-42")
    results.record("checks", {"/smsapi/x/db_password present": "pass", "note": "used s3cr3t-value-42"})
    folded = results.read_records(tmp_path / "r.jsonl")["checks"]
    assert folded == {"/smsapi/x/db_password present": "pass", "note": f"used {MASK}"}
