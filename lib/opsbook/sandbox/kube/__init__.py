"""The sandbox's Kubernetes API server emulator (see server.py) and its sandbox service."""

from opsbook.sandbox.kube.server import KubeApiServer

__all__ = ["KubeApiServer"]
