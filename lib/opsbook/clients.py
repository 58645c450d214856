"""Clients for one environment, made from its params and the standard mechanisms.

AWS endpoints come from boto3's own `AWS_ENDPOINT_URL[_<SERVICE>]`, Kubernetes from a
kubeconfig, so the same code serves production and the sandbox. When params name a
role, every AWS call of a run goes through a role session named after the run id, so
CloudTrail entries lead back to the run.
"""

from __future__ import annotations

import functools
import os
import secrets as _random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from opsbook.errors import CredentialsError, EndpointError, OpsbookError
from opsbook.params import Params, load_params
from opsbook.secrets import Secret

RUN_ID_ENV = "OPSBOOK_RUN_ID"
BOTO_CONFIG = botocore.config.Config(
    retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _raise_on_5xx(http_response: Any, model: Any, region: str = "?", **_: Any) -> None:
    """botocore `after-call` handler (after retries): a 5xx becomes an explained EndpointError.

    An endpoint that fails or does not implement an action answers HTTP 500 with an HTML
    page, which botocore would otherwise hand over as an unreadable ClientError.
    """
    status = getattr(http_response, "status_code", 200)
    if status < 500:
        return
    service = model.service_model.service_id
    raise EndpointError(
        f"{service} answered HTTP {status} to {model.name} in {region} (after retries): the endpoint "
        "failed or does not implement this action",
        remedy="against AWS, retry later or check the AWS Health Dashboard; against an emulator "
               "(AWS_ENDPOINT_URL), the action needs implementing there",
    )


def new_run_id() -> str:
    return _random.token_hex(4)


def current_run_id() -> str:
    """The run id the runner exported, or a new one kept for this process."""
    if not os.environ.get(RUN_ID_ENV):
        os.environ[RUN_ID_ENV] = new_run_id()
    return os.environ[RUN_ID_ENV]


CREDENTIALS_HELP = (
    "provide them the standard way: `aws sso login --profile NAME` then AWS_PROFILE=NAME, "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, "
    "or params `aws.profile`; for a local try-out use --env sandbox"
)


def _role_session(base: boto3.Session, role_arn: str, session_name: str, external_id: str | None) -> boto3.Session:
    """A session whose credentials come from (and refresh through) sts:AssumeRole."""
    sts = base.client("sts", config=BOTO_CONFIG)

    def fetch() -> dict[str, str]:
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
        if external_id:
            kwargs["ExternalId"] = external_id
        creds = sts.assume_role(**kwargs)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    refreshable = botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    core = botocore.session.get_session()
    core._credentials = refreshable  # the documented way boto3 users wire refreshable creds
    return boto3.Session(botocore_session=core, region_name=base.region_name)


@dataclass
class Env:
    """One environment opened for a run: params, run id, and its clients."""

    params: Params
    run_id: str = field(default_factory=current_run_id)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.params.env

    @property
    def role_session_name(self) -> str:
        return f"opsbook-{self.run_id}"

    @cached_property
    def _base_session(self) -> boto3.Session:
        try:
            session = boto3.Session(profile_name=self.params.aws.profile, region_name=self.params.region)
        except botocore.exceptions.ProfileNotFound as exc:
            raise CredentialsError(f"{self.params.source}: field 'aws.profile': {exc}",
                                   remedy=CREDENTIALS_HELP) from None
        if session.get_credentials() is None:
            raise CredentialsError(
                f"AWS credentials are missing for environment {self.name!r}: none found in the "
                f"environment, the shared config files or instance metadata", remedy=CREDENTIALS_HELP
            )
        return session

    @cached_property
    def session(self) -> boto3.Session:
        """The boto3 session every AWS call of this run uses (role assumed when set)."""
        base = self._base_session
        role = self.params.aws.role_arn
        if not role:
            return base
        try:
            return _role_session(base, role, self.role_session_name, self.params.aws.external_id)
        except botocore.exceptions.ClientError as exc:
            raise CredentialsError(
                f"could not assume role {role} for environment {self.name!r}: {exc}",
                remedy="check that your identity may assume it (sts:AssumeRole) and that the role's trust "
                       "policy lets it",
            ) from None

    def check_credentials(self) -> dict[str, str]:
        """Who the run acts as (sts:GetCallerIdentity); raises CredentialsError if nobody."""
        try:
            ident = self.aws("sts").get_caller_identity()
        except (botocore.exceptions.NoCredentialsError, botocore.exceptions.ClientError) as exc:
            raise CredentialsError(f"AWS credentials for {self.name!r} do not work: {exc}",
                                   remedy=CREDENTIALS_HELP) from None
        return {"account": ident["Account"], "arn": ident["Arn"]}

    def aws(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for `service` in `region` (default: the env's region)."""
        region = region or self.params.region
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                client = self.session.client(service, region_name=region, config=BOTO_CONFIG)
                client.meta.events.register("after-call", functools.partial(_raise_on_5xx, region=region))
                self._clients[key] = client
            return self._clients[key]

    @cached_property
    def kube(self) -> Any:
        """A kubernetes ApiClient from KUBECONFIG (or ~/.kube/config)."""
        from kubernetes import config

        path = os.environ.get("KUBECONFIG")
        try:
            return config.new_client_from_config(config_file=path)
        except config.ConfigException as exc:
            raise OpsbookError(
                f"no usable kubeconfig for environment {self.name!r} ({path or '~/.kube/config'}): {exc}",
                remedy=f"run `aws eks update-kubeconfig --name {self.params.eks.cluster_name} --region "
                       f"{self.params.region}`, or set KUBECONFIG to a kubeconfig for that cluster",
            ) from None

    def ssm_secret(self, name: str) -> Secret:
        """A SecureString's value, wrapped so it never prints or records in clear."""
        ssm = self.aws("ssm")
        try:
            value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            raise OpsbookError(
                f"SSM parameter {name} does not exist in {self.params.region} for {self.name!r}",
                remedy="create it (runbooks/ssm-parameter-sync can copy it from another env or region) or fix "
                       f"the name in {self.params.source}",
            ) from None
        return Secret(value, name=name)

    def now(self) -> datetime:
        return datetime.now(UTC)


def open_env(env: str | Params, run_id: str | None = None) -> Env:
    """Validate params and open the environment; for a sandbox env, make sure it runs."""
    params = env if isinstance(env, Params) else load_params(env)
    from opsbook.sandbox.attach import ensure_reachable

    ensure_reachable(params)
    return Env(params=params, run_id=run_id or current_run_id())
