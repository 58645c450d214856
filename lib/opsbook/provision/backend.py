"""The Terraform state backend of an account and region, planned attribute by attribute.

Resources: a KMS key with rotation and an alias; the state bucket (versioning, SSE-KMS
with that key, public access block, a TLS-only bucket policy, expiry of noncurrent
versions); the lock table (`LockID` hash key, on-demand, point-in-time recovery, KMS
encryption); a CloudTrail trail with log file validation into a log bucket; and the
`backend "s3"` block Terraform needs, written to a file an engineer can commit.

Each attribute is one plan row, so drift (say, versioning suspended by hand) shows as
exactly that row, and applying twice changes nothing the second time. Existing bucket
policies and lifecycle rules are merged into, never replaced: only opsbook's statement
(Sid `DenyInsecureTransport`) and rule (ID `opsbook-expire-noncurrent-state`) are set.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
import pandas as pd

from opsbook.clients import Env, error_code
from opsbook.errors import OpsbookError
from opsbook.guard import Change, Plan, aws_tags, ownership_tags
from opsbook.params import Params
from opsbook.provision import files, naming

PURPOSE = "terraform-backend"
TLS_SID = "DenyInsecureTransport"
TRAIL_ACL_SID = "AWSCloudTrailAclCheck"
TRAIL_WRITE_SID = "AWSCloudTrailWrite"
LIFECYCLE_ID = "opsbook-expire-noncurrent-state"
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
BACKEND_FILE = "backend.tf"


@dataclass(frozen=True)
class BackendNames:
    """What the backend of one account and region is called."""

    account: str
    region: str
    partition: str
    kms_alias: str
    state_bucket: str
    lock_table: str
    trail: str
    log_bucket: str
    state_key: str

    @property
    def alias_arn(self) -> str:
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:{self.kms_alias}"

    @property
    def trail_arn(self) -> str:
        return f"arn:{self.partition}:cloudtrail:{self.region}:{self.account}:trail/{self.trail}"

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"resource": k, "name": v} for k, v in asdict(self).items()])


def backend_names(params: Params, region: str = "", state_key: str = "") -> BackendNames:
    region = naming.target_region(params, region)
    return BackendNames(
        account=params.account_id,
        region=region,
        partition=boto3.Session().get_partition_for_region(region),
        kms_alias=params.kms.terraform,
        state_bucket=naming.bucket(params, params.buckets.terraform_state, region),
        lock_table=params.lock_table,
        trail=naming.regional(params, params.trail_name, region),
        log_bucket=naming.bucket(params, params.buckets.logs, region),
        state_key=state_key or f"{params.env}/{region}/terraform.tfstate",
    )


def backend_settings(names: BackendNames) -> dict[str, Any]:
    """The `backend "s3"` settings for this account and region."""
    return {
        "bucket": names.state_bucket,
        "key": names.state_key,
        "region": names.region,
        "dynamodb_table": names.lock_table,
        "encrypt": True,
        "kms_key_id": names.alias_arn,
    }


def backend_block(names: BackendNames) -> str:
    return files.backend_hcl(backend_settings(names))


# --- desired documents ----------------------------------------------------------------------


def tls_only_statement(partition: str, bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def cloudtrail_statements(names: BackendNames) -> list[dict[str, Any]]:
    arn = f"arn:{names.partition}:s3:::{names.log_bucket}"
    principal = {"Service": "cloudtrail.amazonaws.com"}
    source = {"aws:SourceArn": names.trail_arn}
    return [
        {"Sid": TRAIL_ACL_SID, "Effect": "Allow", "Principal": principal, "Action": "s3:GetBucketAcl",
         "Resource": arn, "Condition": {"StringEquals": source}},
        {"Sid": TRAIL_WRITE_SID, "Effect": "Allow", "Principal": principal, "Action": "s3:PutObject",
         "Resource": f"{arn}/AWSLogs/{names.account}/*",
         "Condition": {"StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"}}},
    ]


def lifecycle_rule(noncurrent_days: int) -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }


def merged_policy(policy: dict[str, Any] | None, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An existing bucket policy with our statements put in (same Sid replaced)."""
    sids = {s["Sid"] for s in statements}
    kept = [s for s in (policy or {}).get("Statement", []) if s.get("Sid") not in sids]
    return {"Version": "2012-10-17", "Statement": kept + statements}


