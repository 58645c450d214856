"""SMS volume for the unit cost: `auto` takes the Datadog metric when Datadog is configured."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import requests
import yaml
from opsbook.clients import Env
from opsbook.cost.volume import source_of
from opsbook.params import load_params

from tests.notebook_runs import run_passing

ROOT = Path(__file__).resolve().parents[2]


def _params(tmp_path: Path, **cost_volume) -> object:
    file = tmp_path / "sandbox-volume.yaml"
    overlay = {"extends": str(ROOT / "params/sandbox.yaml"), "cost": {"sms_volume": cost_volume}}
    if cost_volume.pop("_no_datadog", False):
        overlay["datadog"] = {"api_key_ssm": None, "app_key_ssm": None}
        overlay["cost"]["sms_volume"] = cost_volume
    file.write_text(yaml.safe_dump(overlay))
    return load_params(file)


def test_auto_prefers_datadog_then_csv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    assert source_of(Env(params=_params(tmp_path, source="auto"), run_id="x")) == "datadog"
    assert source_of(Env(params=_params(tmp_path, source="auto", _no_datadog=True), run_id="x")) == "csv"


def _datadog_month_total(params, month: str) -> float:
    """SMS in a month straight from the emulator's /api/v1/query (no opsbook Datadog code)."""
    ssm = boto3.client("ssm", region_name=params.region)
    key = lambda name: ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]  # noqa: E731
    headers = {"DD-API-KEY": key(params.datadog.api_key_ssm), "DD-APPLICATION-KEY": key(params.datadog.app_key_ssm)}
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    text = params.datadog.metrics.sms_sent_count.replace("$cluster", params.eks.cluster_name) + ".rollup(sum, 86400)"
    answer = requests.get(f"{os.environ['DD_HOST']}/api/v1/query", headers=headers, timeout=60, params={
        "from": int(start.timestamp()), "to": int(end.timestamp()), "query": text}).json()
    return sum(value for series in answer["series"] for _, value in series["pointlist"] if value is not None)


def test_unit_cost_takes_sms_volume_from_datadog(sandbox, tmp_path: Path) -> None:
    params = _params(tmp_path, source="auto")
    result = run_passing("unit-cost-per-sms", tmp_path / "runs", params, {"months": 2})
    rows = result.records["unit_cost"]
    assert len(rows) == 2
    for row in rows:
        assert row["sms"] == pytest.approx(_datadog_month_total(params, row["month"]), rel=1e-6)
