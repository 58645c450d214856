"""KMS keys with their aliases, and SSM parameters (SecureStrings under the ssm key)."""

from __future__ import annotations

import secrets

from opsbook.sandbox.aws.seed.context import Seed

# the value of a plain String parameter: the sandbox has no real one to copy
PLAIN_VALUE = "sandbox"


def seed_kms(seed: Seed) -> None:
    kms = seed.client("kms")
    for purpose, alias in seed.params.kms.model_dump().items():
        key = kms.create_key(
            Description=f"{seed.name} {purpose}",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in seed.tags(alias.removeprefix("alias/")).items()],
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        if not seed.omit.has("kms_rotation", purpose):
            kms.enable_key_rotation(KeyId=key["KeyId"])
        seed.kms_keys[purpose] = key["Arn"]


def seed_ssm(seed: Seed) -> None:
    """Every required parameter; secure ones hold a random value made now, never a fixed one."""
    ssm = seed.client("ssm")
    secure = set(seed.params.ssm.secure)
    for name in dict.fromkeys([*seed.params.ssm.required, *seed.params.ssm.secure]):
        if seed.omit.has("ssm_parameter", name):
            continue
        tags = [{"Key": k, "Value": v} for k, v in seed.tags().items()]
        if name in secure:
            ssm.put_parameter(
                Name=name,
                Value=secrets.token_urlsafe(24),
                Type="SecureString",
                KeyId=seed.params.kms.ssm,
                Tags=tags,
            )
        else:
            ssm.put_parameter(Name=name, Value=PLAIN_VALUE, Type="String", Tags=tags)
