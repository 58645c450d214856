"""Wrap moto's in-process RDS backend so the sandbox data plane follows RDS calls.

Installed once per process (class-level wrappers that call the original first) and
routed to the active `RdsDataPlane`; with none active they are plain moto. Only the
sandbox uses this: library code talks to moto over HTTP with boto3 like to AWS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

_ACTIVE: Any = None
_INSTALLED = False
_LOCK = threading.Lock()


def activate(plane: Any) -> None:
    global _ACTIVE
    with _LOCK:
        _install()
        _ACTIVE = plane


def deactivate(plane: Any) -> None:
    global _ACTIVE
    with _LOCK:
        if _ACTIVE is plane:
            _ACTIVE = None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- what the data plane does after each wrapped RDSBackend call (its arguments as moto's) ---


def _after_create_db_instance(plane: Any, instance: Any, db_kwargs: dict[str, Any]) -> None:
    plane.ensure_instance(instance)


def _after_create_db_snapshot(plane: Any, _snapshot: Any, db_instance_identifier: str,
                              db_snapshot_identifier: str, *_: Any, **__: Any) -> None:
    plane.capture_snapshot(db_instance_identifier, db_snapshot_identifier, datetime.now(UTC))


def _after_delete_db_snapshot(plane: Any, _snapshot: Any, db_snapshot_identifier: str) -> None:
    plane.drop_snapshot(db_snapshot_identifier)


def _after_delete_db_instance(plane: Any, _instance: Any, db_instance_identifier: str,
                              *_: Any, **__: Any) -> None:
    plane.drop_instance(db_instance_identifier)


def _after_restore_from_snapshot(plane: Any, instance: Any, from_snapshot_id: str,
                                 overrides: dict[str, Any]) -> None:
    plane.restore_snapshot(from_snapshot_id.rsplit(":", 1)[-1], instance)


def _after_restore_to_time(plane: Any, instance: Any, source_db_identifier: str, target_db_identifier: str,
                           overrides: dict[str, Any]) -> None:
    when = overrides.get("restore_time")
    at = datetime.now(UTC) if overrides.get("use_latest_restorable_time") or when is None else _aware(when)
    plane.restore_to_time(source_db_identifier, instance, at)


AFTER: dict[str, Callable[..., None]] = {
    "create_db_instance": _after_create_db_instance,
    "create_db_snapshot": _after_create_db_snapshot,
    "delete_db_snapshot": _after_delete_db_snapshot,
    "delete_db_instance": _after_delete_db_instance,
    "restore_db_instance_from_db_snapshot": _after_restore_from_snapshot,
    "restore_db_instance_to_point_in_time": _after_restore_to_time,
}


def _follow(original: Callable[..., Any], after: Callable[..., None]) -> Callable[..., Any]:
    """`original`, then `after` on the active data plane (if any) with its result and arguments."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if _ACTIVE is not None:
            after(_ACTIVE, result, *args, **kwargs)
        return result

    wrapper.__name__ = wrapper.__qualname__ = original.__name__
    return wrapper


def _report_proxy_address(instance_class: Any) -> None:
    """The endpoint a sandbox instance reports is its proxy on loopback."""
    original_address = instance_class.address

    def address(self: Any) -> str:
        return getattr(self, "sandbox_endpoint_host", None) or original_address.fget(self)

    instance_class.address = property(address)


def _restore_window(self: Any) -> dict[str, datetime] | None:
    """The restore window AWS reports and moto leaves out: instance creation to now."""
    instance = self.backend.databases.get(self.db_instance_identifier)
    if instance is None:
        return None
    return {"EarliestTime": _aware(instance.instance_create_time), "LatestTime": datetime.now(UTC)}


def _emulate_forced_failover(response_class: Any) -> None:
    """moto ignores ForceFailover: emulate the failover of a Multi-AZ instance."""
    from moto.rds.exceptions import InvalidParameterCombination

    original_reboot = response_class.reboot_db_instance

    def reboot_db_instance(self: Any) -> Any:
        force = str(self.params.get("ForceFailover", "")).lower() in ("true", "1")
        if force and _ACTIVE is not None:
            identifier = self.params.get("DBInstanceIdentifier")
            instance = self.backend.databases.get(identifier)
            if instance is not None:
                if not instance.multi_az:
                    raise InvalidParameterCombination(
                        f"Cannot force a failover on DB instance {identifier}: it is not Multi-AZ.")
                _ACTIVE.failover(instance)
        return original_reboot(self)

    response_class.reboot_db_instance = reboot_db_instance


def _install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.rds import models, responses

    for name, after in AFTER.items():
        setattr(models.RDSBackend, name, _follow(getattr(models.RDSBackend, name), after))
    _report_proxy_address(models.DBInstance)
    models.DBInstanceAutomatedBackup.restore_window = property(_restore_window)
    _emulate_forced_failover(responses.RDSResponse)
    _INSTALLED = True
