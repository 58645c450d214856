"""SSM parameter sync on the sandbox: compare by hash, copy missing, re-encrypt, never show values."""

from __future__ import annotations

import pytest
from opsbook.errors import UsageError
from opsbook.provision import ssm_sync, steps

from tests.sandbox.conftest import put_ssm_markers

TARGET = "ap-northeast-1"  # only this module syncs into it


def _values(ssm, path: str) -> dict[str, tuple[str, str]]:
    """name -> (type, value), read with plain boto3 (independently of opsbook)."""
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True, WithDecryption=True)
    return {p["Name"]: (p["Type"], p["Value"]) for page in pages for p in page["Parameters"]}


@pytest.fixture(scope="module")
def extra(sandbox, sandbox_params):
    """Parameters of every type with distinctive values, beside the seeded ones."""
    return put_ssm_markers(sandbox_params, "ssm-sync")


def test_compare_copy_reencrypt_and_converge(sandbox_env, extra) -> None:
    env = sandbox_env
    prefix = env.params.ssm.prefix
    src_ssm, dst_ssm = env.aws("ssm"), env.aws("ssm", TARGET)
    source = _values(src_ssm, prefix)
    assert set(extra) <= set(source) and len(source) > len(extra)  # the seeded tree is there too

    plan, table = ssm_sync.plan_sync(env, TARGET)
    assert set(table["status"]) == {"missing in target"}
    assert sorted(prefix + p for p in table["parameter"]) == sorted(source)
    rows = {c.resource: c.action for c in plan.changes}
    assert rows.pop(f"kms {env.params.kms.ssm} ({TARGET})") == "create"  # the target region has no key yet
    assert rows == {f"ssm {name} ({TARGET})": "create" for name in source}
    shown = plan.table().to_string() + table.to_string()
    # secure values and our distinctive plain ones (a seeded plain value may be a common word)
    distinct = [v for kind, v in source.values() if kind == "SecureString"] + [v for _, v in extra.values()]
    assert not [v for v in distinct if v in shown]

    assert steps.apply_plan(plan, apply=True).changed == len(source) + 1
    copied = _values(dst_ssm, prefix)
    assert copied == source  # same names, types and values
    key = env.aws("kms", TARGET).describe_key(KeyId=env.params.kms.ssm)["KeyMetadata"]
    assert key["Arn"].split(":")[3] == TARGET
    described = {p["Name"]: p for page in dst_ssm.get_paginator("describe_parameters").paginate() for p in
                 page["Parameters"]}
    for name, (kind, _) in source.items():
        if kind == "SecureString":
            assert described[name]["KeyId"] in (env.params.kms.ssm, key["KeyId"], key["Arn"])

    again, table = ssm_sync.plan_sync(env, TARGET)
    assert again.empty and set(table["status"]) == {"same"}

    # a value changed by hand in the target: reported as differs, kept unless overwrite
    secret_name = next(n for n in extra if n.endswith("/secret"))
    dst_ssm.put_parameter(Name=secret_name, Type="SecureString", Value="changed-by-hand", Overwrite=True,
                          KeyId=env.params.kms.ssm)
    kept, table = ssm_sync.plan_sync(env, TARGET)
    row = table[table["parameter"] == secret_name[len(prefix):]].iloc[0]
    assert (row["status"], row["value"]) == ("differs", "differs")
    assert kept.empty and "changed-by-hand" not in kept.table().to_string() + table.to_string()
    fixed, _ = ssm_sync.plan_sync(env, TARGET, overwrite=True)
    assert [(c.resource, c.action) for c in fixed.pending] == [(f"ssm {secret_name} ({TARGET})", "update")]
    steps.apply_plan(fixed, apply=True)
    assert _values(dst_ssm, prefix)[secret_name] == source[secret_name]


def test_a_subtree_and_bad_targets(sandbox_env, extra) -> None:
    sub = f"{sandbox_env.params.ssm.prefix}/opsbook-test/ssm-sync"
    plan, table = ssm_sync.plan_sync(sandbox_env, "ap-northeast-3", prefix=sub)
    assert sorted(table["parameter"]) == sorted(n[len(sub):] for n in extra)
    with pytest.raises(UsageError, match="is the source region itself"):
        ssm_sync.plan_sync(sandbox_env, sandbox_env.params.region)
    with pytest.raises(UsageError, match="under the env's tree"):
        ssm_sync.plan_sync(sandbox_env, TARGET, prefix="/other/tree")
