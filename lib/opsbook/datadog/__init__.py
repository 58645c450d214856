"""Datadog: metrics, monitors as code, events, downtimes, usage and the agent PoC's cost.

Every call goes through the official `datadog-api-client`, made by `connect(env)`.
"""

from opsbook.datadog.client import Datadog, connect

__all__ = ["Datadog", "connect"]
