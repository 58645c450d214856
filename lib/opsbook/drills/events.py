"""A hook point for drill events: listeners are called at a drill's start, each step and its end.

The Datadog work registers a listener that posts events; drills themselves know nothing
about who listens. A listener that raises is logged and skipped: it never breaks a drill.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

EventKind = Literal["start", "step", "end"]


@dataclass(frozen=True)
class DrillEvent:
    """What happened: `step` carries the finished step, `result` the drill record at the end."""

    kind: EventKind
    drill: str
    env: str
    run_id: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    step: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


Listener = Callable[[DrillEvent], None]
_LISTENERS: list[Listener] = []
# Modules whose `install()` registers a listener; loaded at the first event, so a drill
# pays for them only when it runs (Datadog annotations: events and downtimes).
LISTENER_PLUGINS = ["opsbook.datadog.annotations"]
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in LISTENER_PLUGINS:
        try:
            importlib.import_module(name).install()
        except Exception:  # a missing plugin must never break a drill
            log.warning("drill event plugin %s could not be installed", name, exc_info=True)


def on_drill_event(listener: Listener) -> Listener:
    """Register `listener` for every drill event (usable as a decorator); returns it."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)
    return listener


def remove_listener(listener: Listener) -> None:
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


def emit(event: DrillEvent) -> None:
    _load_plugins()
    for listener in list(_LISTENERS):
        try:
            listener(event)
        except Exception:  # a listener must never break a drill
            log.warning("drill event listener %r failed on %s", listener, event.kind, exc_info=True)
