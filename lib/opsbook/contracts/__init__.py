"""Public contracts that the product and the sandbox are both held to, shipped as package data.

- `velero/`: Velero's CustomResourceDefinitions (Backup, Restore, Schedule, BackupStorageLocation);
- `kubernetes/`: the Kubernetes API server's OpenAPI v2 spec (`swagger.json`);
- `datadog/`: Datadog's public API v1 OpenAPI spec (`openapi-v1.yaml`).

Each folder keeps the upstream `VERSION` file and a `SOURCE.md` saying where the files came
from and how to refresh them. New versions arrive in `../shared/contracts/` beside the
checkout; `tests/unit/test_contracts.py` fails until the copies here are refreshed to match.

A neutral module: it belongs to neither the product nor the sandbox, and imports nothing of
opsbook but its errors.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from opsbook.errors import OpsbookError

CONTRACTS = ("velero", "kubernetes", "datadog")
PROVENANCE = ("VERSION", "SOURCE.md")  # in every contract folder, beside the contract's own files


def contracts_root() -> Path:
    """The folder holding the vendored contracts (opsbook is installed as files, never zipped)."""
    return Path(str(resources.files(__name__)))


def contract_dir(name: str) -> Path:
    if name not in CONTRACTS:
        raise OpsbookError(f"no vendored contract {name!r}; the contracts are: {', '.join(CONTRACTS)}")
    return contracts_root() / name


def contract_path(name: str, file: str) -> Path:
    """One file of a vendored contract, e.g. `contract_path("datadog", "openapi-v1.yaml")`."""
    path = contract_dir(name) / file
    if not path.is_file():
        have = ", ".join(p.name for p in sorted(path.parent.glob("*"))) or "nothing"
        raise OpsbookError(f"the {name} contract has no file {file!r} in {path.parent} (it has: {have}); "
                           "if it has nothing, opsbook was installed without its package data: reinstall it")
    return path


def contract_files(name: str, pattern: str = "*") -> list[Path]:
    """A contract's own files matching `pattern` (not VERSION or SOURCE.md), sorted by name."""
    return sorted(p for p in contract_dir(name).glob(pattern) if p.is_file() and p.name not in PROVENANCE)
