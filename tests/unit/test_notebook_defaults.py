"""Notebook defaults come from params, not literals; drills default to the first target of their kind.

A parameter default that names an estate object (of any params file here, or of generated
estates) fails; an empty default means "the first of the right kind in params".
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from opsbook.drills.rds import target_instance
from opsbook.errors import ParamsError, UsageError
from opsbook.params import Params, env_names, load_params
from opsbook.sandbox.estates import write_estate

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted([*ROOT.glob("runbooks/*.ipynb"), *ROOT.glob("notebooks/*.ipynb")])


def estate_names(params: Params) -> set[str]:
    """The names of the estate's objects: what a default must not spell out."""
    names = {params.env, params.region, *params.other_regions, *params.network.azs, params.eks.cluster_name,
             params.lock_table, params.trail_name, params.zones.public, params.zones.private,
             *params.buckets.model_dump().values(), *params.kms.model_dump().values(), params.ssm.prefix,
             *params.ssm.required, *params.cost.region_model.target_regions, *(b.name for b in params.cost.budgets)}
    for group in params.eks.node_groups:
        names |= {group.name, group.instance_type}
    for db in params.rds:
        names |= {db.identifier, db.database, db.username, db.instance_class, db.password_ssm, *db.tables}
    for ns in params.namespaces:
        names |= {ns.name, ns.team, *ns.deployments, *(w.name for w in ns.stateful)}
    names |= {c.domain for c in params.certificates}
    return {n for n in names if n}


def literal_defaults(source: str) -> dict[str, list[str]]:
    """parameter -> the strings its default spells out (a string, or the strings of a list)."""
    out: dict[str, list[str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            out[node.targets[0].id] = [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return out


def parameters_cell(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))


def offending(source: str, names: set[str]) -> list[str]:
    return [f"{key} = {value!r}" for key, values in literal_defaults(source).items() if key != "env"
            for value in values if value in names]


@pytest.fixture(scope="module")
def names(tmp_path_factory) -> set[str]:
    folder = tmp_path_factory.mktemp("estates")
    every = [load_params(env) for env in env_names()] + [load_params(write_estate(s, folder)) for s in (1, 2, 3)]
    return set().union(*(estate_names(p) for p in every))


def test_the_check_finds_a_default_naming_an_estate_object(names) -> None:
    sandbox = load_params("sandbox")
    cell = (f'env = "sandbox"\nnamespace = "{sandbox.namespaces[0].name}"  # a literal\n'
            f'regions = ["{sandbox.cost.region_model.target_regions[0]}"]\nmonth = ""\n')
    assert len(offending(cell, names)) == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_default_names_an_estate_object(path: Path, names) -> None:
    assert offending(parameters_cell(path), names) == [], f"{path.name}: defaults must come from params"


def _with_rds(params: Params, *specs: tuple[bool, int]) -> Params:
    base = params.rds[0]
    rds = [base.model_copy(update={"identifier": f"db{i}", "multi_az": multi, "backup_retention_days": days})
           for i, (multi, days) in enumerate(specs)]
    return params.model_copy(update={"rds": rds})


def test_rds_drills_default_to_the_first_instance_they_can_run_on() -> None:
    params = _with_rds(load_params("sandbox"), (False, 7), (True, 0), (True, 7))
    assert target_instance(params).identifier == "db2"  # snapshot and PITR: Multi-AZ with backups
    assert target_instance(params, needs_backups=False).identifier == "db1"  # failover: Multi-AZ
    assert target_instance(params, "db0").identifier == "db0"  # named: as given, preflight judges it
    with pytest.raises(ParamsError, match="no RDS instance 'nope'"):
        target_instance(params, "nope")
    with pytest.raises(UsageError, match="Multi-AZ with backups") as err:
        target_instance(_with_rds(params, (False, 7), (True, 0)))
    assert "instance=" in (err.value.remedy or "")
