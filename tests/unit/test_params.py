"""Params: every environment validates; bad params fail naming file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from opsbook.cli import app
from opsbook.errors import ParamsError
from opsbook.params import env_names, load_params, read_merged, resolve_file
from typer.testing import CliRunner

BAD = sorted((Path(__file__).parent / "bad_params").glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    match = re.match(r"# expect: (.+?) \| (.+)$", first)
    assert match, f"{path.name}: first line must be '# expect: <field> | <text>'"
    return match.group(1), match.group(2)


@pytest.mark.parametrize("env", env_names())
def test_every_environment_validates(env: str) -> None:
    params = load_params(env)
    assert params.env == env
    assert len(params.network.azs) == len(params.network.private_subnets)


def test_at_least_ten_bad_cases() -> None:
    assert len(BAD) >= 10


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_params_exit_2_naming_the_field(path: Path) -> None:
    field, text = _expectation(path)
    result = CliRunner().invoke(app, ["params", "check", str(path)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # rich wraps long lines
    assert path.name in message.replace(" ", "") or path.name in message
    assert field in message, message
    assert text in message, message


def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    base = resolve_file("sandbox")
    child.write_text(yaml.safe_dump({
        "extends": str(base), "env": "child",
        "network": {"vpn": {"office_cidrs": ["10.99.0.0/16"]}},
        "eks": {"cluster_name": "other"},
    }))
    params, parent = load_params(child), load_params("sandbox")
    assert params.eks.cluster_name == "other"
    assert params.eks.node_groups == parent.eks.node_groups  # sibling keys kept
    assert params.network.vpn.office_cidrs == ["10.99.0.0/16"]  # list replaced, not appended
    assert params.network.vpn.customer_gateway_ip == parent.network.vpn.customer_gateway_ip
    _, chain = read_merged(child)
    assert [p.name for p in chain] == ["child.yaml", "sandbox.yaml", "base-pl.yaml"]


def test_secrets_are_named_by_ssm_only() -> None:
    """No params file carries a secret value: anything secret-looking is an SSM name."""
    for env in env_names():
        data, _ = read_merged(resolve_file(env))
        for key, value in _walk(data):
            if re.search(r"password|secret|api_?key|app_?key|token", key, re.I):
                assert isinstance(value, str) and value.startswith("/"), f"{env}: {key}={value!r}"


def _walk(data, prefix=""):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk(v, f"{prefix}{k}.")
            if not isinstance(v, dict | list):
                yield f"{prefix}{k}", v
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk(v, f"{prefix}{i}.")


def test_unknown_env_lists_known_ones() -> None:
    with pytest.raises(ParamsError, match="known envs: .*sandbox"):
        load_params("prod-de")
