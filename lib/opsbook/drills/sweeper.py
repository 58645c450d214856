"""The sweeper: the last line of defence for what a dead kernel or a killed run left behind.

It finds drill resources by their ownership tags only (`opsbook:run-id` set and
`opsbook:purpose=drill`), never by name: an untagged instance called
`...-restore-1234abcd` is left alone. Resources younger than `older_than` are listed but
kept (a drill may be running). Deleting goes through the guard: `apply=True`, `confirm`
listing every exact name (comma-separated), and `approval` in production; each deletion
re-reads the resource's tags first and skips it if they no longer mark it as a drill's.

Kinds of resources come from the registry of finders (`FINDERS`, in `sweep_rds` and
`sweep_velero`), so a drill adds the kinds it leaves behind without touching this
module's logic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from opsbook.errors import GuardError, OpsbookError, UsageError
from opsbook.guard import CREATED_TAG, Change, Plan
from opsbook.registry import Registry


@dataclass(frozen=True)
class Leftover:
    """One resource a drill created: what it is, who made it, how old, how to delete it."""

    kind: str
    name: str
    run_id: str
    created: datetime
    status: str
    delete: Callable[[], Any]
    still_owned: Callable[[], bool]

    def age(self, now: datetime) -> timedelta:
        return now - self.created


Finder = Callable[[Any], list[Leftover]]
# A finder is a function env -> [Leftover] for one kind of drill resource, registered
# beside it (`@FINDERS.register("rds-instance")`); the plan lists kinds in this order.
FINDERS: Registry[Finder] = Registry("sweeper finder", ["opsbook.drills.sweep_rds", "opsbook.drills.sweep_velero"])


def parse_age(value: str) -> timedelta:
    """'2h', '30m', '90s', '1d', '0' -> timedelta; anything else is refused with the expected form."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value or "")
    if not match:
        raise UsageError(f"older_than: expected a duration such as 2h, 30m, 90s or 1d, got {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(seconds=number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def created_at(tags: dict[str, str], fallback: datetime | None) -> datetime:
    if tags.get(CREATED_TAG):
        try:
            stamp = datetime.fromisoformat(tags[CREATED_TAG].replace("Z", "+00:00"))
            return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
        except ValueError:
            pass
    if fallback is None:
        return datetime.now(UTC)  # unknown age: counts as new, so it is kept
    return fallback.replace(tzinfo=UTC) if fallback.tzinfo is None else fallback


UNREADABLE = "could not list"


def find_leftovers(env: Any) -> tuple[list[Leftover], dict[str, str]]:
    """Every tagged drill resource of every registered kind (instances before snapshots),
    and the kinds that could not be listed (one unreachable API must not hide the rest)."""
    found: list[Leftover] = []
    unreadable: dict[str, str] = {}
    first_with: dict[str, str] = {}  # error -> the first kind it stopped: said once, then referred to
    for kind, find in FINDERS.items():
        try:
            found.extend(find(env))
        except Exception as exc:  # noqa: BLE001 - reported as a row of the plan
            error = exc.message if isinstance(exc, OpsbookError) else f"{type(exc).__name__}: {exc}"
            unreadable[kind] = f"same error as {first_with[error]}" if error in first_with else error
            first_with.setdefault(error, kind)
    return found, unreadable


def _guarded_delete(item: Leftover) -> Callable[[], Any]:
    def run() -> Any:
        if not item.still_owned():
            raise GuardError(f"{item.kind} {item.name} no longer carries the drill ownership tags; not deleted")
        return item.delete()

    return run


def plan_cleanup(env: Any, older_than: str | timedelta = "2h") -> Plan:
    """The sweeper's plan: delete tagged drill resources older than `older_than`, list younger ones."""
    age = parse_age(older_than) if isinstance(older_than, str) else older_than
    now = datetime.now(UTC)
    plan = Plan(f"drill cleanup in {env.name}", production=env.params.production)
    found, unreadable = find_leftovers(env)
    for kind, error in unreadable.items():
        plan.add(Change(f"({kind})", kind, f"{UNREADABLE}: {error}", "—", "no-op"))
    for item in found:
        old = item.age(now) >= age
        current = f"{item.status}, run {item.run_id}, {int(item.age(now).total_seconds())}s old"
        plan.add(Change(item.name, item.kind, current, "deleted" if old else f"kept (younger than {older_than})",
                        "delete" if old else "no-op", _guarded_delete(item) if old else None))
    return plan


def sweep(env: Any, older_than: str | timedelta = "2h", apply: bool = False, confirm: str = "",
          approval: str = "") -> pd.DataFrame:
    """Show the plan; with apply (and the guard satisfied) delete, and show what was done."""
    plan = plan_cleanup(env, older_than)
    table = plan.table()
    if not apply or plan.empty:
        return table
    done = {c.resource for c in plan.apply(apply, confirm, approval)}
    table["action"] = [("deleted" if r in done and a == "delete" else a) for r, a in zip(table["resource"], table["action"], strict=True)]
    return table

