"""The sweeper's finders for what an RDS drill leaves behind: tagged DB instances and snapshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opsbook.drills import rds_api
from opsbook.drills.framework import PURPOSE
from opsbook.drills.sweeper import FINDERS, Leftover, created_at
from opsbook.guard import RUN_ID_TAG, is_owned


def _tags_now(rds: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn).get("TagList", [])}


def _rds_leftovers(rds: Any, kind: str, items: list[dict[str, Any]], prefix: str, created_key: str,
                   status_key: str, delete: Callable[[Any, str], Any]) -> list[Leftover]:
    """Tagged drill instances or snapshots; `prefix` is DBInstance or DBSnapshot."""
    out = []
    for item in items:
        tags = rds_api.tags_of(item)
        if not is_owned(tags, PURPOSE):
            continue
        name, arn = item[f"{prefix}Identifier"], item[f"{prefix}Arn"]
        out.append(Leftover(
            kind, name, tags[RUN_ID_TAG], created_at(tags, item.get(created_key)), item[status_key],
            delete=lambda name=name: delete(rds, name),
            still_owned=lambda arn=arn: is_owned(_tags_now(rds, arn), PURPOSE)))
    return out


@FINDERS.register("rds-instance")
def rds_instances(env: Any) -> list[Leftover]:
    rds = env.aws("rds")
    return _rds_leftovers(rds, "rds-instance", rds_api.list_instances(rds), "DBInstance", "InstanceCreateTime",
                          "DBInstanceStatus", rds_api.delete_instance)


@FINDERS.register("rds-snapshot")
def rds_snapshots(env: Any) -> list[Leftover]:
    rds = env.aws("rds")
    return _rds_leftovers(rds, "rds-snapshot", rds_api.list_snapshots(rds), "DBSnapshot", "SnapshotCreateTime",
                          "Status", rds_api.delete_snapshot)