def _has_statements(policy: dict[str, Any] | None, statements: list[dict[str, Any]]) -> bool:
    have = {s.get("Sid"): s for s in (policy or {}).get("Statement", [])}
    return all(_same_statement(have.get(s["Sid"]), s) for s in statements)


def _same_statement(have: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    if have is None:
        return False

    def norm(value: Any) -> Any:  # AWS may return one-element lists as scalars and vice versa
        if isinstance(value, list):
            return sorted(json.dumps(norm(v), sort_keys=True) for v in value) if len(value) != 1 else norm(value[0])
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        return value

    return norm(have) == norm(want)


# --- reading the current state --------------------------------------------------------------


class _Reader:
    """Reads one region's backend resources; None where a resource or setting is absent."""

    def __init__(self, env: Env, names: BackendNames) -> None:
        self.names = names
        self.kms = env.aws("kms", names.region)
        self.s3 = env.aws("s3", names.region)
        self.ddb = env.aws("dynamodb", names.region)
        self.trails = env.aws("cloudtrail", names.region)

    def key(self) -> dict[str, Any] | None:
        try:
            meta = self.kms.describe_key(KeyId=self.names.kms_alias)["KeyMetadata"]
        except self.kms.exceptions.NotFoundException:
            return None
        if meta.get("KeyState") in ("PendingDeletion", "Disabled"):
            raise OpsbookError(
                f"KMS alias {self.names.kms_alias} in {self.names.region} points at key {meta['KeyId']} which is "
                f"{meta['KeyState']}",
                remedy="cancel its deletion / enable it, or point the alias at a usable key",
            )
        return meta

    def rotation(self, key_id: str) -> bool:
        return bool(self.kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            if code in ("403", "AccessDenied"):
                raise OpsbookError(f"bucket {bucket} exists but this account cannot read it (owned by another "
                                   "account?)", remedy="S3 names are global: choose another name for it in params "
                                                       "(buckets)") from None
            raise
        location = self.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
        if location != self.names.region:
            raise OpsbookError(f"bucket {bucket} exists in {location}, not in {self.names.region}: the backend "
                               "of a region keeps its state there",
                               remedy="use another bucket name in params (buckets)")
        return True

    def _optional(self, call: Any, missing: tuple[str, ...], **kwargs: Any) -> dict[str, Any] | None:
        try:
            return call(**kwargs)
        except Exception as exc:
            if error_code(exc) in missing:
                return None
            raise

    def versioning(self, bucket: str) -> str | None:
        return self.s3.get_bucket_versioning(Bucket=bucket).get("Status")

    def encryption(self, bucket: str) -> dict[str, Any] | None:
        answer = self._optional(self.s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError",),
                                Bucket=bucket)
        if not answer:
            return None
        rules = answer["ServerSideEncryptionConfiguration"].get("Rules", [])
        return rules[0].get("ApplyServerSideEncryptionByDefault") if rules else None

    def public_access(self, bucket: str) -> dict[str, bool] | None:
        answer = self._optional(self.s3.get_public_access_block, ("NoSuchPublicAccessBlockConfiguration",),
                                Bucket=bucket)
        return answer["PublicAccessBlockConfiguration"] if answer else None

    def policy(self, bucket: str) -> dict[str, Any] | None:
        answer = self._optional(self.s3.get_bucket_policy, ("NoSuchBucketPolicy",), Bucket=bucket)
        return json.loads(answer["Policy"]) if answer else None

    def lifecycle(self, bucket: str) -> list[dict[str, Any]]:
        answer = self._optional(self.s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration",),
                                Bucket=bucket)
        return answer["Rules"] if answer else []

    def table(self) -> dict[str, Any] | None:
        try:
            return self.ddb.describe_table(TableName=self.names.lock_table)["Table"]
        except self.ddb.exceptions.ResourceNotFoundException:
            return None

    def pitr(self) -> bool:
        answer = self.ddb.describe_continuous_backups(TableName=self.names.lock_table)
        status = answer["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        return status.get("PointInTimeRecoveryStatus") == "ENABLED"

    def trail(self) -> dict[str, Any] | None:
        trails = self.trails.describe_trails(trailNameList=[self.names.trail], includeShadowTrails=False)
        found = [t for t in trails.get("trailList", []) if t["Name"] == self.names.trail
                 and t.get("HomeRegion", self.names.region) == self.names.region]
        return found[0] if found else None

    def logging(self) -> bool:
        return bool(self.trails.get_trail_status(Name=self.names.trail).get("IsLogging"))


# --- the plan -------------------------------------------------------------------------------


def _row(resource: str, attribute: str, current: Any, desired: Any, ok: bool, exists: bool, do: Any) -> Change:
    action = "no-op" if ok else ("update" if exists else "create")
    return Change(resource, attribute, current, desired, action, do=do)


def _key_matches(configured: str | None, key: dict[str, Any] | None, names: BackendNames) -> bool:
    if not configured or key is None:
        return False
    return configured in {key["KeyId"], key["Arn"], names.kms_alias, names.alias_arn}


def _show_public(config: dict[str, bool] | None) -> str | None:
    if config is None:
        return None
    off = [k for k, v in BLOCK_ALL.items() if config.get(k) is not v]
    return "all four blocked" if not off else "not blocked: " + ", ".join(off)


class _Applier:
    """The changes themselves; every id is looked up when the change runs, not at plan time."""

    def __init__(self, env: Env, reader: _Reader, noncurrent_days: int) -> None:
        self.env, self.r, self.names, self.days = env, reader, reader.names, noncurrent_days
        self.tags = ownership_tags(env.run_id, PURPOSE, env.now().isoformat(timespec="seconds"))

    def key_arn(self) -> str:
        key = self.r.key()
        if key is None:
            raise OpsbookError(f"KMS alias {self.names.kms_alias} does not exist in {self.names.region}")
        return key["Arn"]

    def create_key(self) -> None:
        key = self.r.kms.create_key(
            Description=f"Terraform state of {self.env.name} in {self.names.region} (opsbook)",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in self.tags.items()],
        )["KeyMetadata"]
        self.r.kms.create_alias(AliasName=self.names.kms_alias, TargetKeyId=key["KeyId"])

    def rotate(self) -> None:
        self.r.kms.enable_key_rotation(KeyId=self.key_arn())

    def create_bucket(self, bucket: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.names.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.names.region}
        self.r.s3.create_bucket(**kwargs)
        self.r.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": aws_tags(self.tags)})

    def version(self) -> None:
        self.r.s3.put_bucket_versioning(Bucket=self.names.state_bucket,
                                        VersioningConfiguration={"Status": "Enabled"})

    def encrypt_state(self) -> None:
        self.r.s3.put_bucket_encryption(Bucket=self.names.state_bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                              "KMSMasterKeyID": self.key_arn()},
                       "BucketKeyEnabled": True}]})

    def encrypt_logs(self) -> None:
        self.r.s3.put_bucket_encryption(Bucket=self.names.log_bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})

    def block_public(self, bucket: str) -> None:
        self.r.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_ALL)

    def put_statements(self, bucket: str, statements: list[dict[str, Any]]) -> None:
        policy = merged_policy(self.r.policy(bucket), statements)
        self.r.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    def expire_noncurrent(self) -> None:
        rules = [r for r in self.r.lifecycle(self.names.state_bucket) if r.get("ID") != LIFECYCLE_ID]
        self.r.s3.put_bucket_lifecycle_configuration(
            Bucket=self.names.state_bucket,
            LifecycleConfiguration={"Rules": [*rules, lifecycle_rule(self.days)]})

    def create_table(self) -> None:
        self.r.ddb.create_table(
            TableName=self.names.lock_table,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": self.key_arn()},
            Tags=aws_tags(self.tags),
        )
        self.r.ddb.get_waiter("table_exists").wait(TableName=self.names.lock_table,
                                                   WaiterConfig={"Delay": 2, "MaxAttempts": 60})

    def on_demand(self) -> None:
        self.r.ddb.update_table(TableName=self.names.lock_table, BillingMode="PAY_PER_REQUEST")

    def encrypt_table(self) -> None:
        self.r.ddb.update_table(TableName=self.names.lock_table, SSESpecification={
            "Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": self.key_arn()})

    def recover(self) -> None:
        self.r.ddb.update_continuous_backups(
            TableName=self.names.lock_table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})

    def create_trail(self) -> None:
        self.r.trails.create_trail(Name=self.names.trail, S3BucketName=self.names.log_bucket,
                                   EnableLogFileValidation=True, IsMultiRegionTrail=False,
                                   TagsList=aws_tags(self.tags))

    def fix_trail(self) -> None:
        self.r.trails.update_trail(Name=self.names.trail, S3BucketName=self.names.log_bucket,
                                   EnableLogFileValidation=True)

    def start_logging(self) -> None:
        self.r.trails.start_logging(Name=self.names.trail)


