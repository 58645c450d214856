"""The vendored public contracts (lib/opsbook/contracts/): complete, parseable, traceable, current.

New versions of the contracts arrive in `../shared/contracts/` beside the checkout. When that
folder is there, every file in it must have a byte-identical vendored copy (and nothing vendored
may have gone from it). Whether it is there or not (a clone on its own, CI), the vendored files
are checked on their own: each contract folder has its VERSION and SOURCE.md, each file is the
one SOURCE.md records from upstream (by git blob id), and each parses as what it claims to be.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from opsbook.contracts import (
    CONTRACTS,
    PROVENANCE,
    contract_dir,
    contract_files,
    contract_path,
    contracts_root,
)
from opsbook.errors import OpsbookError

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "contracts"
VENDORED = contracts_root()
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REFRESH = ("refresh the vendored copy as lib/opsbook/contracts/<contract>/SOURCE.md says under 'Refreshing' "
           "(a new contract: a folder of its own with VERSION and SOURCE.md, and its name in "
           "opsbook.contracts.CONTRACTS)")


def git_blob(data: bytes) -> str:
    """The id git gives a file's content (`git hash-object`), the same upstream and here."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def drift(shared: Path, vendored: Path) -> list[str]:
    """How the vendored copies differ from the contracts in `shared` ([] when in step)."""
    problems = []
    for source in sorted(p for p in shared.rglob("*") if p.is_file()):
        name = source.relative_to(shared)
        copy = vendored / name
        if not copy.is_file():
            problems.append(f"{name}: new in {shared}, no vendored copy")
        elif copy.read_bytes() != source.read_bytes():
            problems.append(f"{name}: changed in {shared}, the vendored copy is the old one")
    for folder in sorted(p for p in vendored.iterdir() if p.is_dir() and p.name != "__pycache__"):
        for copy in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SOURCE.md"):
            name = copy.relative_to(vendored)
            if not (shared / name).is_file():
                problems.append(f"{name}: vendored, but no longer in {shared}")
    return problems


def provenance(folder: Path) -> list[str]:
    """What a vendored contract folder lacks: VERSION, SOURCE.md, and each file's blob id recorded there."""
    problems = [f"{folder.name}/{name}: missing" for name in PROVENANCE if not (folder / name).is_file()]
    if problems:
        return problems
    if not (folder / "VERSION").read_text().strip():
        problems.append(f"{folder.name}/VERSION: empty")
    source = (folder / "SOURCE.md").read_text()
    recorded = dict(re.findall(r"^\|\s*`([^`]+)`\s*\|.*\|\s*`([0-9a-f]{40})`\s*\|\s*$", source, flags=re.M))
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name not in PROVENANCE)
    if not files:
        problems.append(f"{folder.name}/: no contract file")
    for path in files:
        blob = git_blob(path.read_bytes())
        if path.name not in recorded:
            problems.append(f"{folder.name}/{path.name}: not in the table of SOURCE.md")
        elif recorded[path.name] != blob:
            problems.append(f"{folder.name}/{path.name}: git blob {blob}, SOURCE.md records {recorded[path.name]}")
    problems += [f"{folder.name}/SOURCE.md: records {name}, which is not here" for name in recorded
                 if not (folder / name).is_file()]
    return problems


# --- the vendored copies against ../shared/contracts (when it is there) and on their own --------------


