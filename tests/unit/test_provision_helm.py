"""Helm 3 release records: decoding (base64 of base64 gzip JSON), current revision, no values kept."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from opsbook.errors import OpsbookError
from opsbook.provision.helm_releases import Release, current, decode, to_release


def _as_api_returns(release: dict, gzipped: bool = True) -> str:
    raw = json.dumps(release).encode()
    helm = base64.b64encode(gzip.compress(raw) if gzipped else raw)
    return base64.b64encode(helm).decode()


RELEASE = {
    "name": "velero", "namespace": "velero", "version": 3,
    "info": {"status": "deployed", "first_deployed": "2024-01-01T00:00:00Z",
             "last_deployed": "2024-03-01T00:00:00Z", "description": "Upgrade complete"},
    "chart": {"metadata": {"name": "velero", "version": "8.0.0", "appVersion": "1.15.0"}},
    "config": {"credentials": {"secretContents": "aws_secret_access_key=abc"}},
}


@pytest.mark.parametrize("gzipped", [True, False])
def test_decode_release(gzipped) -> None:
    rel = to_release(decode(_as_api_returns(RELEASE, gzipped)))
    assert (rel.name, rel.revision, rel.status, rel.chart_version, rel.app_version) == (
        "velero", 3, "deployed", "8.0.0", "1.15.0")
    assert "secretContents" not in repr(rel)  # user values are not kept


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(OpsbookError, match="not a Helm 3 release record"):
        decode(base64.b64encode(b"%%%not base64").decode())


def _rel(revision: int, status: str) -> Release:
    return Release("x", "ns", revision, status, "c", f"1.{revision}", "", "", "", "")


def test_current_is_the_deployed_revision_else_the_latest() -> None:
    assert current([_rel(1, "superseded"), _rel(2, "deployed"), _rel(3, "failed")])[("ns", "x")].revision == 2
    assert current([_rel(1, "failed"), _rel(2, "pending-upgrade")])[("ns", "x")].revision == 2
