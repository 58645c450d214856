"""Applying a plan from a runbook step, and what the step shows afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from opsbook.errors import OpsbookError
from opsbook.guard import Change, Plan


@dataclass
class Outcome:
    """What an apply step did (or, in plan mode, would have done)."""

    title: str
    applied: list[Change] = field(default_factory=list)
    pending: int = 0
    message: str = ""

    @property
    def changed(self) -> int:
        return len(self.applied)

    def table(self) -> pd.DataFrame:
        return Plan(self.title, list(self.applied)).table()

    def summary(self) -> dict[str, object]:
        return {"title": self.title, "applied": self.changed, "pending": self.pending, "message": self.message}

    def _repr_html_(self) -> str:
        head = f"<p><b>{self.title}</b>: {self.message}</p>"
        return head + (self.table().to_html(index=False) if self.applied else "")

    def __repr__(self) -> str:
        return f"{self.title}: {self.message}"


def apply_plan(plan: Plan, apply: bool, confirm: str = "", approval: str = "") -> Outcome:
    """Apply through the guard when `apply` is set; in plan mode, say what was left undone."""
    pending = len(plan.pending)
    if not pending:
        return Outcome(plan.title, [], 0, "nothing to change: the estate matches the plan")
    if not apply:
        return Outcome(plan.title, [], pending,
                       f"plan only: {pending} change(s) not made; run again with apply=True to make them")
    done = plan.apply(apply=apply, confirm=confirm, approval=approval)
    return Outcome(plan.title, done, 0, f"applied {len(done)} change(s)")


def converged(after: Plan, applied: bool) -> pd.DataFrame:
    """The rows still pending in a fresh plan; after an apply there must be none."""
    table = after.table()
    pending = table[table["action"] != "no-op"].reset_index(drop=True)
    if applied and len(pending):
        rows = "; ".join(f"{r.resource} {r.attribute}: {r.action}" for r in pending.itertuples())
        raise OpsbookError(f"{after.title}: still {len(pending)} change(s) pending after apply ({rows}); "
                           "something changed them back or the apply did not take",
                           remedy="plan again and find what reverts them (another tool, a policy, Terraform)")
    return pending
