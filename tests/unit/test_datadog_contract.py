"""The OpenAPI check used by the emulator's contract tests is not vacuous."""

from __future__ import annotations

import pytest
from opsbook.sandbox.datadog.contract import load_contract


@pytest.mark.parametrize("response", [
    ("GET", "/api/v1/monitor/5", 200, "application/json", b'{"id": "five", "type": "query alert", "query": "x"}'),
    ("GET", "/api/v1/monitor/5", 200, "application/json", b'{"id": 5, "type": "no such type", "query": "x"}'),
    ("GET", "/api/v1/monitor", 500, "application/json", b"{}"),
    ("GET", "/api/v1/nothing/here", 200, "application/json", b"{}"),
    ("GET", "/api/v1/usage/hosts", 200, "application/json", b'{"usage": []}'),  # wrong media type
    ("GET", "/api/v1/query", 200, "application/json", b'{"series": [{"pointlist": [[1, 2, 3]]}]}'),
    ("DELETE", "/api/v1/downtime/7", 204, "", b'{"id": 7}'),
    ("GET", "/api/v1/monitor", 403, "application/json", b'{"message": "Forbidden"}'),
])
def test_nonconforming_responses_are_reported(response) -> None:
    assert load_contract().problems(*response)


@pytest.mark.parametrize("response", [
    ("GET", "/api/v1/validate", 200, "application/json", b'{"valid": true}'),
    ("POST", "/api/v1/monitor/validate", 200, "application/json", b"{}"),  # literal path, not {monitor_id}
    ("DELETE", "/api/v1/downtime/7", 204, "", b""),
    ("GET", "/api/v1/usage/hosts", 200, "application/json;datetime-format=rfc3339",
     b'{"usage": [{"hour": "2024-01-01T00:00:00+00:00", "host_count": 3, "container_count": null}]}'),
    # an auth error the spec leaves out for this operation, in the API's error shape
    ("POST", "/api/v1/events", 403, "application/json", b'{"errors": ["Forbidden"]}'),
])
def test_conforming_responses_pass(response) -> None:
    assert load_contract().problems(*response) == []
