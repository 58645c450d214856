"""Fixtures for the sandbox's contract tests."""

from __future__ import annotations

import secrets
import time
import uuid

import boto3
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from opsbook.sandbox.kube.kubeconfig import write_kubeconfig
from opsbook.sandbox.kube.server import KubeApiServer


@pytest.fixture(scope="module")
def api_client(tmp_path_factory):
    """A bare Kubernetes API server emulator (no seed) and an official client for it."""
    server = KubeApiServer(kube_version="1.30").start()
    path = write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", "contract", server.url)
    api = config.new_client_from_config(config_file=str(path))
    yield api
    api.close()
    server.stop()


@pytest.fixture()
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture()
def apps(api_client):
    return client.AppsV1Api(api_client)


@pytest.fixture()
def custom(api_client):
    return client.CustomObjectsApi(api_client)


@pytest.fixture()
def ns(core):
    """A fresh namespace per test, deleted afterwards (a test may have deleted it already)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"team": "qa"})))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        assert exc.status == 404


def put_ssm_markers(params, subtree: str) -> dict[str, tuple[str, str]]:
    """Parameters of every SSM type with distinctive random values under `<prefix>/opsbook-test/<subtree>`,
    beside the seeded ones: {name: (type, value)}."""
    ssm = boto3.client("ssm", region_name=params.region)
    base = f"{params.ssm.prefix}/opsbook-test/{subtree}"
    made = {f"{base}/plain": ("String", f"plain-{secrets.token_hex(8)}"),
            f"{base}/list": ("StringList", f"a-{secrets.token_hex(6)},b-{secrets.token_hex(6)}"),
            f"{base}/secret": ("SecureString", secrets.token_urlsafe(24))}
    for name, (kind, value) in made.items():
        key = {"KeyId": params.kms.ssm} if kind == "SecureString" else {}
        ssm.put_parameter(Name=name, Type=kind, Value=value, Overwrite=True, **key)
    return made


def wait_for(check, seconds: float = 20.0):
    """The first truthy value of check(), polled until `seconds` pass (then the test fails)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"nothing after {seconds}s")
