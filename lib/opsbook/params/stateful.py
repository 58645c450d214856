"""How opsbook reaches stateful workloads of a namespace, and Velero (the Velero drills and audit)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
)

from opsbook.params.types import Model, SsmName

# Placeholders of the templates saying how opsbook reaches a stateful workload of a namespace.
ACCESS_PLACEHOLDERS = ("namespace", "service", "database")


def _access_template(value: str) -> str:
    import string

    try:
        names = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    except ValueError as exc:
        raise ValueError(f"expected a template such as '{{service}}.{{namespace}}.svc', got {value!r} ({exc})") from None
    unknown = sorted(n for n in names if n not in ACCESS_PLACEHOLDERS)
    if unknown:
        allowed = ", ".join(f"{{{n}}}" for n in ACCESS_PLACEHOLDERS)
        raise ValueError(f"unknown placeholder(s) {', '.join(unknown)!s} in {value!r} (allowed: {allowed})")
    return value


AccessTemplate = Annotated[str, AfterValidator(_access_template)]


class RabbitmqAccess(Model):
    """How opsbook reaches the RabbitMQ broker of a namespace (in-cluster DNS over the VPN)."""

    host: AccessTemplate = "{service}.{namespace}.svc.cluster.local"
    amqp_port: int = Field(5672, ge=1, le=65535)
    management_url: AccessTemplate = "http://{service}.{namespace}.svc.cluster.local:15672"
    vhost: AccessTemplate | None = Field(None, description="the broker's vhost; None: every vhost of the broker")
    username: str = "opsbook"
    password_ssm: SsmName | None = None
    canary_queue: str = Field("opsbook.drill-canary", min_length=1)


class DatabaseAccess(Model):
    """How opsbook reaches a microservice's MySQL database pod of a namespace."""

    host: AccessTemplate = "{service}.{namespace}.svc.cluster.local"
    port: int = Field(3306, ge=1, le=65535)
    database: AccessTemplate = "{database}"
    username: str = "opsbook"
    password_ssm: SsmName | None = None


class StatefulAccess(Model):
    rabbitmq: RabbitmqAccess = RabbitmqAccess()
    mysql: DatabaseAccess = DatabaseAccess()


class Velero(Model):
    """The cluster's Velero install and what its backups promise."""

    namespace: str = "velero"
    storage_location: str = "default"
    snapshot_location: str | None = "default"
    backup_ttl: str = Field("72h0m0s", pattern=r"^(\d+h)?(\d+m)?(\d+s)?$", min_length=2)
    rpo_minutes: float = Field(1500, gt=0, description="max age of a namespace's last successful backup")
    timeout_minutes: float = Field(30, gt=0, description="wait for a backup or restore this long")
    pod_ready_timeout_minutes: float = Field(10, gt=0)
    poll_seconds: float = Field(2, gt=0)
