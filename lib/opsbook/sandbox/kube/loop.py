"""The controller manager's loop: store events become work items, work items run reconcilers.

One thread tails the store's event log (as informers watch the API server) and hands each
event to the handlers registered for its kind; they enqueue work items `(kind, namespace,
name)`, optionally after a delay. Items are deduplicated (the earliest due time wins) and
run one at a time by the reconciler of their kind, which reads the current state and acts on
it (level-based, as kube-controller-manager's controllers do). A reconciler that fails is
retried with a back-off. Started after the seed (the seed writes what controllers would have
written), it only reacts to what happens from then on.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.store import Event

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api

log = logging.getLogger(__name__)
Item = tuple[str, str, str]  # (work kind, namespace, name)
RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0


class ControllerLoop:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._handlers: dict[str, list[Callable[[Event], None]]] = {}
        self._reconcilers: dict[str, Callable[[str, str], float | None]] = {}
        self._heap: list[tuple[float, int, Item]] = []
        self._due: dict[Item, float] = {}
        self._failures: dict[Item, int] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0

    def on(self, store_key: str, handler: Callable[[Event], None]) -> None:
        """Call `handler` with every store event of a kind (store key, e.g. "apps/deployments"; "*": all)."""
        self._handlers.setdefault(store_key, []).append(handler)

    def reconciler(self, kind: str, run: Callable[[str, str], float | None]) -> None:
        """Run work items of `kind` with `run(namespace, name)`; a number it returns requeues after that long."""
        self._reconcilers[kind] = run

    def enqueue(self, kind: str, namespace: str, name: str, delay: float = 0.0) -> None:
        item, due = (kind, namespace, name), time.monotonic() + delay
        with self._lock:
            if item in self._due and self._due[item] <= due:
                return
            self._due[item] = due
            heapq.heappush(self._heap, (due, next(self._seq), item))
        self.api.store.poke()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """React to store events from now on (the state written so far is taken as settled)."""
        self._cursor = self.api.store.resource_version
        self._thread = threading.Thread(target=self._run, name="kube-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.api.store.poke()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set() and not self.api.store.closed:
            self._dispatch_events()
            self._run_due()
            self.api.store.wait(self._cursor, self._sleep())

    def _sleep(self) -> float:
        with self._lock:
            if not self._heap:
                return 1.0
            return max(0.0, min(1.0, self._heap[0][0] - time.monotonic()))

    def _dispatch_events(self) -> None:
        events, _ = self.api.store.events_after(self._cursor)
        for event in events:
            self._cursor = event.rv
            for handler in [*self._handlers.get(event.key, ()), *self._handlers.get("*", ())]:
                try:
                    handler(event)
                except Exception:  # noqa: BLE001 - one bad handler must not stop the controllers
                    log.exception("kube controller: handler of %s failed", event.key)

    def _pop_due(self) -> Item | None:
        with self._lock:
            while self._heap and self._heap[0][0] <= time.monotonic():
                due, _, item = heapq.heappop(self._heap)
                if self._due.get(item) == due:
                    del self._due[item]
                    return item
            return None

    def _run_due(self) -> None:
        while (item := self._pop_due()) is not None and not self._stop.is_set():
            kind, namespace, name = item
            try:
                again = self._reconcilers[kind](namespace, name)
            except ApiError as exc:
                self._retry(item, f"{exc.code} {exc.message}")
                continue
            except Exception as exc:  # noqa: BLE001 - a reconciler bug is logged and retried, as a controller would
                log.exception("kube controller: %s %s/%s failed", kind, namespace, name)
                self._retry(item, repr(exc))
                continue
            self._failures.pop(item, None)
            if again is not None:
                self.enqueue(kind, namespace, name, again)

    def _retry(self, item: Item, why: str) -> None:
        failures = self._failures[item] = self._failures.get(item, 0) + 1
        log.debug("kube controller: retrying %s (%s)", item, why)
        self.enqueue(*item, delay=min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2 ** (failures - 1)))

    # --- helpers for handlers ---------------------------------------------------------------------

    def enqueue_owner(self, event: Event, owner_kind: str, work: str) -> None:
        """Enqueue the controller owner (ownerReference with controller: true) of an event's object."""
        for obj in (event.obj, event.old):
            for ref in (obj or {}).get("metadata", {}).get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == owner_kind:
                    self.enqueue(work, event.namespace, ref["name"])
