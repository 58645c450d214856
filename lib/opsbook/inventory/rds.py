"""RDS: the instances params name, with what the health check reads of them."""

from __future__ import annotations

from datetime import datetime

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS


class DbInstance(Model):
    identifier: str
    status: str
    engine: str
    engine_version: str
    multi_az: bool
    backup_retention_days: int
    storage_encrypted: bool
    kms_key_id: str | None = None
    latest_restorable_time: datetime | None = None


@COLLECTORS.register("db_instances")
def collect_db_instances(env: Env) -> dict[str, DbInstance | None]:
    """Each params instance by identifier; None when RDS has no such instance."""
    rds = env.aws("rds")
    found: dict[str, DbInstance | None] = {}
    for wanted in env.params.rds:
        try:
            db = rds.describe_db_instances(DBInstanceIdentifier=wanted.identifier)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            found[wanted.identifier] = None
            continue
        found[wanted.identifier] = DbInstance(
            identifier=db["DBInstanceIdentifier"],
            status=db["DBInstanceStatus"],
            engine=db["Engine"],
            engine_version=db["EngineVersion"],
            multi_az=bool(db.get("MultiAZ")),
            backup_retention_days=db.get("BackupRetentionPeriod", 0),
            storage_encrypted=bool(db.get("StorageEncrypted")),
            kms_key_id=db.get("KmsKeyId"),
            latest_restorable_time=db.get("LatestRestorableTime"),
        )
    return found
