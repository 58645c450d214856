"""What the seed steps share: params, boto3 clients on moto, and what earlier steps made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config

from opsbook.params import Params
from opsbook.sandbox.aws.seed.omit import Omit

# moto answers unimplemented actions with HTTP 500: fail at once rather than retry.
SEED_CONFIG = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5)


@dataclass
class Seed:
    params: Params
    env: dict[str, str]
    facts: dict[str, Any]
    omit: Omit
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    # filled in by the steps, read by later ones
    vpc_id: str = ""
    public_subnets: dict[str, str] = field(default_factory=dict)  # AZ -> subnet id
    private_subnets: dict[str, str] = field(default_factory=dict)
    kms_keys: dict[str, str] = field(default_factory=dict)  # params.kms field -> key ARN
    nodes: list[dict[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The estate's name prefix: the cluster's name (params eks.cluster_name)."""
        return self.params.eks.cluster_name

    def client(self, service: str) -> Any:
        """A boto3 client on moto, built from the sandbox env only (never os.environ)."""
        if service not in self._clients:
            env = self.env
            endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}", env["AWS_ENDPOINT_URL"])
            self._clients[service] = boto3.client(
                service,
                endpoint_url=endpoint,
                region_name=self.params.region,
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=env.get("AWS_SESSION_TOKEN"),
                config=SEED_CONFIG,
            )
        return self._clients[service]

    def tags(self, name: str | None = None, **extra: str) -> dict[str, str]:
        """The tags Terraform puts on everything of the estate (never opsbook's ownership tags)."""
        tags = {"Environment": self.params.env, "ManagedBy": "terraform", **extra}
        if name:
            tags["Name"] = name
        return tags


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_spec(resource_type: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]
