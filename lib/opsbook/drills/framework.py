"""The drill framework: named timed steps, RTO/RPO against targets, a verdict, guaranteed cleanup.

A drill is a sequence of named steps (`with drill.step("restore"):`), each timed and
recorded. Checks add pass/fail facts; RTO and RPO are compared with the targets from
params (`params.targets`). The verdict is `pass` only when every check passed and both
RTO and RPO are measured and within target; otherwise `fail` with the reason.

Cleanup is registered by the call that creates a resource, *before* it asks for it
(so a create whose answer is lost is still cleaned up), and runs:

- when a step fails (the step's exception ends the drill: cleanup, result, then re-raise),
- at teardown (the normal end),
- when the process exits (atexit: papermill shuts the kernel down after a failed cell),

and the tag-based sweeper (`opsbook cleanup`) removes what a killed kernel left behind.
A drill's own teardown deletes only what this run created; deleting anything else goes
through the sweeper's plan, `confirm` and production approval.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from opsbook.drills.events import DrillEvent, emit
from opsbook.errors import GuardError, OpsbookError, remedies
from opsbook.results import record

log = logging.getLogger(__name__)
PURPOSE = "drill"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepRecord:
    name: str
    start: str
    end: str | None = None
    duration_s: float | None = None
    ok: bool | None = None
    error: str = ""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class CleanupItem:
    description: str
    action: Callable[[], Any]
    done: bool = False
    error: str = ""


class DrillFailed(OpsbookError):
    """The drill ran to its end and its verdict is fail."""


def describe_error(exc: BaseException) -> str:
    """A one-line reason; AWS errors as 'Code: message' with the operation."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        op = getattr(exc, "operation_name", "") or "the call"
        return f"AWS refused {op}: {err.get('Code')}: {err.get('Message')}"
    if isinstance(exc, OpsbookError):
        return exc.one_line() or type(exc).__name__
    return str(exc) or type(exc).__name__


# every drill with cleanup still to do, run at process exit (kernel shutdown)
_PENDING: list[Drill] = []
_PENDING_LOCK = threading.Lock()


def _cleanup_at_exit() -> None:
    with _PENDING_LOCK:
        drills = list(_PENDING)
    for drill in drills:
        drill.run_cleanup()


atexit.register(_cleanup_at_exit)


