"""Events (core/v1) as the controllers' event recorders write them, for `kubectl get events`.

An event is named `<object>.<hex nanoseconds>` and refers to its object (involvedObject);
a repeat of the same event (same object, type, reason, message and source) within ten
minutes raises its count and lastTimestamp instead of adding one, as client-go's
EventCorrelator does (k8s.io/client-go tools/record/event.go, events_cache.go). Events of
cluster-scoped objects go to the `default` namespace.

The recorders are the emulator's own controllers (in-process). The Velero emulator records
none: Velero v1.18 records no Events for backups and restores.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.errors import ApiError

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api

EVENTS_KEY = "/events"
CORRELATION_SECONDS = 600


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference(obj: dict[str, Any], field_path: str = "") -> dict[str, Any]:
    """The ObjectReference of an object (what involvedObject holds)."""
    meta = obj["metadata"]
    ref = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace"), "name": meta["name"],
           "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion", ""),
           "resourceVersion": meta.get("resourceVersion")}
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v}


def event_body(involved: dict[str, Any], reason: str, message: str, component: str, event_type: str = "Normal",
               host: str = "") -> dict[str, Any]:
    """A new core/v1 Event about `involved` (an ObjectReference, see `reference`)."""
    stamp = _stamp()
    source = {"component": component, **({"host": host} if host else {})}
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{involved['name']}.{time.time_ns():x}",
                     "namespace": involved.get("namespace") or "default"},
        "involvedObject": involved, "reason": reason, "message": message, "type": event_type,
        "source": source, "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "reportingComponent": component, "reportingInstance": host,
    }


def _same(event: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("reason", "message", "type", "source")
    ref_keys = ("kind", "name", "uid", "fieldPath")
    return (all(event.get(k) == new.get(k) for k in keys)
            and all(event["involvedObject"].get(k) == new["involvedObject"].get(k) for k in ref_keys))


def _recent(event: dict[str, Any]) -> bool:
    last = event.get("lastTimestamp")
    if not last:
        return False
    moment = dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - moment).total_seconds() < CORRELATION_SECONDS


def record(api: Api, obj: dict[str, Any], reason: str, message: str, component: str, event_type: str = "Normal",
           host: str = "", field_path: str = "") -> None:
    """Record an event about an object from an in-process controller (a repeat raises the count)."""
    new = event_body(reference(obj, field_path), reason, message, component, event_type, host)
    rtype = api.resource("", "v1", "events")
    namespace = new["metadata"]["namespace"]
    existing, _ = api.store.list(EVENTS_KEY, namespace)
    same = next((e for e in existing if _same(e, new) and _recent(e)), None)
    call = Call(manager=component)
    try:
        if same is None:
            api.create(rtype, namespace, new, call)
        else:
            api.patch(rtype, namespace, same["metadata"]["name"],
                      {"count": (same.get("count") or 1) + 1, "lastTimestamp": new["lastTimestamp"]},
                      "application/merge-patch+json", call=call)
    except ApiError as exc:
        if exc.code not in (403, 404, 409):  # the namespace is going away, or a race with another repeat
            raise