def plan_backend(env: Env, region: str = "", noncurrent_days: int = 90, output_dir: str = "",
                 state_key: str = "") -> Plan:
    """Every resource and setting of the backend, current against desired."""
    if not 1 <= noncurrent_days <= 3650:
        raise OpsbookError(f"noncurrent_days: expected 1..3650 days, got {noncurrent_days}")
    names = backend_names(env.params, region, state_key)
    r = _Reader(env, names)
    a = _Applier(env, r, noncurrent_days)
    plan = Plan(f"Terraform backend of {env.name} in {names.region}", production=env.params.production)
    add = plan.add

    # KMS key
    res = f"kms {names.kms_alias}"
    key = r.key()
    add(_row(res, "key", key and key["KeyId"], "customer managed key", key is not None, False, a.create_key))
    rotation = r.rotation(key["KeyId"]) if key else None
    add(_row(res, "rotation", rotation, True, rotation is True, key is not None, a.rotate))

    # state bucket
    res = f"s3 {names.state_bucket}"
    exists = r.bucket_exists(names.state_bucket)
    add(_row(res, "bucket", "exists" if exists else None, "exists", exists, False,
             lambda: a.create_bucket(names.state_bucket)))
    versioning = r.versioning(names.state_bucket) if exists else None
    add(_row(res, "versioning", versioning, "Enabled", versioning == "Enabled", exists, a.version))
    sse = r.encryption(names.state_bucket) if exists else None
    shown = sse and f"{sse.get('SSEAlgorithm')} {sse.get('KMSMasterKeyID') or ''}".strip()
    ok = bool(sse) and sse.get("SSEAlgorithm") == "aws:kms" and _key_matches(sse.get("KMSMasterKeyID"), key, names)
    add(_row(res, "encryption", shown, f"aws:kms {names.kms_alias}", ok, exists, a.encrypt_state))
    public = r.public_access(names.state_bucket) if exists else None
    add(_row(res, "public access block", _show_public(public), "all four blocked",
             _show_public(public) == "all four blocked", exists, lambda: a.block_public(names.state_bucket)))
    tls = [tls_only_statement(names.partition, names.state_bucket)]
    policy = r.policy(names.state_bucket) if exists else None
    has_tls = _has_statements(policy, tls)
    add(_row(res, "bucket policy", (f"TLS-only ({TLS_SID})" if has_tls else "no TLS-only statement")
             if exists else None, f"TLS-only ({TLS_SID})", has_tls, exists,
             lambda: a.put_statements(names.state_bucket, tls)))
    rules = r.lifecycle(names.state_bucket) if exists else []
    ours = next((x for x in rules if x.get("ID") == LIFECYCLE_ID), None)
    days = ours and ours.get("Status") == "Enabled" and ours.get("NoncurrentVersionExpiration", {}).get(
        "NoncurrentDays")
    add(_row(res, "lifecycle", f"noncurrent versions expire after {days} days" if days else (
        "no expiry of noncurrent versions" if exists else None),
        f"noncurrent versions expire after {noncurrent_days} days", days == noncurrent_days, exists,
        a.expire_noncurrent))

    # lock table
    res = f"dynamodb {names.lock_table}"
    table = r.table()
    if table is not None:
        keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
        types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
        if keys != [("LockID", "HASH")] or types.get("LockID") != "S":
            raise OpsbookError(
                f"lock table {names.lock_table} in {names.region} has key schema {keys}; Terraform's S3 backend "
                "needs exactly a string hash key 'LockID', and a key schema cannot be changed",
                remedy="point params 'lock_table' at a new name (or delete that table by hand once it holds no "
                       "locks)",
            )
    add(_row(res, "table", "exists (LockID hash key)" if table else None, "exists (LockID hash key)",
             table is not None, False, a.create_table))
    billing = table and table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    add(_row(res, "billing mode", billing, "PAY_PER_REQUEST", billing == "PAY_PER_REQUEST", table is not None,
             a.on_demand))
    pitr = r.pitr() if table else None
    add(_row(res, "point-in-time recovery", pitr, True, pitr is True, table is not None, a.recover))
    tsse = (table or {}).get("SSEDescription") or {}
    tsse_ok = tsse.get("Status") == "ENABLED" and _key_matches(tsse.get("KMSMasterKeyArn"), key, names)
    shown = (f"{tsse.get('SSEType')} {tsse.get('KMSMasterKeyArn', '')}".strip() if tsse.get("Status") == "ENABLED"
             else ("AWS owned key" if table else None))
    add(_row(res, "encryption", shown, f"KMS {names.kms_alias}", tsse_ok, table is not None, a.encrypt_table))

    # log bucket and trail
    res = f"s3 {names.log_bucket}"
    logs = r.bucket_exists(names.log_bucket)
    add(_row(res, "bucket", "exists" if logs else None, "exists", logs, False,
             lambda: a.create_bucket(names.log_bucket)))
    lsse = r.encryption(names.log_bucket) if logs else None
    add(_row(res, "encryption", lsse and lsse.get("SSEAlgorithm"), "AES256 or aws:kms", bool(lsse), logs,
             a.encrypt_logs))
    public = r.public_access(names.log_bucket) if logs else None
    add(_row(res, "public access block", _show_public(public), "all four blocked",
             _show_public(public) == "all four blocked", logs, lambda: a.block_public(names.log_bucket)))
    trail_statements = cloudtrail_statements(names)
    lpolicy = r.policy(names.log_bucket) if logs else None
    writes = _has_statements(lpolicy, trail_statements)
    add(_row(res, "bucket policy", ("CloudTrail may write" if writes else "CloudTrail may not write") if logs
             else None, "CloudTrail may write", writes, logs,
             lambda: a.put_statements(names.log_bucket, trail_statements)))

    res = f"cloudtrail {names.trail}"
    trail = r.trail()
    add(_row(res, "trail", "exists" if trail else None, "exists", trail is not None, False, a.create_trail))
    target = trail and trail.get("S3BucketName")
    add(_row(res, "log bucket", target, names.log_bucket, target == names.log_bucket, trail is not None,
             a.fix_trail))
    validation = trail and bool(trail.get("LogFileValidationEnabled"))
    add(_row(res, "log file validation", validation, True, validation is True, trail is not None, a.fix_trail))
    logging = r.logging() if trail else None
    add(_row(res, "logging", logging, True, logging is True, trail is not None, a.start_logging))

    # the backend block for Terraform
    path = backend_file(env.params, names, output_dir)
    current = files.backend_settings(path) if path.is_file() else None
    block = backend_block(names)
    for change in files.setting_rows(f"file {path}", current, backend_settings(names),
                                     lambda: files.write_text(path, block)):
        add(change)
    return _dedupe_fixes(plan)


def _dedupe_fixes(plan: Plan) -> Plan:
    """Two rows of one trail fixed by the same update_trail call run it once."""
    seen: set[int] = set()
    for change in plan.pending:
        if change.do is not None and getattr(change.do, "__func__", None) is not None:
            key = id(change.do.__func__) ^ id(change.do.__self__)
            if key in seen:
                change.do = _noop
            seen.add(key)
    return plan


def _noop() -> None:
    return None


def backend_file(params: Params, names: BackendNames, output_dir: str = "") -> Path:
    return files.output_dir(params, output_dir, names.region) / BACKEND_FILE


def show_backend_block(env: Env, region: str = "", state_key: str = "") -> str:
    """The block an engineer puts in the region's Terraform root module."""
    return backend_block(backend_names(env.params, region, state_key))
