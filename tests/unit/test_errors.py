"""opsbook errors: the remedy is the last line of the message, kept apart from what went wrong."""

from __future__ import annotations

import pickle

import pytest
from opsbook.drills.framework import Drill
from opsbook.errors import CredentialsError, GuardError, OpsbookError, UsageError, remedies
from opsbook.guard import Change, Plan
from opsbook.results import recorded

from tests.unit.test_drill_framework import fake_env


def test_the_remedy_is_a_separate_last_line() -> None:
    exc = UsageError("month: expected YYYY-MM such as 2025-03, got '3/2025'", remedy="pass month='2025-03'")
    assert str(exc).splitlines() == ["month: expected YYYY-MM such as 2025-03, got '3/2025'",
                                     "what to do: pass month='2025-03'"]
    assert exc.message == "month: expected YYYY-MM such as 2025-03, got '3/2025'"
    assert exc.one_line() == "month: expected YYYY-MM such as 2025-03, got '3/2025'; what to do: pass month='2025-03'"
    assert exc.exit_code == 2 and isinstance(exc, ValueError)


def test_without_a_remedy_the_message_is_unchanged() -> None:
    exc = OpsbookError("restored instance db-x is gone")
    assert str(exc) == exc.one_line() == "restored instance db-x is gone" and exc.remedy is None
    assert str(OpsbookError("x", remedy="")) == "x"


def test_the_remedy_survives_pickling() -> None:
    exc = pickle.loads(pickle.dumps(CredentialsError("no keys", remedy="export DD_API_KEY")))
    assert type(exc) is CredentialsError and exc.remedy == "export DD_API_KEY" and exc.message == "no keys"


def test_remedies_join_in_order_once_each() -> None:
    assert remedies(None, "") is None
    assert remedies("fix the role", None, "run cleanup", "fix the role") == "fix the role; then run cleanup"


def test_the_guard_says_what_to_pass() -> None:
    plan = Plan("unit", production=True)
    plan.add(Change("db-drill-1", "instance", "exists", None, "delete", do=lambda: None))
    with pytest.raises(GuardError) as caught:
        plan.check(apply=False)
    assert str(caught.value).splitlines()[-1] == "what to do: read the plan, then set apply=True to make these changes"
    with pytest.raises(GuardError) as caught:
        plan.check(apply=True, confirm="db-drill-1")
    assert "approval" in caught.value.message and "approval='CHG-1234'" in caught.value.remedy
    with pytest.raises(GuardError) as caught:
        plan.check(apply=True, confirm="db-drill", approval="CHG-1")
    assert "needs confirm='db-drill-1'" in caught.value.message
    assert caught.value.remedy == "check the plan's deletions, then pass confirm='db-drill-1'"


class Unit(Drill):
    rto_steps = ("work",)


def test_a_failed_step_keeps_the_error_kind_and_its_remedy_then_cleanup_s() -> None:
    drill = Unit("unit-drill", fake_env())

    def broken() -> None:
        raise RuntimeError("API gone")

    drill.on_cleanup("delete thing-1", broken)
    with pytest.raises(CredentialsError) as caught:
        with drill.step("work"):
            raise CredentialsError("AWS credentials for 'unit' do not work", remedy="aws sso login")
    exc = caught.value
    assert "step 'work' failed: AWS credentials for 'unit' do not work" in exc.message
    assert "Cleanup INCOMPLETE: delete thing-1 (API gone)" in exc.message and "what to do" not in exc.message
    assert exc.remedy.startswith("aws sso login; then run `opsbook cleanup --env unit --older-than 0s`")
    assert str(exc).splitlines()[-1] == f"what to do: {exc.remedy}"
    reason = recorded()["drill"]["reason"]  # the recorded reason stays one line, remedies included
    assert "\n" not in reason and "what to do: aws sso login" in reason and "opsbook cleanup --env unit" in reason
