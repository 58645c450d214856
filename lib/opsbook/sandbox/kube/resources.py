"""The kinds the emulator serves: built-in types and those installed by CRDs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    # openAPIV3Schema of a CRD version (None for built-in kinds: they are typed by the client)
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    crd: bool = False
    # served by a computed view instead of the store (metrics.k8s.io)
    virtual: bool = False
    # subresources besides status: "scale" (autoscaling/v1 Scale), "log" (text), "finalize"
    subresources: tuple[str, ...] = ()
    # a CRD version's additionalPrinterColumns (what its Table rows show)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Store key: group and plural (one storage per kind, whatever the version)."""
        return f"{self.group}/{self.plural}"

    @property
    def group_resource(self) -> str:
        """`pods`, `deployments.apps`, `backups.velero.io`: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def discovery(self) -> list[dict[str, Any]]:
        """APIResource entries (the resource and its status subresource)."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.status_subresource:
            entries.append(self._subresource("status", self.kind, ["get", "patch", "update"]))
        for sub in self.subresources:
            entries.append(SUBRESOURCES[sub](self))
        return entries

    def _subresource(self, name: str, kind: str, verbs: list[str], **extra: str) -> dict[str, Any]:
        return {"name": f"{self.plural}/{name}", "singularName": "", "namespaced": self.namespaced, "kind": kind,
                "verbs": verbs, **extra}


# Discovery entries of the subresources besides status (as the API server lists them).
SUBRESOURCES = {
    "scale": lambda t: t._subresource("scale", "Scale", ["get", "patch", "update"], group="autoscaling",
                                      version="v1"),
    "log": lambda t: t._subresource("log", t.kind, ["get"]),
    "finalize": lambda t: t._subresource("finalize", t.kind, ["update"]),
}


def _core(plural: str, kind: str, namespaced: bool = True, short: tuple[str, ...] = (), status: bool = False,
          categories: tuple[str, ...] = (), subresources: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType("", "v1", plural, kind.lower(), kind, namespaced, short, status, categories=categories,
                        subresources=subresources)


def _apps(plural: str, kind: str, short: tuple[str, ...], subresources: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType("apps", "v1", plural, kind.lower(), kind, True, short, True, categories=("all",),
                        subresources=subresources)


BUILTIN: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", namespaced=False, short=("ns",), status=True, subresources=("finalize",)),
    _core("nodes", "Node", namespaced=False, short=("no",), status=True),
    _core("pods", "Pod", short=("po",), status=True, categories=("all",), subresources=("log",)),
    _core("services", "Service", short=("svc",), status=True, categories=("all",)),
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core("secrets", "Secret"),
    _core("serviceaccounts", "ServiceAccount", short=("sa",)),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _core("persistentvolumes", "PersistentVolume", namespaced=False, short=("pv",), status=True),
    _core("events", "Event", short=("ev",)),
    _apps("deployments", "Deployment", ("deploy",), ("scale",)),
    _apps("statefulsets", "StatefulSet", ("sts",), ("scale",)),
    _apps("daemonsets", "DaemonSet", ("ds",)),
    _apps("replicasets", "ReplicaSet", ("rs",), ("scale",)),
    ResourceType("batch", "v1", "jobs", "job", "Job", True, (), True, categories=("all",)),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", False, ("sc",)),
    ResourceType(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
        "CustomResourceDefinition", False, ("crd", "crds"), True,
    ),
    ResourceType("metrics.k8s.io", "v1beta1", "pods", "", "PodMetrics", True, verbs=READ_VERBS, virtual=True),
    ResourceType("metrics.k8s.io", "v1beta1", "nodes", "", "NodeMetrics", False, verbs=READ_VERBS, virtual=True),
)


class Registry:
    """Lookup of served kinds by group/version/plural; CRDs come and go at run time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTIN:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        with self._lock:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove_group_resource(self, group: str, plural: str) -> None:
        with self._lock:
            for key in [k for k in self._types if k[0] == group and k[2] == plural]:
                del self._types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_key(self, key: str) -> list[ResourceType]:
        with self._lock:
            return [t for t in self._types.values() if t.key == key]

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions (first one preferred), core group excluded."""
        out: dict[str, list[str]] = {}
        for rtype in self.all():
            if rtype.group and rtype.version not in out.setdefault(rtype.group, []):
                out[rtype.group].append(rtype.version)
        return out

    def in_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self.all() if t.group == group and t.version == version]
