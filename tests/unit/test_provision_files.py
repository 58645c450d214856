"""Generated files as plan rows: HCL round trips, per-setting actions, whole-file rows."""

from __future__ import annotations

import pytest
from opsbook.errors import OpsbookError
from opsbook.params import load_params
from opsbook.provision import files

TFVARS = {
    "region": "eu-west-1",
    "azs": ["eu-west-1a", "eu-west-1b"],
    "quoted": 'he said "hi"',
    "nat_gateway_per_az": True,
    "vpn_bgp_asn": 65000,
    "node_groups": {"general": {"instance_type": "m6i.large", "min_size": 3}},
}


def test_hcl_round_trip(tmp_path) -> None:
    path = files.write_text(tmp_path / "terraform.tfvars", files.to_hcl(TFVARS))
    assert files.read_hcl(path) == TFVARS
    assert 'region = "eu-west-1"' in path.read_text()


def test_backend_block_is_terraform_syntax(tmp_path) -> None:
    settings = {"bucket": "state-b", "key": "env/r/terraform.tfstate", "encrypt": True}
    text = files.backend_hcl(settings)
    assert text.startswith("terraform {") and 'backend "s3" {' in text
    assert files.backend_settings(files.write_text(tmp_path / "backend.tf", text)) == settings


def test_a_hand_written_file_with_comments_parses(tmp_path) -> None:
    path = tmp_path / "backend.tf"
    path.write_text('# keep me\nterraform {\n  backend "s3" {\n    bucket = "x" # here\n  }\n}\n')
    assert files.backend_settings(path) == {"bucket": "x"}
    path.write_text('terraform {\n  required_version = ">= 1.5"\n}\n')
    assert files.backend_settings(path) is None


def test_invalid_hcl_names_the_file(tmp_path) -> None:
    path = tmp_path / "terraform.tfvars"
    path.write_text("region = = \n")
    with pytest.raises(OpsbookError, match=str(path)):
        files.read_hcl(path)


def test_setting_rows_create_update_noop() -> None:
    writes: list[int] = []
    desired = {"a": 1, "b": {"c": [1, 2]}, "d": "x"}
    rows = files.setting_rows("f", None, desired, lambda: writes.append(1))
    assert [(r.attribute, r.action) for r in rows] == [("a", "create"), ("b.c", "create"), ("d", "create")]
    rows = files.setting_rows("f", {"a": 1, "b": {"c": [2, 1]}, "extra": 5}, desired, lambda: None)
    assert [(r.attribute, r.action) for r in rows] == [("a", "no-op"), ("b.c", "update"), ("d", "create")]
    assert rows[1].current == [2, 1] and rows[1].desired == [1, 2]


def test_file_row_names_what_differs() -> None:
    want = {"x": {"y": 1, "z": 2}}
    assert files.file_row("f", "v", None, want, lambda: None).action == "create"
    assert files.file_row("f", "v", {"x": {"y": 1, "z": 2}}, want, lambda: None).action == "no-op"
    row = files.file_row("f", "v", {"x": {"y": 1, "z": 3}, "w": 0}, want, lambda: None)
    assert row.action == "update" and row.current == "differs at: w, x.z"


def test_default_output_dir_is_under_runs() -> None:
    params = load_params("sandbox")
    path = files.output_dir(params, "", "eu-west-1")
    assert path.parts[-4:] == ("runs", "sandbox", "generated", "eu-west-1")
    assert files.output_dir(params, "/tmp/x", "eu-west-1").as_posix() == "/tmp/x"
