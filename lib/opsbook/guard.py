"""Plan/apply, confirmation, the production guard and ownership tags (DESIGN principle 3).

Anything that changes the estate builds a `Plan` of `Change`s first. `Plan.apply()`
refuses unless `apply=True`; a change that destroys needs `confirm` equal to the exact
resource name (a plan deleting several: every exact name, comma-separated); in a
production environment apply also needs `approval`. All checks run before the first
change, so a refused plan changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from opsbook.errors import GuardError

RUN_ID_TAG = "opsbook:run-id"
PURPOSE_TAG = "opsbook:purpose"
CREATED_TAG = "opsbook:created-at"

Action = Literal["create", "update", "delete", "no-op"]


def ownership_tags(run_id: str, purpose: str, created_at: str | None = None) -> dict[str, str]:
    tags = {RUN_ID_TAG: run_id, PURPOSE_TAG: purpose}
    if created_at:
        tags[CREATED_TAG] = created_at
    return tags


def aws_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    """Tags in the `[{'Key':..., 'Value':...}]` shape most AWS APIs take."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def k8s_labels(tags: dict[str, str]) -> dict[str, str]:
    """Ownership tags as Kubernetes labels (':' is not allowed in label keys)."""
    return {key.replace("opsbook:", "opsbook.io/"): value for key, value in tags.items()}


def is_owned(tags: dict[str, str] | Iterable[dict[str, str]] | None, purpose: str | None = None) -> bool:
    """True only when the resource carries opsbook's run id (and the purpose, if given)."""
    if tags is None:
        return False
    if not isinstance(tags, dict):
        tags = {t["Key"]: t["Value"] for t in tags}
    labels = {**tags, **{k.replace("opsbook.io/", "opsbook:"): v for k, v in tags.items()}}
    if not labels.get(RUN_ID_TAG):
        return False
    return purpose is None or labels.get(PURPOSE_TAG) == purpose


@dataclass
class Change:
    """One row of a plan: what would change on which resource, and how to do it."""

    resource: str
    attribute: str
    current: Any
    desired: Any
    action: Action
    do: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def destroys(self) -> bool:
        return self.action == "delete"


@dataclass
class Plan:
    """Changes to make; shown as a table, applied only through the guard."""

    title: str
    changes: list[Change] = field(default_factory=list)
    production: bool = False

    def add(self, change: Change) -> None:
        self.changes.append(change)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "no-op"]

    @property
    def empty(self) -> bool:
        return not self.pending

    def table(self) -> pd.DataFrame:
        rows = [
            {"resource": c.resource, "attribute": c.attribute, "current": _show(c.current),
             "desired": _show(c.desired), "action": c.action}
            for c in self.changes
        ]
        return pd.DataFrame(rows, columns=["resource", "attribute", "current", "desired", "action"])

    def check(self, apply: bool, confirm: str = "", approval: str = "") -> None:
        """Raise GuardError unless this plan may be applied with these parameters."""
        if not apply:
            raise GuardError(f"{self.title}: plan only (apply is false); nothing was changed",
                             remedy="read the plan, then set apply=True to make these changes")
        if self.production and not approval:
            raise GuardError(
                f"{self.title}: this is a production environment; apply also needs the approval "
                "parameter; nothing was changed",
                remedy="pass approval=<the change ticket id>, e.g. approval='CHG-1234'",
            )
        # several deletions (the sweeper): confirm lists every exact name, comma-separated
        confirmed = {name.strip() for name in confirm.split(",")} if "," in confirm else {confirm}
        doomed = [c.resource for c in self.pending if c.destroys]
        for change in self.pending:
            if change.destroys and change.resource not in confirmed:
                wanted = ",".join(doomed)
                raise GuardError(
                    f"{self.title}: deleting {change.resource} needs confirm={wanted!r} "
                    f"(got {confirm!r}); nothing was changed",
                    remedy=f"check the plan's deletions, then pass confirm={wanted!r}",
                )

    def apply(self, apply: bool, confirm: str = "", approval: str = "") -> list[Change]:
        """Run every pending change after the guard passes; returns what was done."""
        if self.empty:
            return []
        self.check(apply, confirm, approval)
        done = []
        for change in self.pending:
            if change.do is not None:
                change.do()
            done.append(change)
        return done


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)
