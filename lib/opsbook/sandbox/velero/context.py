"""What every part of the Velero emulator uses: API clients, the object store, time, status writes."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from opsbook.formats.velero import Layout
from opsbook.params import Params
from opsbook.sandbox.velero.dataplane import DataPlane

log = logging.getLogger(__name__)
GROUP, VERSION = "velero.io", "v1"
AWS_CONFIG = botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def stamp(moment: dt.datetime | None = None) -> str:
    """RFC 3339 in UTC, seconds precision, as Velero writes metav1.Time."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class Log:
    """A Velero-style log (logrus text lines), gzipped into the object store at the end."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.lines: list[str] = []

    def add(self, level: str, msg: str, **fields: Any) -> None:
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        self.lines.append(f'time="{stamp()}" level={level} msg="{msg}" {self.what}{extra}')

    def gz(self) -> bytes:
        return gzip.compress(("\n".join(self.lines) + "\n").encode())


@dataclass
class Ctx:
    """Clients of the Kubernetes API and moto, the params, and the data plane."""

    params: Params
    env: dict[str, str]
    kubeconfig: str
    dataplane: DataPlane
    namespace: str = "velero"
    api: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(config_file=self.kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        # its discovery cache beside the kubeconfig: the client's default, a file in /tmp named by
        # host:port, is shared with every other API server that ever listened on that port
        self.dyn = dynamic.DynamicClient(self.api, cache_file=str(Path(self.kubeconfig).with_name("discovery.json")))
        self.ec2 = self.aws("ec2")
        self.s3 = self.aws("s3")

    def aws(self, service: str) -> Any:
        env = self.env
        return boto3.client(
            service, endpoint_url=env.get(f"AWS_ENDPOINT_URL_{service.upper()}", env["AWS_ENDPOINT_URL"]),
            region_name=self.params.region, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], aws_session_token=env.get("AWS_SESSION_TOKEN"),
            config=AWS_CONFIG,
        )

    def close(self) -> None:
        self.api.close()

    # --- velero.io objects -----------------------------------------------------------------

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, plural: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, **kwargs)["items"]

    def patch(self, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """A merge patch (status included: Velero's kinds have no status subresource)."""
        try:
            return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name, body)
        except ApiException as exc:
            if exc.status == 404:
                return None  # deleted meanwhile
            raise

    def status(self, plural: str, name: str, **status: Any) -> dict[str, Any] | None:
        return self.patch(plural, name, {"status": status})

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def delete(self, plural: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@dataclass
class ObjectStore:
    """One BackupStorageLocation's bucket and prefix, through boto3 on moto."""

    s3: Any
    bucket: str
    layout: Layout

    @classmethod
    def of(cls, ctx: Ctx, location: dict[str, Any]) -> ObjectStore:
        storage = (location.get("spec") or {}).get("objectStorage") or {}
        return cls(ctx.s3, storage.get("bucket", ""), Layout(storage.get("prefix") or ""))

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete_dir(self, prefix: str) -> int:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
        return len(keys)
