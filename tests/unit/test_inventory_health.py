"""The health report's views, the verdict, threshold parameters and Helm release decoding."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime

import pytest
from opsbook.errors import OpsbookError, UsageError
from opsbook.inventory import HealthCheckFailed, HealthReport, verdict
from opsbook.inventory.checks import Check
from opsbook.inventory.health import make_thresholds
from opsbook.inventory.kube import decode_release


def _report(*statuses: str) -> HealthReport:
    rows = [
        Check(
            section="network" if i % 2 else "rds",
            check=f"c{i}",
            resource=f"r{i}",
            status=s,
            reason=f"why {i}",
        )
        for i, s in enumerate(statuses)
    ]
    return HealthReport(env="sandbox", checked_at=datetime(2026, 6, 1, tzinfo=UTC), checks=rows)


def test_report_views_count_and_group_every_row() -> None:
    report = _report("pass", "warn", "fail", "pass")
    assert report.summary() == {"pass": 2, "warn": 1, "fail": 1}
    assert report.by_status() == {"pass": ["c0[r0]", "c3[r3]"], "warn": ["c1[r1]"], "fail": ["c2[r2]"]}
    assert list(report.table().columns) == ["section", "check", "resource", "status", "reason"]
    network = report.table("network")
    assert list(network.columns) == ["check", "resource", "status", "reason"]
    assert list(network["check"]) == ["c1", "c3"]
    assert len(report.records()) == 4


def test_verdict_passes_warns_or_raises_only_when_strict() -> None:
    assert verdict(_report("pass", "warn"), strict=True) == "sandbox: 1 pass, 1 warn, 0 fail"
    failing = _report("pass", "fail", "fail")
    text = verdict(failing, strict=False)
    assert "2 fail" in text and "c1[r1]: why 1" in text and "c2[r2]: why 2" in text
    with pytest.raises(HealthCheckFailed) as caught:
        verdict(failing, strict=True)
    assert isinstance(caught.value, OpsbookError)
    assert "c1[r1]: why 1" in str(caught.value) and "c2[r2]: why 2" in str(caught.value)
    assert "c0[r0]" not in str(caught.value)


@pytest.mark.parametrize(
    "knobs, words",
    [
        ({"restore_lag_warn_minutes": -1}, "restore_lag_warn_minutes"),
        ({"cert_warn_margin_days": "soon"}, "cert_warn_margin_days"),
        ({"no_such_knob": 1}, "no_such_knob"),
    ],
)
def test_bad_threshold_parameters_name_the_parameter(knobs, words) -> None:
    with pytest.raises(UsageError, match=words):
        make_thresholds(**knobs)


def _helm_payload(record: dict, gzipped: bool = True) -> str:
    """A Secret's `release` field as the API returns it: base64 of Helm's base64 of gzip JSON."""
    raw = json.dumps(record).encode()
    helm = base64.b64encode(gzip.compress(raw) if gzipped else raw)
    return base64.b64encode(helm).decode()


@pytest.mark.parametrize("gzipped", [True, False])
def test_decode_release_reads_helm_secret_payloads(gzipped) -> None:
    record = {"name": "velero", "version": 4, "info": {"status": "deployed"},
              "chart": {"metadata": {"name": "velero", "version": "8.0.0", "appVersion": "1.15.0"}}}  # fmt: skip
    assert decode_release(_helm_payload(record, gzipped)) == record


def _secret(name: str, revision: int, status: str, chart_version: str):
    from kubernetes.client import V1ObjectMeta, V1Secret

    record = {"name": name, "namespace": "velero", "version": revision, "info": {"status": status},
              "chart": {"metadata": {"name": name, "version": chart_version}}}  # fmt: skip
    return V1Secret(
        metadata=V1ObjectMeta(
            name=f"sh.helm.release.v1.{name}.v{revision}",
            labels={"owner": "helm", "name": name, "status": status, "version": str(revision)},
        ),
        type="helm.sh/release.v1",
        data={"release": _helm_payload(record)},
    )


def test_the_current_release_is_the_highest_deployed_revision() -> None:
    from opsbook.inventory.kube import current_release

    secrets = [
        _secret("velero", 1, "superseded", "7.0.0"),
        _secret("velero", 3, "failed", "9.0.0"),
        _secret("velero", 2, "deployed", "8.0.0"),
    ]
    release = current_release("velero", secrets)
    assert (release.revision, release.status, release.chart_version) == (2, "deployed", "8.0.0")
    # nothing deployed: the latest revision, so the check can say it failed
    release = current_release("velero", [secrets[0], secrets[1]])
    assert (release.revision, release.status) == (3, "failed")
