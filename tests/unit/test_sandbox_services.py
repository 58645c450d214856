"""The sandbox services' declared `needs`: they name registered services and order them without a loop."""

from __future__ import annotations

from opsbook.sandbox.core import dependencies


def test_needs_name_registered_services_and_every_service_can_start() -> None:
    needs = dependencies()
    assert all(wanted <= needs.keys() for wanted in needs.values())
    started: set[str] = set()
    while len(started) < len(needs):  # the order Sandbox.start follows, one wave at a time
        wave = {name for name, wanted in needs.items() if name not in started and wanted <= started}
        assert wave, f"a loop among {sorted(needs.keys() - started)}"
        started |= wave
    assert needs["aws"] == set() and "aws" in needs["kube"] and "kube" in needs["velero"]
