"""Drills: the framework (steps, RTO/RPO, verdict, cleanup), RDS drills, the sweeper, history.

`on_drill_event(listener)` is the hook point for drill events (start, each step, end).
"""

from opsbook.drills.events import DrillEvent, on_drill_event, remove_listener

__all__ = ["DrillEvent", "on_drill_event", "remove_listener"]
