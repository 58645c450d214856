"""The Velero server of the sandbox: watches on the API server feed one worker, as controllers do.

Watched: Backups, Restores and DeleteBackupRequests (new ones are processed), Schedules
and BackupStorageLocations (checked on change), Namespaces and PersistentVolumes
(deletions free the restored volumes and their data). A tick every second runs the
schedules (Velero's schedule controller re-checks them every minute; a second here only
makes a due backup come sooner), the storage-location checks, the GC and delayed work:
EBS snapshots leaving `pending` a while after their backup completed (`pending.py`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from opsbook.sandbox.velero import backups, deletion, pending, restores, schedules, volumes
from opsbook.sandbox.velero.context import GROUP, VERSION, Ctx

log = logging.getLogger(__name__)
WATCH_SECONDS = 5
TICK_SECONDS = 1.0
LOCATION_CHECK_SECONDS = 5.0
NEW = ("", "New")


class Controller:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self.deleted_pvs: queue.Queue[Any] = queue.Queue()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._later: list[tuple[float, int, Callable[[], Any]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._last_location_check = 0.0
        self.idle = threading.Event()
        # work item kind -> what runs it (`handle`)
        self._run_new: dict[str, Callable[[dict[str, Any]], Any]] = {
            "backups": self._run_backup,
            "restores": lambda obj: restores.run(self.ctx, obj),
            "deletebackuprequests": lambda obj: deletion.run(self.ctx, obj),
        }
        self._on_change: dict[str, Callable[[str], Any]] = {
            "schedules": lambda _: schedules.run_schedules(self.ctx),
            "backupstoragelocations": lambda _: schedules.validate_locations(self.ctx),
            "namespace-deleted": lambda name: self.ctx.dataplane.drop_namespace(name),
            "volume-deleted": self._reclaim_deleted_volumes,
        }

    # --- one pass (also used at start, synchronously) ------------------------------------------

    def settle(self) -> None:
        """Process everything pending now: locations, schedules, then new backups/restores/requests."""
        schedules.validate_locations(self.ctx)
        schedules.run_schedules(self.ctx)
        for plural in ("backups", "restores", "deletebackuprequests"):
            for obj in self.ctx.list(plural):
                self.handle(plural, obj["metadata"]["name"])
        self._run_due(until=float("inf"))

    def handle(self, kind: str, name: str) -> None:
        """One work item: a new Backup/Restore/DeleteBackupRequest is run, other kinds react to a change."""
        run_new = self._run_new.get(kind)
        if run_new is not None:
            obj = self.ctx.get(kind, name)
            if obj is not None and (obj.get("status") or {}).get("phase", "") in NEW:
                run_new(obj)
            return
        on_change = self._on_change.get(kind)
        if on_change is not None:
            on_change(name)

    def _run_backup(self, backup: dict[str, Any]) -> None:
        region = self.ctx.params.region
        default = self.ctx.params.sandbox.snapshot_pending_seconds if self.ctx.params.sandbox else 0.0
        for snap in backups.run(self.ctx, backup):
            seconds = default if snap.pending_seconds is None else snap.pending_seconds
            self.later(seconds, lambda snap=snap: pending.release(region, snap))

    def _reclaim_deleted_volumes(self, _: str) -> None:
        while not self.deleted_pvs.empty():
            volumes.reclaim_deleted_pv(self.ctx, self.deleted_pvs.get_nowait())

    def later(self, delay: float, action: Callable[[], Any]) -> None:
        with self._lock:
            heapq.heappush(self._later, (time.monotonic() + delay, next(self._seq), action))

    def _run_due(self, until: float | None = None) -> None:
        limit = time.monotonic() if until is None else until
        while True:
            with self._lock:
                if not self._later or self._later[0][0] > limit:
                    return
                _, _, action = heapq.heappop(self._later)
            self._safely(action)

    @staticmethod
    def _safely(action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception:  # the controller keeps running, as a real one would
            log.warning("velero emulator: work item failed", exc_info=True)

    # --- threads -----------------------------------------------------------------------------

    def start(self) -> None:
        watched: list[tuple[str, Callable[[Any], Any], dict[str, Any]]] = []
        for plural in ("backups", "restores", "deletebackuprequests", "schedules", "backupstoragelocations"):
            watched.append((plural, lambda api, p=plural: (
                client.CustomObjectsApi(api).list_namespaced_custom_object,
                (GROUP, VERSION, self.ctx.namespace, p)), {}))
        watched.append(("namespaces", lambda api: (client.CoreV1Api(api).list_namespace, ()), {}))
        watched.append(("volumes", lambda api: (client.CoreV1Api(api).list_persistent_volume, ()), {}))
        for kind, make, _ in watched:
            thread = threading.Thread(target=self._watch, args=(kind, make), name=f"velero-watch-{kind}", daemon=True)
            self.threads.append(thread)
        self.threads.append(threading.Thread(target=self._work, name="velero-worker", daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.queue.put(("stop", ""))
        for thread in self.threads:
            # the worker finishes its item; a watcher blocked in a long poll is a daemon
            # thread that returns once the API server stops, so it is not waited for
            thread.join(timeout=WATCH_SECONDS + 2 if thread.name == "velero-worker" else 0.1)

    def _watch(self, kind: str, make: Callable[[Any], Any]) -> None:
        api = config.new_client_from_config(config_file=self.ctx.kubeconfig)
        func, args = make(api)
        resource_version = None
        try:
            while not self.stopping.is_set():
                try:
                    stream = watch.Watch().stream(func, *args, timeout_seconds=WATCH_SECONDS,
                                                  resource_version=resource_version)
                    for event in stream:
                        if self.stopping.is_set():
                            break
                        obj = event["object"]
                        meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata
                        resource_version = meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
                        name = meta["name"] if isinstance(meta, dict) else meta.name
                        self._route(kind, event["type"], name, obj)
                except ApiException as exc:
                    resource_version = None  # 410 Gone: list again
                    if exc.status != 410 and not self.stopping.is_set():
                        time.sleep(0.5)
                except Exception:  # noqa: BLE001 - the API server went away (sandbox stopping)
                    if self.stopping.is_set():
                        return
                    resource_version = None
                    time.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                api.close()

    def _route(self, kind: str, event: str, name: str, obj: Any) -> None:
        if kind == "namespaces":
            if event == "DELETED":
                self.queue.put(("namespace-deleted", name))
        elif kind == "volumes":
            if event == "DELETED":
                self.deleted_pvs.put(obj)
                self.queue.put(("volume-deleted", name))
        elif event in ("ADDED", "MODIFIED"):
            self.queue.put((kind, name))

    def _work(self) -> None:
        next_tick = time.monotonic()
        while not self.stopping.is_set():
            timeout = max(0.0, min(next_tick, self._next_due()) - time.monotonic())
            try:
                kind, name = self.queue.get(timeout=timeout)
            except queue.Empty:
                kind, name = "", ""
            if kind == "stop":
                return
            if kind:
                self.idle.clear()
                self._safely(lambda k=kind, n=name: self.handle(k, n))
            self._run_due()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_SECONDS
                self._tick()
            if self.queue.empty():
                self.idle.set()

    def _next_due(self) -> float:
        with self._lock:
            return self._later[0][0] if self._later else float("inf")

    def _tick(self) -> None:
        self._safely(lambda: schedules.run_schedules(self.ctx))
        self._safely(lambda: deletion.collect_expired(self.ctx))
        if time.monotonic() - self._last_location_check >= LOCATION_CHECK_SECONDS:
            self._last_location_check = time.monotonic()
            self._safely(lambda: schedules.validate_locations(self.ctx))
