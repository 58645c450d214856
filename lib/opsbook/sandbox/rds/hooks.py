"""Wrap moto's in-process RDS backend so the sandbox data plane follows RDS calls.

Installed once per process (class-level wrappers that call the original first) and
routed to the active `RdsDataPlane`; with none active they are plain moto. Only the
sandbox uses this: library code talks to moto over HTTP with boto3 like to AWS.
"""

from __future__ import annotations

import logging
import threading
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


def _install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.rds import models, responses
    from moto.rds.exceptions import InvalidParameterCombination

    backend = models.RDSBackend
    originals = {name: getattr(backend, name) for name in (
        "create_db_instance", "create_db_snapshot", "delete_db_snapshot", "delete_db_instance",
        "restore_db_instance_from_db_snapshot", "restore_db_instance_to_point_in_time")}

    def create_db_instance(self: Any, db_kwargs: dict[str, Any]) -> Any:
        instance = originals["create_db_instance"](self, db_kwargs)
        if _ACTIVE is not None:
            _ACTIVE.ensure_instance(instance)
        return instance

    def create_db_snapshot(self: Any, db_instance_identifier: str, db_snapshot_identifier: str,
                           *args: Any, **kwargs: Any) -> Any:
        snapshot = originals["create_db_snapshot"](self, db_instance_identifier, db_snapshot_identifier,
                                                   *args, **kwargs)
        if _ACTIVE is not None:
            _ACTIVE.capture_snapshot(db_instance_identifier, db_snapshot_identifier, datetime.now(UTC))
        return snapshot

    def delete_db_snapshot(self: Any, db_snapshot_identifier: str) -> Any:
        snapshot = originals["delete_db_snapshot"](self, db_snapshot_identifier)
        if _ACTIVE is not None:
            _ACTIVE.drop_snapshot(db_snapshot_identifier)
        return snapshot

    def delete_db_instance(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        instance = originals["delete_db_instance"](self, db_instance_identifier, *args, **kwargs)
        if _ACTIVE is not None:
            _ACTIVE.drop_instance(db_instance_identifier)
        return instance

    def restore_db_instance_from_db_snapshot(self: Any, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        instance = originals["restore_db_instance_from_db_snapshot"](self, from_snapshot_id, overrides)
        if _ACTIVE is not None:
            _ACTIVE.restore_snapshot(from_snapshot_id.rsplit(":", 1)[-1], instance)
        return instance

    def restore_db_instance_to_point_in_time(self: Any, source_db_identifier: str, target_db_identifier: str,
                                             overrides: dict[str, Any]) -> Any:
        instance = originals["restore_db_instance_to_point_in_time"](
            self, source_db_identifier, target_db_identifier, overrides)
        if _ACTIVE is not None:
            when = overrides.get("restore_time")
            at = datetime.now(UTC) if overrides.get("use_latest_restorable_time") or when is None else _aware(when)
            _ACTIVE.restore_to_time(source_db_identifier, instance, at)
        return instance

    for name, func in [("create_db_instance", create_db_instance), ("create_db_snapshot", create_db_snapshot),
                       ("delete_db_snapshot", delete_db_snapshot), ("delete_db_instance", delete_db_instance),
                       ("restore_db_instance_from_db_snapshot", restore_db_instance_from_db_snapshot),
                       ("restore_db_instance_to_point_in_time", restore_db_instance_to_point_in_time)]:
        setattr(backend, name, func)

    # the endpoint a sandbox instance reports is its proxy on loopback
    original_address = models.DBInstance.address

    def address(self: Any) -> str:
        return getattr(self, "sandbox_endpoint_host", None) or original_address.fget(self)

    models.DBInstance.address = property(address)

    # the restore window AWS reports and moto leaves out: instance creation to now
    def restore_window(self: Any) -> dict[str, datetime] | None:
        instance = self.backend.databases.get(self.db_instance_identifier)
        if instance is None:
            return None
        return {"EarliestTime": _aware(instance.instance_create_time), "LatestTime": datetime.now(UTC)}

    models.DBInstanceAutomatedBackup.restore_window = property(restore_window)

    # moto ignores ForceFailover: emulate the failover of a Multi-AZ instance
    original_reboot = responses.RDSResponse.reboot_db_instance

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

    responses.RDSResponse.reboot_db_instance = reboot_db_instance
    _INSTALLED = True
