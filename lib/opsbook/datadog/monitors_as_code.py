"""Monitors as code: the monitors params want, planned and applied against Datadog.

opsbook owns exactly the monitors tagged `managed-by:opsbook` and `env:<env>` (the env
tag keeps two environments sharing an organisation apart). A monitor without both tags
is never read into the plan, so it is never changed or deleted. A wanted monitor is
matched to a managed one by name; the plan compares only what params say (Datadog adds
default options of its own), so a plan made right after an apply is empty.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from opsbook.datadog import monitors as api
from opsbook.datadog.client import Datadog
from opsbook.datadog.metrics import render
from opsbook.guard import Change, Plan
from opsbook.params import Params

MANAGED_BY = "managed-by:opsbook"
COMPARED = ("type", "query", "message", "priority", "tags", "critical", "warning", "notify_no_data",
            "renotify_interval")


def managed_tags(params: Params) -> list[str]:
    return [MANAGED_BY, f"env:{params.env}"]


def wanted(params: Params) -> list[dict[str, Any]]:
    """The monitors params want, placeholders filled and ownership tags added."""
    out = []
    for spec in params.datadog.monitors:
        out.append({
            "name": render(spec.name, params), "type": spec.type, "query": render(spec.query, params),
            "message": render(spec.message, params), "priority": spec.priority,
            "tags": sorted({*spec.tags, *managed_tags(params)}), "critical": spec.critical,
            "warning": spec.warning, "notify_no_data": spec.notify_no_data,
            "renotify_interval": spec.renotify_interval, "tripped_by": list(spec.tripped_by),
        })
    return out


def wanted_table(params: Params) -> pd.DataFrame:
    rows = [{k: w[k] for k in ("name", "query", "critical", "warning", "priority")} for w in wanted(params)]
    return pd.DataFrame(rows, columns=["name", "query", "critical", "warning", "priority"])


def current(monitor: dict[str, Any]) -> dict[str, Any]:
    """A monitor as returned by the API, in the shape of `wanted()` for comparison."""
    options = monitor.get("options") or {}
    thresholds = options.get("thresholds") or {}
    return {
        "type": str(monitor.get("type")), "query": monitor.get("query", ""), "message": monitor.get("message", ""),
        "priority": monitor.get("priority"), "tags": sorted(monitor.get("tags") or []),
        "critical": thresholds.get("critical"), "warning": thresholds.get("warning"),
        "notify_no_data": bool(options.get("notify_no_data", False)),
        "renotify_interval": options.get("renotify_interval"),
    }


def managed_monitors(dd: Datadog, params: Params) -> list[dict[str, Any]]:
    """Monitors carrying both ownership tags (checked again here, not only by the API's filter)."""
    tags = managed_tags(params)
    return [m for m in api.list_monitors(dd, tags) if all(t in (m.get("tags") or []) for t in tags)]


def _same(attribute: str, have: Any, want: Any) -> bool:
    if attribute in ("critical", "warning") and have is not None and want is not None:
        return float(have) == float(want)
    return have == want


def plan(dd: Datadog, params: Params) -> Plan:
    """The changes that make Datadog's managed monitors match params."""
    result = Plan(title=f"Datadog monitors of {params.env}", production=params.production)
    existing: dict[str, list[dict[str, Any]]] = {}
    for monitor in managed_monitors(dd, params):
        existing.setdefault(monitor["name"], []).append(monitor)
    for spec in wanted(params):
        found = existing.pop(spec["name"], [])
        if not found:
            result.add(Change(spec["name"], "monitor", None, spec["query"], "create",
                              do=lambda s=spec: api.create_monitor(dd, s)))
            continue
        keep, *duplicates = sorted(found, key=lambda m: m["id"])
        _plan_update(result, dd, keep, spec)
        for extra in duplicates:  # a second managed monitor of the same name: only one stays
            result.add(_delete(dd, extra))
    for leftovers in existing.values():
        for monitor in leftovers:
            result.add(_delete(dd, monitor))
    return result


def _plan_update(result: Plan, dd: Datadog, monitor: dict[str, Any], spec: dict[str, Any]) -> None:
    have = current(monitor)
    differing = [a for a in COMPARED if not _same(a, have[a], spec[a])]
    if not differing:
        result.add(Change(spec["name"], "—", f"id {monitor['id']}", "as wanted", "no-op"))
        return
    for index, attribute in enumerate(differing):
        # one API call updates every attribute: the first row carries it
        do = (lambda m=monitor["id"], s=spec: api.update_monitor(dd, m, s)) if index == 0 else None
        result.add(Change(spec["name"], attribute, have[attribute], spec[attribute], "update", do=do))


def _delete(dd: Datadog, monitor: dict[str, Any]) -> Change:
    return Change(monitor["name"], "monitor", f"id {monitor['id']}", None, "delete",
                  do=lambda m=monitor: api.delete_monitor(dd, m["id"], m["name"]))


def apply(plan: Plan, apply: bool = False, confirm: str = "", approval: str = "") -> pd.DataFrame:
    """Apply the plan through the guard; with apply=False, say what would be done and do nothing."""
    columns = ["resource", "attribute", "action", "result"]
    if plan.empty:
        return pd.DataFrame([], columns=columns)
    if not apply:
        rows = [(c.resource, c.attribute, c.action, "not applied: plan only (set apply=True)") for c in plan.pending]
        return pd.DataFrame(rows, columns=columns)
    done = plan.apply(apply=apply, confirm=confirm, approval=approval)
    return pd.DataFrame([(c.resource, c.attribute, c.action, "done") for c in done], columns=columns)


def summarise(plan: Plan, applied: pd.DataFrame, after: Plan) -> dict[str, Any]:
    """The run's headline: what was planned, what was done, what is still different."""
    return {
        "planned_changes": len(plan.pending),
        "applied": int((applied["result"] == "done").sum()) if not applied.empty else 0,
        "still_pending": len(after.pending),
        "in_sync": after.empty,
    }
