"""The emulator as a sandbox service: which keys it accepts, depending on params and SSM."""

from __future__ import annotations

import os

import requests
from opsbook.sandbox.core import SANDBOX_CREDENTIALS, SandboxContext
from opsbook.sandbox.datadog.contract import ResponseLog, load_contract
from opsbook.sandbox.datadog.service import DatadogService


def start(params, tmp_path, env: dict) -> tuple[DatadogService, dict, ResponseLog]:
    service = DatadogService()
    log = ResponseLog()
    service.observers.append(log)
    exported = service.start(SandboxContext(params=params, state_dir=tmp_path, env=env))
    return service, exported, log


def without_ssm_names(params):
    return params.model_copy(update={"datadog": params.datadog.model_copy(
        update={"api_key_ssm": None, "app_key_ssm": None})})


def test_keys_not_kept_in_ssm_are_made_up_and_exported(sandbox_params, tmp_path) -> None:
    service, exported, log = start(without_ssm_names(sandbox_params), tmp_path, {})
    try:
        assert set(exported) == {"DD_HOST", "DD_API_KEY", "DD_APP_KEY"}
        url = exported["DD_HOST"] + "/api/v1/monitor"
        keys = {"DD-API-KEY": exported["DD_API_KEY"], "DD-APPLICATION-KEY": exported["DD_APP_KEY"]}
        assert requests.get(url, headers=keys, timeout=10).status_code == 200
        assert requests.get(url, headers={**keys, "DD-API-KEY": "guess"}, timeout=10).status_code == 403
        assert log.problems(load_contract()) == [] and len(log.responses) == 2
    finally:
        service.stop()


def test_a_key_missing_from_ssm_means_no_key_works(sandbox, sandbox_params, tmp_path) -> None:
    datadog = sandbox_params.datadog.model_copy(update={"app_key_ssm": "/smsapi/sandbox/datadog/not-seeded"})
    env = {**SANDBOX_CREDENTIALS, "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]}
    service, exported, log = start(sandbox_params.model_copy(update={"datadog": datadog}), tmp_path, env)
    try:
        assert set(exported) == {"DD_HOST"}  # nothing made up for clients to use
        import boto3

        api_key = boto3.client("ssm", region_name=sandbox_params.region).get_parameter(
            Name=sandbox_params.datadog.api_key_ssm, WithDecryption=True)["Parameter"]["Value"]
        url = exported["DD_HOST"]
        assert requests.get(url + "/api/v1/validate", headers={"DD-API-KEY": api_key}, timeout=10).status_code == 200
        refused = requests.get(url + "/api/v1/monitor", headers={"DD-API-KEY": api_key, "DD-APPLICATION-KEY": ""},
                               timeout=10)
        assert refused.status_code == 403
        assert log.problems(load_contract()) == []
    finally:
        service.stop()
