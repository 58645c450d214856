"""CustomResourceDefinitions: the bundled Velero CRDs, and the kinds a CRD object serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from opsbook.contracts import contract_files
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.resources import ResourceType

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The emulator's own CRDs, for the Velero kinds the contract lacks (opsbook.velero-extra.yaml);
# Velero's own CRDs are the vendored contract (opsbook.contracts, velero/).
CRD_DIR = Path(__file__).with_name("crds")


def crd_files() -> list[Path]:
    """The files of every CRD the emulator serves: Velero's (the contract) and ours, by file name."""
    return sorted([*contract_files("velero", "*.yaml"), *CRD_DIR.glob("*.yaml")], key=lambda p: p.name)


def bundled_crds() -> list[dict[str, Any]]:
    """Every CRD shipped with the emulator (Velero's, and ours for the kinds the contract lacks)."""
    crds = []
    for path in crd_files():
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if doc:
                crds.append(doc)
    return crds


def check_crd(crd: dict[str, Any]) -> list[dict[str, str]]:
    """Validation causes for a CRD object (the fields the emulator relies on)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = []

    def need(ok: bool, field: str, message: str = "Required value") -> None:
        if not ok:
            causes.append({"reason": "FieldValueRequired" if message == "Required value" else "FieldValueInvalid",
                           "message": message, "field": field})

    need(bool(spec.get("group")), "spec.group")
    need(bool(names.get("plural")), "spec.names.plural")
    need(bool(names.get("kind")), "spec.names.kind")
    need(spec.get("scope") in ("Namespaced", "Cluster"), "spec.scope",
         f"Unsupported value: {spec.get('scope')!r}: supported values: \"Cluster\", \"Namespaced\"")
    need(bool(spec.get("versions")), "spec.versions")
    expected = f"{names.get('plural')}.{spec.get('group')}"
    name = (crd.get("metadata") or {}).get("name")
    need(name == expected, "metadata.name", f"Invalid value: {name!r}: must be spec.names.plural+\".\"+spec.group")
    for i, version in enumerate(spec.get("versions") or []):
        need(bool(version.get("name")), f"spec.versions[{i}].name")
        need(bool((version.get("schema") or {}).get("openAPIV3Schema")), f"spec.versions[{i}].schema.openAPIV3Schema")
    return causes


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CRD."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                status_subresource="status" in (version.get("subresources") or {}),
                categories=tuple(names.get("categories") or ()),
                schema=version["schema"]["openAPIV3Schema"],
                crd=True,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            )
        )
    if not out:
        raise ApiError(422, f"CustomResourceDefinition {crd['metadata']['name']!r} serves no version")
    return out


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status the apiextensions controller gives an accepted CRD."""
    spec = crd["spec"]
    storage = [v["name"] for v in spec["versions"] if v.get("storage")] or [spec["versions"][0]["name"]]
    return {
        "acceptedNames": dict(spec["names"]),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": storage,
    }
