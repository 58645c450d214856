"""DynamoDB: the Terraform lock table."""

from __future__ import annotations

from opsbook.clients import Env
from opsbook.inventory.base import Model
from opsbook.inventory.registry import COLLECTORS


class Table(Model):
    name: str
    status: str
    hash_key: str | None
    hash_key_type: str | None
    billing_mode: str | None = None


@COLLECTORS.register("lock_table")
def collect_lock_table(env: Env) -> Table | None:
    dynamodb = env.aws("dynamodb")
    name = env.params.lock_table
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    hash_key = next((k["AttributeName"] for k in table.get("KeySchema", []) if k["KeyType"] == "HASH"), None)
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    return Table(
        name=name,
        status=table["TableStatus"],
        hash_key=hash_key,
        hash_key_type=types.get(hash_key) if hash_key else None,
        billing_mode=table.get("BillingModeSummary", {}).get("BillingMode"),
    )
