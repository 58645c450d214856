"""Read-only views of the estate: one wrapper per service turning API answers into typed
models, checks that consume only those models, and the health check that joins them."""

from opsbook.inventory.checks import Check
from opsbook.inventory.health import HealthCheckFailed, HealthReport, Thresholds, run_health_check, verdict

__all__ = ["Check", "HealthCheckFailed", "HealthReport", "Thresholds", "run_health_check", "verdict"]
