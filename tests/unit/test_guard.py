"""The guard: plan only by default, exact confirm for deletes, approval in production."""

from __future__ import annotations

import pytest
from opsbook.errors import GuardError
from opsbook.guard import Change, Plan, is_owned, k8s_labels, ownership_tags


def _plan(production: bool = False) -> tuple[Plan, list[str]]:
    done: list[str] = []
    plan = Plan("test", production=production)
    plan.add(Change("bucket-a", "versioning", "Suspended", "Enabled", "update", lambda: done.append("a")))
    plan.add(Change("db-drill-1", "instance", "exists", None, "delete", lambda: done.append("db")))
    plan.add(Change("key", "rotation", True, True, "no-op"))
    return plan, done


def test_plan_only_by_default_changes_nothing() -> None:
    plan, done = _plan()
    with pytest.raises(GuardError, match="plan only"):
        plan.apply(apply=False)
    assert done == []
    assert list(plan.table()["action"]) == ["update", "delete", "no-op"]


def test_delete_needs_exact_name_and_refusal_changes_nothing() -> None:
    plan, done = _plan()
    with pytest.raises(GuardError, match="confirm='db-drill-1'"):
        plan.apply(apply=True, confirm="db-drill")
    assert done == []  # the update before the delete did not run either
    assert [c.resource for c in plan.apply(apply=True, confirm="db-drill-1")] == ["bucket-a", "db-drill-1"]
    assert done == ["a", "db"]


def test_production_needs_approval() -> None:
    plan, done = _plan(production=True)
    with pytest.raises(GuardError, match="approval"):
        plan.apply(apply=True, confirm="db-drill-1")
    assert done == []
    plan.apply(apply=True, confirm="db-drill-1", approval="CHG-1234")
    assert done == ["a", "db"]


def test_ownership_tags_and_labels() -> None:
    tags = ownership_tags("abcd1234", "drill")
    assert is_owned(tags) and is_owned(tags, "drill") and not is_owned(tags, "provision")
    assert is_owned([{"Key": k, "Value": v} for k, v in tags.items()])
    assert is_owned(k8s_labels(tags), "drill")
    assert not is_owned({"Name": "smsapi-drill-restore"}) and not is_owned(None)