class Drill:
    """One drill run: steps, checks, RTO/RPO, verdict and cleanup (see the module docstring)."""

    # steps whose durations add up to the RTO (a drill may instead set `rto_s` itself)
    rto_steps: tuple[str, ...] = ()

    def __init__(self, name: str, env: Any, *, rto_target_s: float | None = None,
                 rpo_target_s: float | None = None) -> None:
        self.name = name
        self.env = env
        self.rto_target_s = rto_target_s if rto_target_s is not None else env.params.targets.rto_minutes * 60
        self.rpo_target_s = rpo_target_s if rpo_target_s is not None else env.params.targets.rpo_minutes * 60
        self.steps: list[StepRecord] = []
        self.checks: list[Check] = []
        self.cleanups: list[CleanupItem] = []
        self.rto_s: float | None = None
        self.rpo_s: float | None = None
        self.facts: dict[str, Any] = {}
        self.error: str = ""
        self.result: dict[str, Any] | None = None
        self.started_at = utcnow()
        emit(DrillEvent("start", name, env.name, env.run_id))

    # --- steps and checks ----------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        """Time a step; an exception fails the drill (cleanup runs, result recorded) and propagates."""
        if self.result is not None:
            raise OpsbookError(f"drill {self.name} already ended ({self.result['verdict']}): {self.result['reason']}",
                               remedy="start a new run to try again")
        rec = StepRecord(name, utcnow().isoformat())
        self.steps.append(rec)
        t0 = time.monotonic()
        try:
            yield rec
        except BaseException as exc:
            rec.ok, rec.error = False, describe_error(exc)
            self._close_step(rec, t0)
            reason = f"step {name!r} failed: {rec.error}"
            self.finish(error=reason)
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: cleanup ran, keep them
                raise
            if isinstance(exc, OpsbookError):  # same kind (exit code), its remedy first, then cleanup's
                raise type(exc)(f"{self.name} drill failed: step {name!r} failed: {exc.message}. "
                                f"{self.cleanup_status()}", remedy=remedies(exc.remedy, self.cleanup_remedy())) from exc
            raise OpsbookError(f"{self.name} drill failed: {reason}. {self.cleanup_status()}",
                               remedy=self.cleanup_remedy()) from exc
        rec.ok = True
        self._close_step(rec, t0)

    def _close_step(self, rec: StepRecord, t0: float) -> None:
        rec.end = utcnow().isoformat()
        rec.duration_s = round(time.monotonic() - t0, 3)
        emit(DrillEvent("step", self.name, self.env.name, self.env.run_id, step=asdict(rec)))

    def check(self, name: str, ok: bool, detail: str) -> Check:
        item = Check(name, bool(ok), detail)
        self.checks.append(item)
        return item

    def step_duration(self, name: str) -> float | None:
        for rec in self.steps:
            if rec.name == name:
                return rec.duration_s
        return None

    # --- cleanup -------------------------------------------------------------------------

    def on_cleanup(self, description: str, action: Callable[[], Any]) -> CleanupItem:
        """Register `action` to undo something this drill is about to create (LIFO order)."""
        item = CleanupItem(description, action)
        self.cleanups.append(item)
        with _PENDING_LOCK:
            if self not in _PENDING:
                _PENDING.append(self)
        return item

    def forget_cleanup(self, item: CleanupItem) -> None:
        """The resource is gone another way (e.g. deleted by teardown already)."""
        item.done = True

    def run_cleanup(self) -> list[CleanupItem]:
        """Run every pending cleanup action, newest first; a failing one does not stop the rest."""
        for item in reversed(self.cleanups):
            if item.done:
                continue
            try:
                item.action()
                item.done, item.error = True, ""
            except Exception as exc:  # noqa: BLE001 - every cleanup action gets its turn
                item.error = describe_error(exc)
                log.warning("cleanup %s failed: %s", item.description, item.error)
        if all(i.done for i in self.cleanups):
            with _PENDING_LOCK:
                if self in _PENDING:
                    _PENDING.remove(self)
        return self.cleanups

    def cleanup_summary(self) -> str:
        """How cleanup went and, if it is incomplete, what to do (one line, for the recorded reason)."""
        remedy = self.cleanup_remedy()
        return f"{self.cleanup_status()} What to do: {remedy}." if remedy else self.cleanup_status()

    def cleanup_status(self) -> str:
        if not self.cleanups:
            return "Nothing to clean up."
        failed = [i for i in self.cleanups if not i.done]
        if not failed:
            return "Cleanup done: " + "; ".join(i.description for i in self.cleanups) + "."
        return "Cleanup INCOMPLETE: " + "; ".join(f"{i.description} ({i.error})" for i in failed) + "."

    def cleanup_remedy(self) -> str | None:
        """What to do about cleanup actions that failed (None when none did)."""
        if all(i.done for i in self.cleanups):
            return None
        return (f"run `opsbook cleanup --env {self.env.name} --older-than 0s` to see what is left, then again "
                "with --apply --confirm <the names it lists>")

    def cleanup_table(self) -> pd.DataFrame:
        rows = [{"cleanup": i.description, "done": i.done, "error": i.error} for i in self.cleanups]
        return pd.DataFrame(rows, columns=["cleanup", "done", "error"])

    # --- the end -------------------------------------------------------------------------

    def measured_rto(self) -> float | None:
        if self.rto_s is not None:
            return self.rto_s
        durations = [self.step_duration(s) for s in self.rto_steps]
        if not durations or any(d is None for d in durations):
            return None
        return round(sum(durations), 3)

    def verdict(self) -> tuple[str, str]:
        reasons = []
        if self.error:
            reasons.append(self.error)
        reasons += [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        rto, rpo = self.measured_rto(), self.rpo_s
        if not self.error:
            if rto is None:
                reasons.append("RTO not measured")
            elif rto > self.rto_target_s:
                reasons.append(f"RTO {rto:.1f}s exceeds the target {self.rto_target_s:.0f}s")
            if rpo is None:
                reasons.append("RPO not measured (no write found in the restored data)")
            elif rpo > self.rpo_target_s:
                reasons.append(f"RPO {rpo:.1f}s exceeds the target {self.rpo_target_s:.0f}s")
        if reasons:
            return "fail", "; ".join(reasons)
        return "pass", (f"RTO {rto:.1f}s <= {self.rto_target_s:.0f}s, RPO {rpo:.1f}s <= {self.rpo_target_s:.0f}s, "
                        f"{len(self.checks)} checks passed")

    def finish(self, error: str = "") -> dict[str, Any]:
        """End the drill: cleanup, verdict, record under `drill`, the end event. Idempotent."""
        if self.result is not None:
            return self.result
        if error:
            self.error = error
        self.run_cleanup()
        verdict, reason = self.verdict()
        if error and self.cleanups:
            reason = f"{reason}. {self.cleanup_summary()}"
        rto = self.measured_rto()
        self.result = {
            "name": self.name,
            "verdict": verdict,
            "reason": reason,
            "rto_s": rto,
            "rpo_s": self.rpo_s,
            "rto_target_s": self.rto_target_s,
            "rpo_target_s": self.rpo_target_s,
            "steps": [
                {"name": s.name, "start": s.start, "end": s.end, "duration_s": s.duration_s, "ok": s.ok}
                for s in self.steps
            ],
            "checks": [asdict(c) for c in self.checks],
            "facts": self.facts,
        }
        record("drill", self.result)
        emit(DrillEvent("end", self.name, self.env.name, self.env.run_id, result=self.result))
        return self.result

    def report(self) -> pd.DataFrame:
        """Finish (if not yet) and show the verdict with RTO/RPO against targets, and the steps."""
        result = self.finish()
        rows = [{"what": "verdict", "value": result["verdict"], "target": "", "note": result["reason"]},
                {"what": "RTO (s)", "value": result["rto_s"], "target": result["rto_target_s"], "note": ""},
                {"what": "RPO (s)", "value": result["rpo_s"], "target": result["rpo_target_s"], "note": ""}]
        rows += [{"what": f"step {s['name']}", "value": s["duration_s"], "target": "",
                  "note": "ok" if s["ok"] else "FAILED"} for s in result["steps"]]
        return pd.DataFrame(rows, columns=["what", "value", "target", "note"])

    def raise_if_failed(self) -> None:
        """Make the run fail when the drill did (after the result is recorded)."""
        result = self.finish()
        if result["verdict"] != "pass":
            raise DrillFailed(f"{self.name} drill failed: {result['reason']}")

    def checks_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.checks], columns=["name", "ok", "detail"])


def require_approval(env: Any, approval: str, what: str) -> None:
    """Production drills need the approval parameter (e.g. the change ticket), before any change."""
    if env.params.production and not approval.strip():
        raise GuardError(f"{what} in production environment {env.name!r} needs the approval parameter; "
                         "nothing was changed", remedy="pass approval=<the change ticket id>, e.g. approval='CHG-1234'")
