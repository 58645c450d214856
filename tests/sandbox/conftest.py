"""Fixtures for the sandbox's contract tests."""

from __future__ import annotations

import pytest
from kubernetes import config
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