def test_vendored_contracts_are_current_and_traceable():
    vendored = sorted(p.name for p in VENDORED.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert vendored == sorted(CONTRACTS), "a contract folder that opsbook.contracts.CONTRACTS does not name"
    problems = [p for name in CONTRACTS for p in provenance(contract_dir(name))]
    if SHARED.is_dir():  # new versions arrive there: the vendored copies must be those, byte for byte
        problems += drift(SHARED, VENDORED)
    assert not problems, "the vendored contracts are not in step:\n" + "\n".join(problems) + f"\nTo fix: {REFRESH}"


def test_vendored_velero_crds_parse():
    files = contract_files("velero", "*.yaml")
    assert len(files) >= 4
    for path in files:
        [crd] = [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]
        assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == "velero.io", path.name
        assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"] == "object", path.name
    kinds = {yaml.load(p.read_text(), Loader=LOADER)["spec"]["names"]["kind"] for p in files}
    assert {"Backup", "Restore", "Schedule", "BackupStorageLocation"} <= kinds


def test_vendored_kubernetes_spec_parses():
    spec = json.loads(contract_path("kubernetes", "swagger.json").read_text())
    assert spec["swagger"] == "2.0"
    assert {"io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.PersistentVolumeClaim",
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"} <= set(spec["definitions"])
    assert "/api/v1/namespaces/{namespace}/pods" in spec["paths"]


def test_vendored_datadog_spec_parses():
    spec = yaml.load(contract_path("datadog", "openapi-v1.yaml").read_text(), Loader=LOADER)
    assert spec["openapi"].startswith("3.0")
    assert {"/api/v1/monitor", "/api/v1/events", "/api/v1/query"} <= set(spec["paths"])


def test_every_vendored_file_is_package_data():
    """pyproject's package-data globs take every vendored file into the wheel."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["opsbook"]
    package = VENDORED.parent
    shipped = {package / f for pattern in patterns for f in glob.glob(pattern, root_dir=package, recursive=True)}
    vendored = {p for p in VENDORED.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}
    assert vendored, "nothing vendored"
    assert not vendored - shipped, f"not in package-data: {sorted(str(p) for p in vendored - shipped)}"


# --- the checks above can fail -------------------------------------------------------------------------


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_drift_finds_a_new_a_changed_and_a_removed_contract_file(tmp_path):
    shared = _folder(tmp_path / "shared", {"velero/VERSION": b"v1\n", "velero/a.yaml": b"a: 1\n"})
    vendored = _folder(tmp_path / "vendored", {"velero/VERSION": b"v1\n", "velero/a.yaml": b"a: 1\n",
                                              "velero/SOURCE.md": b"# from upstream\n"})
    assert drift(shared, vendored) == []
    (shared / "velero" / "a.yaml").write_bytes(b"a: 2\n")
    _folder(shared, {"velero/b.yaml": b"b: 1\n", "rabbitmq/VERSION": b"4.0\n"})
    _folder(vendored, {"velero/old.yaml": b"old: 1\n"})
    problems = "\n".join(drift(shared, vendored))
    assert "velero/a.yaml: changed" in problems and "velero/b.yaml: new" in problems
    assert "rabbitmq/VERSION: new" in problems and "velero/old.yaml: vendored, but no longer" in problems


def test_provenance_finds_an_unrecorded_or_altered_file(tmp_path):
    data = b"kind: CustomResourceDefinition\n"
    table = f"| file | upstream path | git blob |\n|--|--|--|\n| `a.yaml` | `x/a.yaml` | `{git_blob(data)}` |\n"
    folder = _folder(tmp_path / "velero", {"VERSION": b"v1\n", "SOURCE.md": table.encode(), "a.yaml": data})
    assert provenance(folder) == []
    (folder / "a.yaml").write_bytes(data + b"# edited by hand\n")
    (folder / "b.yaml").write_bytes(data)
    problems = "\n".join(provenance(folder))
    assert "a.yaml: git blob" in problems and "b.yaml: not in the table" in problems
    (folder / "SOURCE.md").unlink()
    assert provenance(folder) == ["velero/SOURCE.md: missing"]


def test_git_blob_is_git_hash_object():
    assert git_blob(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob


def test_contract_path_names_what_exists():
    assert contract_path("velero", "VERSION").read_text().strip()
    with pytest.raises(OpsbookError, match="no vendored contract 'nope'.*velero"):
        contract_path("nope", "VERSION")
    with pytest.raises(OpsbookError, match="no file 'nope.yaml'.*velero.io_backups.yaml"):
        contract_path("velero", "nope.yaml")
