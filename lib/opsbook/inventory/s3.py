"""S3: which buckets of params exist, and the state bucket's versioning, encryption and
public access block."""

from __future__ import annotations

from typing import Any

from opsbook.clients import Env, error_code
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS

PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


class Encryption(Model):
    algorithm: str  # AES256, aws:kms, aws:kms:dsse
    kms_key_id: str | None = None


class Bucket(Model):
    name: str
    exists: bool
    # read only for buckets asked in detail (None: not read)
    versioning: str | None = None  # Enabled, Suspended, or "" when never enabled
    encryption: Encryption | None = None
    public_access_block: dict[str, bool] | None = None  # {} when the bucket has none


def _exists(s3: Any, name: str) -> bool:
    try:
        s3.head_bucket(Bucket=name)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def collect_bucket(env: Env, name: str, detailed: bool = False) -> Bucket:
    s3 = env.aws("s3")
    if not _exists(s3, name):
        return Bucket(name=name, exists=False)
    if not detailed:
        return Bucket(name=name, exists=True)
    return Bucket(
        name=name,
        exists=True,
        versioning=s3.get_bucket_versioning(Bucket=name).get("Status", ""),
        encryption=_encryption(s3, name),
        public_access_block=_public_access_block(s3, name),
    )


def _encryption(s3: Any, name: str) -> Encryption | None:
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    except Exception as exc:
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    if not default:
        return None
    return Encryption(algorithm=default["SSEAlgorithm"], kms_key_id=default.get("KMSMasterKeyID"))


def _public_access_block(s3: Any, name: str) -> dict[str, bool]:
    try:
        config = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except Exception as exc:
        if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise
    return {flag: bool(config.get(flag)) for flag in PUBLIC_ACCESS_FLAGS}


@COLLECTORS.register("buckets")
def collect_buckets(env: Env) -> list[Bucket]:
    """Every bucket of params; the Terraform state bucket in detail."""
    state = env.params.buckets.terraform_state
    return [
        collect_bucket(env, name, detailed=name == state) for name in env.params.buckets.model_dump().values()
    ]
