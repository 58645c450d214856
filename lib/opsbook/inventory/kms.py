"""KMS: the keys behind the aliases of params, with their rotation status."""

from __future__ import annotations

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS


class KmsKey(Model):
    purpose: str  # the params.kms field: terraform, rds, ssm
    alias: str
    exists: bool
    key_id: str | None = None
    key_arn: str | None = None
    state: str | None = None  # Enabled, Disabled, PendingDeletion, ...
    rotation_enabled: bool | None = None

    @property
    def alias_arn(self) -> str | None:
        """The alias as an ARN (how S3 or RDS settings may name the key)."""
        if not self.key_arn:
            return None
        return self.key_arn.split(":key/")[0] + ":" + self.alias

    def names(self) -> set[str]:
        """Every way a setting may refer to this key."""
        return {n for n in (self.alias, self.key_id, self.key_arn, self.alias_arn) if n}


@COLLECTORS.register("kms_keys")
def collect_kms_keys(env: Env) -> list[KmsKey]:
    kms = env.aws("kms")
    keys = []
    for purpose, alias in env.params.kms.model_dump().items():
        try:
            meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except kms.exceptions.NotFoundException:
            keys.append(KmsKey(purpose=purpose, alias=alias, exists=False))
            continue
        rotation = kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
        keys.append(
            KmsKey(
                purpose=purpose,
                alias=alias,
                exists=True,
                key_id=meta["KeyId"],
                key_arn=meta["Arn"],
                state=meta.get("KeyState"),
                rotation_enabled=bool(rotation),
            )
        )
    return keys
