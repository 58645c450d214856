"""CloudTrail: the trail params name and whether it is logging."""

from __future__ import annotations

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS


class Trail(Model):
    name: str
    s3_bucket: str | None
    multi_region: bool
    log_file_validation: bool
    is_logging: bool
    latest_delivery_error: str | None = None


@COLLECTORS.register("trail")
def collect_trail(env: Env) -> Trail | None:
    cloudtrail = env.aws("cloudtrail")
    name = env.params.trail_name
    trails = cloudtrail.describe_trails(trailNameList=[name])["trailList"]
    if not trails:
        return None
    trail = trails[0]
    status = cloudtrail.get_trail_status(Name=trail.get("TrailARN", name))
    return Trail(
        name=trail["Name"],
        s3_bucket=trail.get("S3BucketName"),
        multi_region=bool(trail.get("IsMultiRegionTrail")),
        log_file_validation=bool(trail.get("LogFileValidationEnabled")),
        is_logging=bool(status.get("IsLogging")),
        latest_delivery_error=status.get("LatestDeliveryError") or None,
    )
