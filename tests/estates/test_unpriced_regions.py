"""A duplication target without price data: the region model names what it could not price, and
`strict=true` fails the run.

The sandbox prices the regions of the aws partition; a China region (another partition, a
valid region for params) has no usage-type prefix there and no price, so every regional
line of that scenario is unpriced, while global lines (Route 53) and Datadog (params) are.
"""

from __future__ import annotations

from pathlib import Path

import botocore.session

from tests.notebook_runs import run, run_passing

UNPRICED = "cn-northwest-1"


def _priced_target(params) -> str:
    aws = botocore.session.get_session().get_available_regions("ec2", partition_name="aws")
    return next(r for r in sorted(aws) if r != params.region)


def test_region_model_names_the_unpriced_lines_and_strict_fails(sandbox, sandbox_params, tmp_path: Path) -> None:
    priced = _priced_target(sandbox_params)
    regions = [priced, UNPRICED]
    result = run_passing("region-duplication-model", tmp_path, sandbox_params, {"regions": regions})
    totals, headline = result.records["totals"], result.records["headline"]
    unpriced = [name for name in totals if name.startswith(f"{UNPRICED} with scenario")]
    assert len(unpriced) == 1, f"the {UNPRICED} total does not say it leaves lines out: {list(totals)}"
    lines_left_out = int(unpriced[0].split("(", 1)[1].split()[0])
    assert lines_left_out > 0 and headline["unpriced"] == lines_left_out
    assert UNPRICED in headline["unpriced items"]
    assert f"{priced} with scenario" in totals, "a priced region must not be marked"
    # the conclusion says it too (report.html is what a finance reader sees)
    report = (result.run_dir / "report.html").read_text()
    assert "not in this total" in report and "could not be priced" in report
    # priced: only what needs no regional price (Route 53 is global, Datadog comes from params)
    by_component = {row["component"]: row for row in result.records["by_component"]}
    nodes = by_component["compute nodes"][unpriced[0]]
    assert nodes is None or nodes != nodes, f"compute nodes in {UNPRICED} must be unknown, got {nodes}"
    assert totals[unpriced[0]] < totals[f"{priced} with scenario"]

    strict = run("region-duplication-model", tmp_path, sandbox_params, {"regions": regions, "strict": True})
    assert not strict.ok
    assert strict.error["ename"] == "OpsbookError" and "strict" in strict.error["evalue"]
    assert UNPRICED in strict.error["evalue"]
    assert strict.records["headline"]["unpriced"] == lines_left_out  # recorded before it failed


def test_strict_passes_when_every_line_is_priced(sandbox, sandbox_params, tmp_path: Path) -> None:
    result = run("region-duplication-model", tmp_path, sandbox_params,
                 {"regions": [_priced_target(sandbox_params)], "strict": True})
    assert result.ok, result.error
    assert result.records["headline"]["unpriced"] == 0
