"""Clients from params: the role session named after the run id, secrets from SSM."""

from __future__ import annotations

from pathlib import Path

import yaml
from opsbook.clients import Env
from opsbook.params import load_params

ROOT = Path(__file__).resolve().parents[2]


def test_every_aws_call_uses_a_role_session_named_after_the_run(sandbox, tmp_path: Path) -> None:
    file = tmp_path / "with-role.yaml"
    role = "arn:aws:iam::123456789012:role/opsbook-operator"
    file.write_text(yaml.safe_dump({"extends": str(ROOT / "params/sandbox.yaml"), "aws": {"role_arn": role}}))
    params = load_params(file)
    assert params.env == "sandbox"  # same sandbox, only the access differs
    env = Env(params=params, run_id="r0ad1e57")
    identity = env.check_credentials()
    assert identity["arn"] == "arn:aws:sts::123456789012:assumed-role/opsbook-operator/opsbook-r0ad1e57"
    # clients for other services go through the same role session
    creds = env.aws("s3")._request_signer._credentials.get_frozen_credentials()
    base = env._base_session.get_credentials().get_frozen_credentials()
    assert creds.access_key != base.access_key


def test_without_a_role_calls_use_the_callers_identity(sandbox_env: Env) -> None:
    assert ":assumed-role/" not in sandbox_env.check_credentials()["arn"]


def test_ssm_secret_is_wrapped(sandbox_env: Env) -> None:
    name = sandbox_env.params.rds[0].password_ssm
    secret = sandbox_env.ssm_secret(name)
    raw = sandbox_env.aws("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    assert secret.reveal() == raw and raw not in repr(secret)
