"""Acceptance of the Terraform backend bootstrap on the sandbox (a fresh region of its own).

moto serves plain HTTP, and a TLS-only bucket policy makes it refuse every object
request to that bucket (bucket-level requests still work): these tests read the policy
and the bucket's settings, and send no object request to the state bucket.
"""

from __future__ import annotations

import json

import pytest
from opsbook.errors import EndpointError, OpsbookError
from opsbook.provision import backend, steps

REGION = "eu-north-1"  # no other test uses it: the region is fresh when this module starts


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return str(tmp_path_factory.mktemp("backend"))


def _pending(plan) -> list[tuple[str, str, str]]:
    return [(c.resource, c.attribute, c.action) for c in plan.pending]


def test_bootstrap_fresh_region_then_no_change_then_drift_repaired(sandbox_env, out) -> None:
    env = sandbox_env
    names = backend.backend_names(env.params, REGION)
    plan = backend.plan_backend(env, REGION, output_dir=out)
    table = plan.table()
    # every resource of the backend is listed, and every row creates (nothing exists yet)
    resources = set(table["resource"])
    assert {f"kms {names.kms_alias}", f"s3 {names.state_bucket}", f"dynamodb {names.lock_table}",
            f"s3 {names.log_bucket}", f"cloudtrail {names.trail}", f"file {out}/backend.tf"} == resources
    assert set(table["action"]) == {"create"}
    for attribute in ("versioning", "encryption", "public access block", "bucket policy", "lifecycle"):
        assert ((table["resource"] == f"s3 {names.state_bucket}") & (table["attribute"] == attribute)).sum() == 1
    for attribute in ("billing mode", "point-in-time recovery", "encryption"):
        assert ((table["resource"] == f"dynamodb {names.lock_table}") & (table["attribute"] == attribute)).sum() == 1

    outcome = steps.apply_plan(plan, apply=True)
    assert outcome.changed == len(table)

    # what exists now, read with plain boto3 calls
    s3, kms = env.aws("s3", REGION), env.aws("kms", REGION)
    ddb, trails = env.aws("dynamodb", REGION), env.aws("cloudtrail", REGION)
    key = kms.describe_key(KeyId=names.kms_alias)["KeyMetadata"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=names.state_bucket)["Status"] == "Enabled"
    sse = s3.get_bucket_encryption(Bucket=names.state_bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    assert all(s3.get_public_access_block(Bucket=names.state_bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=names.state_bucket)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=names.state_bucket)["Rules"]
    assert [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules] == [90]
    table_desc = ddb.describe_table(TableName=names.lock_table)["Table"]
    assert table_desc["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert table_desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table_desc["SSEDescription"]["Status"] == "ENABLED"
    pitr = ddb.describe_continuous_backups(TableName=names.lock_table)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    [trail] = [t for t in trails.describe_trails()["trailList"] if t["HomeRegion"] == REGION]
    assert trail["Name"] == names.trail
    assert trail["S3BucketName"] == names.log_bucket and trail["LogFileValidationEnabled"] is True
    assert trails.get_trail_status(Name=names.trail)["IsLogging"] is True
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=names.state_bucket)["TagSet"]}
    assert tags["opsbook:run-id"] == env.run_id and tags["opsbook:purpose"] == "terraform-backend"
    block = (out + "/backend.tf")
    text = open(block).read()
    assert f'bucket         = "{names.state_bucket}"' in text and f'dynamodb_table = "{names.lock_table}"' in text

    # a second plan shows no change
    again = backend.plan_backend(env, REGION, output_dir=out)
    assert _pending(again) == []
    assert steps.apply_plan(again, apply=True).changed == 0

    # drift: versioning suspended by hand shows as exactly that row, and apply repairs it
    s3.put_bucket_versioning(Bucket=names.state_bucket, VersioningConfiguration={"Status": "Suspended"})
    drift = backend.plan_backend(env, REGION, output_dir=out)
    assert _pending(drift) == [(f"s3 {names.state_bucket}", "versioning", "update")]
    assert (drift.pending[0].current, drift.pending[0].desired) == ("Suspended", "Enabled")
    assert steps.apply_plan(drift, apply=True).changed == 1
    assert s3.get_bucket_versioning(Bucket=names.state_bucket)["Status"] == "Enabled"
    assert _pending(backend.plan_backend(env, REGION, output_dir=out)) == []


def test_plan_mode_changes_nothing(sandbox_env, tmp_path) -> None:
    region = "eu-south-1"
    plan = backend.plan_backend(sandbox_env, region, output_dir=str(tmp_path))
    outcome = steps.apply_plan(plan, apply=False)
    assert outcome.changed == 0 and outcome.pending == len(plan.pending) > 0
    assert "apply=True" in outcome.message
    again = backend.plan_backend(sandbox_env, region, output_dir=str(tmp_path))
    assert len(again.pending) == len(plan.pending) and not (tmp_path / "backend.tf").exists()


def test_a_lock_table_with_the_wrong_key_is_refused_before_any_change(sandbox_env, tmp_path) -> None:
    region = "ap-south-1"
    ddb = sandbox_env.aws("dynamodb", region)
    ddb.create_table(TableName=sandbox_env.params.lock_table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    with pytest.raises(OpsbookError, match="needs exactly a string hash key 'LockID'"):
        backend.plan_backend(sandbox_env, region, output_dir=str(tmp_path))
    with pytest.raises(OpsbookError, match="noncurrent_days"):
        backend.plan_backend(sandbox_env, region, noncurrent_days=0, output_dir=str(tmp_path))


def test_an_action_the_endpoint_lacks_is_a_clear_error(sandbox_env) -> None:
    # moto answers HTTP 500 for actions it does not implement; opsbook names what failed
    ddb = sandbox_env.aws("dynamodb")
    with pytest.raises(EndpointError, match=r"DynamoDB answered HTTP 500 to DescribeContributorInsights in "
                                            r"eu-central-1.*does not implement"):
        ddb.describe_contributor_insights(TableName=sandbox_env.params.lock_table)
