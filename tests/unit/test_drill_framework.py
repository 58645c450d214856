"""The drill framework: timed steps, verdict against targets, cleanup on failure and at exit, events."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
from opsbook.drills import on_drill_event, remove_listener
from opsbook.drills.framework import Drill, DrillFailed, require_approval
from opsbook.errors import GuardError, OpsbookError
from opsbook.results import recorded


def fake_env(rto_minutes: float = 1, rpo_minutes: float = 1, production: bool = False) -> SimpleNamespace:
    params = SimpleNamespace(targets=SimpleNamespace(rto_minutes=rto_minutes, rpo_minutes=rpo_minutes),
                             production=production)
    return SimpleNamespace(params=params, name="unit", run_id="unit-run")


class Timed(Drill):
    rto_steps = ("work",)


def test_steps_are_timed_and_rto_is_their_sum() -> None:
    drill = Timed("unit-drill", fake_env())
    with drill.step("work"):
        time.sleep(0.05)
    drill.rpo_s = 1.0
    result = drill.finish()
    step = result["steps"][0]
    assert step["name"] == "work" and step["ok"] is True and step["duration_s"] >= 0.05
    assert result["rto_s"] == step["duration_s"]
    assert result["verdict"] == "pass", result["reason"]
    assert recorded()["drill"]["name"] == "unit-drill"


@pytest.mark.parametrize("rto_minutes, rpo_s, rpo_minutes, expected", [
    (0.0005, 1.0, 1, "RTO"),  # 0.03 s target: the step takes longer
    (1, 120.0, 1, "RPO 120.0s exceeds the target 60s"),
    (1, None, 1, "RPO not measured"),
])
def test_targets_decide_the_verdict(rto_minutes, rpo_s, rpo_minutes, expected) -> None:
    drill = Timed("unit-drill", fake_env(rto_minutes, rpo_minutes))
    with drill.step("work"):
        time.sleep(0.05)
    drill.rpo_s = rpo_s
    result = drill.finish()
    assert result["verdict"] == "fail" and expected in result["reason"]


def test_a_failed_check_fails_the_drill_with_its_detail() -> None:
    drill = Timed("unit-drill", fake_env())
    with drill.step("work"):
        drill.check("canary restored", False, "row 7 missing")
    drill.rpo_s = 0.0
    result = drill.finish()
    assert result["verdict"] == "fail" and "canary restored: row 7 missing" in result["reason"]
    with pytest.raises(DrillFailed, match="row 7 missing"):
        drill.raise_if_failed()


def test_a_failing_step_cleans_up_records_and_raises_a_clear_error() -> None:
    drill = Timed("unit-drill", fake_env())
    undone: list[str] = []
    with drill.step("create"):
        drill.on_cleanup("delete thing-1", lambda: undone.append("thing-1"))
    with pytest.raises(OpsbookError) as caught:
        with drill.step("work"):
            raise RuntimeError("capacity gone")
    message = str(caught.value)
    assert "step 'work' failed: capacity gone" in message and "Cleanup done: delete thing-1" in message
    assert undone == ["thing-1"]
    result = recorded()["drill"]
    assert result["verdict"] == "fail" and "capacity gone" in result["reason"]
    assert [s["ok"] for s in result["steps"]] == [True, False]
    with pytest.raises(OpsbookError, match="already ended"):
        with drill.step("more"):
            pass


def test_one_failing_cleanup_does_not_stop_the_others() -> None:
    drill = Timed("unit-drill", fake_env())
    done: list[str] = []
    drill.on_cleanup("first", lambda: done.append("first"))
    attempts: list[int] = []

    def broken() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ZeroDivisionError("cleanup bug")

    drill.on_cleanup("broken", broken)
    drill.run_cleanup()
    assert done == ["first"]
    assert "Cleanup INCOMPLETE: broken" in drill.cleanup_summary()
    drill.run_cleanup()  # a failed cleanup is retried (as at process exit); done ones are not
    assert done == ["first"] and len(attempts) == 2


def _child(tmp_path, ending: str) -> subprocess.CompletedProcess:
    marker = tmp_path / "cleaned"
    code = textwrap.dedent(f"""
        import os, signal, sys
        from types import SimpleNamespace
        from opsbook.drills.framework import Drill
        env = SimpleNamespace(params=SimpleNamespace(targets=SimpleNamespace(rto_minutes=1, rpo_minutes=1),
                              production=False), name="unit", run_id="child")
        drill = Drill("child-drill", env)
        drill.on_cleanup("write marker", lambda: open({str(marker)!r}, "w").write("done"))
        {ending}
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_cleanup_runs_when_the_process_exits_after_an_error(tmp_path) -> None:
    proc = _child(tmp_path, "raise RuntimeError('the kernel dies here')")
    assert proc.returncode != 0 and "the kernel dies here" in proc.stderr
    assert (tmp_path / "cleaned").read_text() == "done"


def test_a_killed_process_cannot_clean_up_which_is_why_the_sweeper_exists(tmp_path) -> None:
    proc = _child(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)")
    assert proc.returncode == -9
    assert not (tmp_path / "cleaned").exists()


def test_listeners_see_start_steps_and_end_and_a_broken_one_is_harmless() -> None:
    seen: list[tuple[str, str | None]] = []

    def listener(event) -> None:
        seen.append((event.kind, (event.step or {}).get("name")))

    def broken(event) -> None:
        raise ValueError("listener bug")

    on_drill_event(broken)
    on_drill_event(listener)
    try:
        drill = Timed("unit-drill", fake_env())
        with drill.step("work"):
            pass
        drill.rpo_s = 0.0
        result = drill.finish()
    finally:
        remove_listener(listener)
        remove_listener(broken)
    assert seen == [("start", None), ("step", "work"), ("end", None)]
    assert result["verdict"] == "pass"
    assert json.loads(json.dumps(result))["steps"][0]["name"] == "work"


def test_production_drills_need_approval() -> None:
    with pytest.raises(GuardError, match="approval"):
        require_approval(fake_env(production=True), "", "the failover drill")
    require_approval(fake_env(production=True), "CHG-1", "the failover drill")
    require_approval(fake_env(production=False), "", "the failover drill")
