"""The object store: objects by kind, a global resourceVersion, and the event log watches read."""

from __future__ import annotations

import copy
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

# Events kept for watches; a watch from an older resourceVersion gets 410 Expired, as with etcd compaction.
EVENT_LOG_SIZE = 5000


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: str  # store key of the kind
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None  # the object before a MODIFIED event (selector transitions)


class Store:
    """Thread-safe storage; every write takes the next resourceVersion and logs an event."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 0
        self._events: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self.closed = False

    @property
    def resource_version(self) -> int:
        with self.cond:
            return self._rv

    def get(self, key: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self._objects.get(key, {}).get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, key: str, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Objects of a kind (in one namespace or all), sorted like etcd keys, and the current rv."""
        with self.cond:
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._objects.get(key, {}).items())
                if namespace is None or ns == namespace
            ]
            return items, self._rv

    def all_items(self, namespace: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(store key, object) of every object, or of those in one namespace."""
        with self.cond:
            return [(key, copy.deepcopy(obj)) for key, objs in self._objects.items()
                    for (ns, _), obj in objs.items() if namespace is None or ns == namespace]

    def namespaced_keys(self, namespace: str) -> list[tuple[str, str]]:
        """(store key, name) of every object in a namespace."""
        with self.cond:
            return [(key, name) for key, objs in self._objects.items() for (ns, name) in objs if ns == namespace]

    def write(self, key: str, obj: dict[str, Any], event: str) -> dict[str, Any]:
        """Store an object (ADDED or MODIFIED) with a new resourceVersion; return the stored copy."""
        with self.cond:
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)
            meta = obj["metadata"]
            stored = copy.deepcopy(obj)
            bucket = self._objects.setdefault(key, {})
            where = (meta.get("namespace", ""), meta["name"])
            old = bucket.get(where)
            bucket[where] = stored
            self._events.append(Event(self._rv, event, key, where[0], stored, old))
            self.cond.notify_all()
            return copy.deepcopy(stored)

    def remove(self, key: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Delete an object; the DELETED event carries a new resourceVersion."""
        with self.cond:
            obj = self._objects.get(key, {}).pop((namespace, name), None)
            if obj is None:
                return None
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._events.append(Event(self._rv, "DELETED", key, namespace, obj))
            self.cond.notify_all()
            return copy.deepcopy(obj)

    def drop_kind(self, key: str) -> None:
        """Forget every object of a kind (its CRD was deleted)."""
        with self.cond:
            for (ns, name) in list(self._objects.get(key, {})):
                self.remove(key, ns, name)
            self._objects.pop(key, None)

    def events_after(self, rv: int) -> tuple[list[Event], bool]:
        """Events newer than rv, and False when rv is older than the log keeps (expired)."""
        with self.cond:
            if self._events and rv < self._events[0].rv - 1 and len(self._events) == EVENT_LOG_SIZE:
                return [], False
            return [e for e in self._events if e.rv > rv], True

    def wait(self, rv: int, timeout: float) -> None:
        """Block until an event newer than rv exists, the store closes, or timeout passes."""
        with self.cond:
            if self._rv <= rv and not self.closed:
                self.cond.wait(timeout)

    def poke(self) -> None:
        """Wake whoever waits for events (a controller with new work)."""
        with self.cond:
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
