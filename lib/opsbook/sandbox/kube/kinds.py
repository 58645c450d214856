"""What the API server (and its built-in controllers) do to an object of a kind on write."""

from __future__ import annotations

import base64
import ipaddress
import itertools
import re
from typing import Any

from opsbook.sandbox.kube.errors import ApiError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kinds whose names must be DNS-1123 labels; all others are DNS-1123 subdomains.
LABEL_NAMED = ("Namespace", "Service")
# Kinds that accept status on create (the node's kubelet registers with its status).
STATUS_ON_CREATE = ("Node",)
APPS_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet")

_SERVICE_CIDR = ipaddress.IPv4Network("172.20.0.0/16")
_cluster_ips = itertools.count(10)


def name_causes(kind: str, name: str) -> list[dict[str, str]]:
    """422 causes for a name that the kind does not accept."""
    if kind in LABEL_NAMED:
        ok, limit, rule = DNS_LABEL.match(name), 63, "a lowercase RFC 1123 label"
    else:
        ok, limit, rule = DNS_SUBDOMAIN.match(name), 253, "a lowercase RFC 1123 subdomain"
    if ok and len(name) <= limit:
        return []
    return [{
        "reason": "FieldValueInvalid",
        "field": "metadata.name",
        "message": f'Invalid value: "{name}": a {rule} must consist of lower case alphanumeric characters, '
                   f"'-' or '.', and must start and end with an alphanumeric character (at most {limit} characters)",
    }]


def _qos_class(spec: dict[str, Any]) -> str:
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(res) is not None
        and (r.get("requests") or {}).get(res, (r.get("limits") or {}).get(res)) == (r.get("limits") or {}).get(res)
        for r in resources
        for res in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _secret(obj: dict[str, Any]) -> None:
    string_data = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {}) if string_data or "data" in obj else None
    for key, value in string_data.items():
        data[key] = base64.b64encode(value.encode()).decode()
    for key, value in (obj.get("data") or {}).items():
        try:
            base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            raise ApiError(400, f"Secret.data[{key}]: illegal base64 data") from None
    obj.setdefault("type", "Opaque")


def _service(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if old is not None and (old.get("spec") or {}).get("clusterIP"):
        spec["clusterIP"] = old["spec"]["clusterIP"]
    elif spec["type"] != "ExternalName" and not spec.get("clusterIP"):
        spec["clusterIP"] = str(_SERVICE_CIDR[next(_cluster_ips)])
    if spec.get("clusterIP"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def _apps_defaults(kind: str, obj: dict[str, Any]) -> None:
    """What k8s.io/kubernetes pkg/apis/apps/v1/defaults.go fills in on every write."""
    spec = obj.setdefault("spec", {})
    if kind != "DaemonSet":
        spec.setdefault("replicas", 1)
    if kind != "ReplicaSet":
        spec.setdefault("revisionHistoryLimit", 10)
    if kind == "Deployment":
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("progressDeadlineSeconds", 600)
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
    elif kind == "DaemonSet":
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", 1)


# Finalizers the StorageObjectInUseProtection admission plugin adds to every claim and volume.
PROTECTION = {"PersistentVolumeClaim": "kubernetes.io/pvc-protection", "PersistentVolume": "kubernetes.io/pv-protection"}


def prepare_create(kind: str, obj: dict[str, Any], status_subresource: bool) -> None:
    """Defaults and the status a new object of a built-in kind gets."""
    if status_subresource and kind not in STATUS_ON_CREATE:
        obj.pop("status", None)
    name = obj["metadata"]["name"]
    if kind == "Namespace":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif kind == "Pod":
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}
    elif kind in ("PersistentVolumeClaim", "PersistentVolume"):
        obj["status"] = {"phase": "Pending"}
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if PROTECTION[kind] not in finalizers:
            finalizers.append(PROTECTION[kind])
    elif kind in APPS_KINDS:
        _apps_defaults(kind, obj)
    elif kind == "Secret":
        _secret(obj)
    elif kind == "Service":
        _service(obj, None)


def prepare_update(kind: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """What the API server keeps or derives when an object of a built-in kind is replaced."""
    if kind == "Namespace":
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
        new["spec"] = old.get("spec", {})  # spec.finalizers only change through /finalize
    elif kind == "Secret":
        _secret(new)
    elif kind == "Service":
        _service(new, old)
    elif kind == "Pod" and "status" in new:
        new["status"].setdefault("qosClass", _qos_class(new.get("spec") or {}))
    elif kind in APPS_KINDS:
        _apps_defaults(kind, new)
