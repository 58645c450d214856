"""Applying from a runbook step: plan mode reports, apply goes through the guard, convergence is checked."""

from __future__ import annotations

import pytest
from opsbook.errors import GuardError, OpsbookError
from opsbook.guard import Change, Plan
from opsbook.provision.steps import apply_plan, converged


def _plan(production: bool = False) -> tuple[Plan, list[str]]:
    done: list[str] = []
    plan = Plan("t", production=production)
    plan.add(Change("bucket", "versioning", "Suspended", "Enabled", "update", lambda: done.append("v")))
    plan.add(Change("bucket", "policy", "x", "x", "no-op", lambda: done.append("never")))
    return plan, done


def test_plan_mode_reports_and_changes_nothing() -> None:
    plan, done = _plan()
    outcome = apply_plan(plan, apply=False)
    assert (outcome.changed, outcome.pending, done) == (0, 1, [])
    assert "apply=True" in outcome.message and "1 change(s) not made" in outcome.message


def test_apply_runs_pending_changes_through_the_guard() -> None:
    plan, done = _plan(production=True)
    with pytest.raises(GuardError, match="approval"):
        apply_plan(plan, apply=True)
    assert done == []
    outcome = apply_plan(plan, apply=True, approval="CHG-1")
    assert done == ["v"] and outcome.changed == 1 and list(outcome.table()["attribute"]) == ["versioning"]


def test_an_empty_plan_needs_nothing() -> None:
    plan = Plan("t", [Change("a", "b", 1, 1, "no-op")], production=True)
    assert apply_plan(plan, apply=True).message.startswith("nothing to change")


def test_converged_after_apply_or_it_fails() -> None:
    plan, _ = _plan()
    assert len(converged(plan, applied=False)) == 1  # plan mode: shows what is pending
    with pytest.raises(OpsbookError, match="still 1 change"):
        converged(plan, applied=True)
    assert converged(Plan("t", [Change("a", "b", 1, 1, "no-op")]), applied=True).empty
