"""CloudTrail: a multi-region trail logging into the logs bucket."""

from __future__ import annotations

import json

from opsbook.sandbox.aws.seed.context import Seed, tag_list

PREFIX = "cloudtrail"


def seed_trail(seed: Seed) -> None:
    if seed.omit.has("trail") or seed.omit.has("bucket", "logs"):
        return
    bucket = seed.params.buckets.logs
    account = seed.client("sts").get_caller_identity()["Account"]
    trail_arn = f"arn:aws:cloudtrail:{seed.params.region}:{account}:trail/{seed.params.trail_name}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}/AWSLogs/{account}/*",
                "Condition": {
                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
                },
            },
        ],
    }
    seed.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    trail = seed.client("cloudtrail")
    trail.create_trail(
        Name=seed.params.trail_name,
        S3BucketName=bucket,
        S3KeyPrefix=PREFIX,
        IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True,
        EnableLogFileValidation=True,
        TagsList=tag_list(seed.tags(seed.params.trail_name)),
    )
    if not seed.omit.has("trail_logging"):
        trail.start_logging(Name=seed.params.trail_name)
