"""S3 buckets (the Terraform state bucket versioned and SSE-KMS) and the DynamoDB lock table."""

from __future__ import annotations

from opsbook.sandbox.aws.seed.context import Seed, tag_list


def seed_buckets(seed: Seed) -> None:
    """Every bucket of params, all with a public access block.

    The state bucket's TLS-only (DenyInsecureTransport) policy stays out: moto refuses
    every request to a bucket carrying it, whatever its conditions.
    """
    s3 = seed.client("s3")
    region = seed.params.region
    for key, bucket in seed.params.buckets.model_dump().items():
        if seed.omit.has("bucket", key):
            continue
        kwargs = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **kwargs)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(seed.tags(bucket))})
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        if key == "terraform_state":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            rule = {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": seed.kms_keys["terraform"],
                },
                "BucketKeyEnabled": True,
            }
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})


def seed_lock_table(seed: Seed) -> None:
    if seed.omit.has("lock_table"):
        return
    seed.client("dynamodb").create_table(
        TableName=seed.params.lock_table,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=tag_list(seed.tags(seed.params.lock_table)),
    )
