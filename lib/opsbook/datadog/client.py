"""The Datadog API client for one environment (the official `datadog-api-client`).

Where it points, first found wins:
  1. `DD_HOST`, a full API URL (the variable Datadog's Terraform provider reads for its
     `api_url`; the sandbox exports it for its emulator),
  2. params `datadog.api_host` (a URL or a bare host name, https assumed),
  3. `https://api.<site>` with the site from `DD_SITE` (what the client itself honours)
     or params `datadog.site`.
Keys: from SSM when params name them (`datadog.api_key_ssm`, `app_key_ssm`), so one
environment's keys never reach another's API by accident; otherwise `DD_API_KEY` and
`DD_APP_KEY`. Key values stay inside the client: nothing here prints or records them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from opsbook.clients import Env
from opsbook.errors import CredentialsError, OpsbookError
from opsbook.params import Params
from opsbook.secrets import Secret

HOST_ENV = "DD_HOST"
SITE_ENV = "DD_SITE"
KEY_ENVS = {"api": "DD_API_KEY", "app": "DD_APP_KEY"}
T = TypeVar("T")


def configured(params: Params) -> bool:
    """True when params (SSM names) or the environment give both Datadog keys."""
    dd = params.datadog
    return bool(dd.api_key_ssm or os.environ.get(KEY_ENVS["api"])) and bool(
        dd.app_key_ssm or os.environ.get(KEY_ENVS["app"]))


def resolve_host(env: Env) -> str:
    """The API base URL for this environment (see the module docstring for the order)."""
    if url := os.environ.get(HOST_ENV, "").strip():
        return url.rstrip("/")
    if host := env.params.datadog.api_host:
        return host.rstrip("/") if "://" in host else f"https://{host.rstrip('/')}"
    site = os.environ.get(SITE_ENV, "").strip() or env.params.datadog.site
    return f"https://api.{site}"


def _key(env: Env, kind: str) -> tuple[Secret, str]:
    """One key and where it came from (an SSM name or an env var name, never the value)."""
    ssm_name = getattr(env.params.datadog, f"{kind}_key_ssm")
    if ssm_name:
        return env.ssm_secret(ssm_name), f"ssm:{ssm_name}"
    var = KEY_ENVS[kind]
    if value := os.environ.get(var):
        return Secret(value, name=var), f"env:{var}"
    raise CredentialsError(
        f"no Datadog {kind} key for environment {env.name!r}: params datadog.{kind}_key_ssm is not set "
        f"and {var} is not in the environment",
        remedy=f"name its SSM parameter in params (datadog.{kind}_key_ssm in {env.params.source}) or export {var}",
    )


@dataclass
class Datadog:
    """An API client for one environment, and the calls' error handling."""

    env: Env = field(repr=False)
    host: str
    key_sources: dict[str, str]
    api: ApiClient = field(repr=False)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one API call; failures become opsbook errors that say what to do."""
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            detail = _error_text(exc.body)
            if exc.status in (401, 403):
                raise CredentialsError(
                    f"Datadog at {self.host} refused the keys while trying to {what} (HTTP {exc.status}). "
                    f"Keys used: {self.key_sources['api']} and {self.key_sources['app']}",
                    remedy="check that the keys belong to this site and organisation and that the application "
                           "key has the scope needed",
                ) from None
            raise OpsbookError(f"Datadog could not {what}: HTTP {exc.status} {detail}") from None
        except (HTTPError, OSError) as exc:
            raise OpsbookError(
                f"Datadog at {self.host} is unreachable while trying to {what}: {exc}",
                remedy=f"check the network, and {HOST_ENV} / datadog.site in {self.env.params.source}",
            ) from None

    def __enter__(self) -> Datadog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e) for e in body["errors"])
    return str(body or "")[:500]


def connect(env: Env) -> Datadog:
    """A client for `env`: host and keys resolved, keys checked before anything else."""
    from datadog_api_client.v1.api.authentication_api import AuthenticationApi

    host = resolve_host(env)
    (api_key, api_from), (app_key, app_from) = _key(env, "api"), _key(env, "app")
    config = Configuration(host=host, request_timeout=60, enable_retry=True)
    config.api_key["apiKeyAuth"] = api_key.reveal()
    config.api_key["appKeyAuth"] = app_key.reveal()
    dd = Datadog(env=env, host=host, key_sources={"api": api_from, "app": app_from}, api=ApiClient(config))
    dd.call("validate the API key", AuthenticationApi(dd.api).validate)
    return dd
