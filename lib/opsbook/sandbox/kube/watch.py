"""Watches: the events of one kind after a resourceVersion, filtered by namespace and selectors.

As the API server's watch cache serves them (k8s.io/apiserver pkg/storage/cacher): without a
resourceVersion (or "0") the current objects come first as ADDED; an object that starts or
stops matching the selectors arrives as ADDED or DELETED; a resourceVersion older than the
event log keeps ends the watch with one ERROR event (410 Expired), as after etcd compaction.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.resources import ResourceType
from opsbook.sandbox.kube.store import Event, Store

DEFAULT_WATCH_SECONDS = 1800


def start_version(resource_version: str | None) -> int | None:
    if resource_version in (None, "", "0"):
        return None
    try:
        return int(resource_version)
    except ValueError:
        raise ApiError(400, f"invalid resourceVersion {resource_version!r}: expected a number") from None


def _event_type(event: Event, match: Callable[[dict[str, Any]], bool]) -> str | None:
    """What a watcher with this filter sees of an event, if anything."""
    now_matches = match(event.obj)
    was_matching = event.old is not None and match(event.old)
    if event.type == "MODIFIED" and now_matches != was_matching:
        return "ADDED" if now_matches else "DELETED"
    return event.type if now_matches else None


def events(store: Store, rtype: ResourceType, namespace: str | None, match: Callable[[dict[str, Any]], bool],
           start: int | None, timeout_seconds: float | None) -> Iterator[dict[str, Any]]:
    """Watch events (ADDED/MODIFIED/DELETED, or one ERROR) until the timeout passes."""
    deadline = time.monotonic() + (timeout_seconds if timeout_seconds is not None else DEFAULT_WATCH_SECONDS)
    if start is None:
        items, rv = store.list(rtype.key, namespace)
        for obj in items:
            if match(obj):
                yield {"type": "ADDED", "object": obj}
    else:
        rv = start
    while time.monotonic() < deadline and not store.closed:
        found, fresh = store.events_after(rv)
        if not fresh:
            yield {"type": "ERROR", "object": ApiError(
                410, f"too old resource version: {rv} ({store.resource_version})", "Expired").status()}
            return
        for event in found:
            rv = event.rv
            if event.key != rtype.key or (namespace is not None and event.namespace != namespace):
                continue
            kind = _event_type(event, match)
            if kind is not None:
                yield {"type": kind, "object": copy.deepcopy(event.obj)}
        store.wait(rv, min(1.0, max(0.0, deadline - time.monotonic())))
