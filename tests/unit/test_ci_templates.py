"""The ready-to-copy CI pipelines under ci/: valid against the official schemas, and every
`opsbook` command line in them parses with the real CLI.

The schemas are the ones check-jsonschema vendors (SchemaStore's GitHub workflow and GitLab
CI schemas), used offline through its `--builtin-schema`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from opsbook.notebooks import describe, find_notebook, parse_overrides

from tests.cli_lines import parse_cli

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "ci/github/opsbook.yml"
GITLAB = ROOT / "ci/gitlab/opsbook.gitlab-ci.yml"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))


@pytest.mark.parametrize("path, schema", [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")])
def test_template_is_valid_against_the_official_schema(path: Path, schema: str) -> None:
    out = subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", schema, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_check_catches_a_broken_template(tmp_path: Path) -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    workflow["jobs"]["drill"]["step"] = workflow["jobs"]["drill"].pop("steps")  # a typo GitHub would refuse
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(workflow).replace("true:", "on:", 1))
    out = subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(broken)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout


def github_commands() -> list[str]:
    workflow = yaml.safe_load(GITHUB.read_text())
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def gitlab_commands() -> list[str]:
    pipeline = yaml.safe_load(GITLAB.read_text())
    return [line for job in pipeline.values() if isinstance(job, dict)
            for key in ("before_script", "script", "after_script") for line in job.get(key, [])]


def opsbook_lines(commands: list[str]) -> list[list[str]]:
    """Each `opsbook ...` command line, its variables replaced by a word as the shell would."""
    lines = []
    for command in commands:
        for line in command.splitlines():
            line = re.sub(r"\$\{\{[^}]*\}\}", "VALUE", line.strip())
            line = re.sub(r"\$\{?[A-Z_][A-Z0-9_]*\}?", "VALUE", line)
            if line.startswith("opsbook "):
                lines.append(shlex.split(line))
    return lines


@pytest.mark.parametrize("commands", [github_commands, gitlab_commands])
def test_every_opsbook_command_line_parses(commands) -> None:
    lines = opsbook_lines(commands())
    assert {args[1] for args in lines} >= {"run", "portal"}
    for args in lines:
        ctx = parse_cli(args[1:])  # raises click's UsageError when the CLI would refuse it
        if ctx.info_name == "run" and args[2] != "VALUE":
            info = describe(find_notebook(ctx.params["name"]))
            parse_overrides(info, ctx.params["param"])  # the notebook has these parameters


def test_the_drills_and_the_review_are_runbooks_and_notebooks_that_exist() -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    pipeline = yaml.safe_load(GITLAB.read_text())
    drills = workflow["jobs"]["drill"]["strategy"]["matrix"]["drill"]
    assert drills == pipeline["drill"]["parallel"]["matrix"][0]["DRILL"]
    for drill in drills:
        info = describe(find_notebook(drill))
        assert info.kind == "runbook" and "approval" in info.parameters
    assert describe(find_notebook("cost-monthly-review")).kind == "notebook"


def test_github_workflow_runs_on_schedule_with_oidc_mirrors_and_keeps_evidence() -> None:
    text = GITHUB.read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    crons = [s["cron"] for s in triggers["schedule"]]
    assert len(crons) == 2 and crons[0].endswith("* * *") and crons[1].split()[2] != "*"  # nightly, monthly
    assert workflow["permissions"]["id-token"] == "write"
    assert not re.search(r"aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY", text)
    for name, cron in zip(("drill", "cost-review"), crons, strict=True):
        job = workflow["jobs"][name]
        assert f"'{cron}'" in job["if"]
        steps = job["steps"]
        assert any("configure-aws-credentials" in s.get("uses", "") and "role-to-assume" in s["with"] for s in steps)
        run = next(s for s in steps if s.get("run", "").startswith("opsbook run"))
        assert "--mirror" in run["run"] and "continue-on-error" not in run and "||" not in run["run"]
        kept = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
        assert kept["if"] == "always()" and kept["with"]["path"].startswith("runs")
        assert any(s.get("run", "").startswith("opsbook portal --mirror") and s["if"] == "always()" for s in steps)


def test_gitlab_pipeline_runs_on_schedule_with_oidc_mirrors_and_keeps_evidence() -> None:
    text = GITLAB.read_text()
    pipeline = yaml.safe_load(text)
    assert pipeline["default"]["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    setup = " ".join(pipeline["default"]["before_script"])
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in setup and "AWS_ROLE_ARN" in setup
    assert "AWS_SECRET_ACCESS_KEY" not in text and "AWS_ACCESS_KEY_ID" not in text
    for name, job_value in (("drill", "drill"), ("cost-review", "cost-review")):
        job = pipeline[name]
        assert any("schedule" in r["if"] and f'"{job_value}"' in r["if"] for r in job["rules"])
        assert any(line.startswith("opsbook run") and "--mirror" in line and "||" not in line for line in job["script"])
        assert job["artifacts"]["when"] == "always" and job["artifacts"]["paths"] == ["runs/"]
        assert not job.get("allow_failure")
    portal = pipeline["portal"]
    assert portal["rules"][0]["when"] == "always" and portal["script"][0].startswith("opsbook portal --mirror")
