"""Every error path of the CLI prints its values verbatim: brackets are never read as markup.

Values come from params, the command line, exceptions and API answers; rich would read
`[bold]` or `[a-zA-Z]` as a style and drop it. Missing access is said once, before anything
is listed. The exit codes are the ones `opsbook --help` lists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from opsbook.cli import app
from opsbook.params.estate import RdsInstance

from tests.cli_lines import is_group, parse_cli
from tests.e2e.helpers import ROOT, opsbook, write_notebook

BRACKETS = "[bold]x[/bold]-[a-z]"


def one_line(text: str) -> str:
    """The text's words on one line, without the box typer draws around a usage error."""
    return " ".join(text.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


@pytest.mark.parametrize("args, shown, code", [
    (["run", BRACKETS, "--env", "sandbox"], f"no runbook or notebook named '{BRACKETS}'", 2),
    (["run", "health-check", "--env", BRACKETS], f"no params for environment '{BRACKETS}'", 2),
    (["run", "health-check", "--env", "sandbox", "-p", f"{BRACKETS}=1"], f"has no parameter '{BRACKETS}'", 2),
    (["run", "health-check", "--env", "sandbox", "-p", "strict=[yes]"], "got '[yes]'", 2),
    (["run", "health-check", "--env", "sandbox", "--mirror", BRACKETS], f"got '{BRACKETS}'", 2),
    (["cleanup", "--env", "sandbox", "--older-than", BRACKETS], f"got '{BRACKETS}'", 2),
    (["history", "--env", "sandbox", "--s3", BRACKETS], f"got '{BRACKETS}'", 2),
    (["runs", "--since", BRACKETS], f"got '{BRACKETS}'", 2),
    (["portal", "--env", "sandbox", "--mirror", BRACKETS], f"got '{BRACKETS}'", 2),
    (["params", "check", BRACKETS], f"'{BRACKETS}'", 2),
    (["runs", "--format", BRACKETS], f"'{BRACKETS}' is not one of", 2),  # click's own usage errors
    (["runs", "--status", BRACKETS], f"'{BRACKETS}' is not one of", 2),
])
def test_bad_input_is_printed_verbatim(args: list[str], shown: str, code: int) -> None:
    out = opsbook(*args, timeout=120)
    assert out.returncode == code, out.stdout + out.stderr
    assert shown in one_line(out.stderr), out.stderr
    assert "Traceback" not in out.stderr


def test_a_params_pattern_is_printed_whole(tmp_path: Path) -> None:
    """The issue's case: an RDS identifier breaking the params pattern shows the pattern whole."""
    params = yaml.safe_load((ROOT / "params/sandbox.yaml").read_text())
    params["rds"][0]["identifier"] = "1-[bad]"
    path = tmp_path / "bad-identifier.yaml"
    path.write_text(yaml.safe_dump(params))
    pattern = RdsInstance.model_json_schema()["properties"]["identifier"]["pattern"]
    assert "[" in pattern
    out = opsbook("params", "check", str(path))
    assert out.returncode == 2
    message = one_line(out.stderr)
    assert f"'{pattern}'" in message and "'1-[bad]'" in message and "rds.0.identifier" in message


def test_a_failed_run_prints_the_exception_verbatim(sandbox, tmp_path: Path) -> None:
    error = "restore of [bold]db-1[/bold] found no row matching [a-zA-Z]+"
    nb = write_notebook(tmp_path / "fails.ipynb", f"raise RuntimeError({error!r})")
    out = opsbook("run", str(nb), "--env", "sandbox", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1
    assert error in out.stderr


def test_a_guard_refusal_prints_names_verbatim(leftovers) -> None:
    out = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s", "--apply", "--confirm", BRACKETS)
    assert out.returncode == 4, out.stdout + out.stderr
    message = one_line(out.stderr)
    assert f"(got '{BRACKETS}')" in message
    assert all(name in message for name in leftovers.names)  # the confirm it needs names every one
    assert leftovers.env.aws("ec2").describe_volumes(VolumeIds=[leftovers.volume])["Volumes"]  # nothing deleted


def _no_credentials() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSBOOK_SANDBOX"))}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true")  # nothing leaves this machine
    return env


def test_cleanup_without_credentials_says_so_once_before_listing() -> None:
    out = opsbook("cleanup", "--env", "prod-pl", env=_no_credentials(), timeout=60)
    assert out.returncode == 3
    assert out.stdout == ""  # nothing listed
    assert one_line(out.stderr).count("AWS credentials are missing") == 1
    assert out.stderr.count("what to do:") == 1


def test_cleanup_without_kubeconfig_says_so_once_before_listing(sandbox, tmp_path: Path) -> None:
    """The kubeconfig is said to be missing once, first; the AWS kinds are still listed."""
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    out = opsbook("cleanup", "--env", "sandbox", "--older-than", "0s", env=env)
    assert out.returncode == 3, out.stdout + out.stderr
    assert one_line(out.stderr).count("no usable kubeconfig") == 1
    assert one_line(out.stderr).index("no usable kubeconfig") < one_line(out.stderr).index("could not list")
    assert one_line(out.stdout).count("no usable kubeconfig") <= 1  # in one row; the others refer to it


def test_history_from_s3_without_credentials_says_so_once() -> None:
    out = opsbook("history", "--env", "prod-pl", "--s3", "s3://evidence/opsbook", env=_no_credentials(), timeout=60)
    assert out.returncode == 3 and out.stdout == ""
    assert one_line(out.stderr).count("AWS credentials are missing") == 1


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the CLI with its path (`params check`), groups walked."""
    found = []
    for name, command in group.commands.items():
        if is_group(command):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def test_help_lists_every_exit_code_of_the_errors() -> None:
    from opsbook import errors

    out = opsbook("--help", env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0
    codes = {int(ln.split()[0]): ln for ln in out.stdout.splitlines() if ln.split()[:1] and ln.split()[0].isdigit()}
    assert {0, 1, 2, 3, 4} <= set(codes)
    for cls in [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.OpsbookError)]:
        assert cls.__name__ in codes[cls.exit_code], f"{cls.__name__} (exit {cls.exit_code}) missing from --help"


def test_every_command_has_an_example_that_parses() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) >= 10
    for path, command in commands:
        example = next((ln.split("Example:", 1)[1].split() for ln in (command.help or "").splitlines()
                        if "Example:" in ln), None)
        assert example, f"opsbook {' '.join(path)}: its help has no example"
        assert example[:1 + len(path)] == ["opsbook", *path], example
        assert parse_cli(example[1:]).command_path == " ".join(["opsbook", *path])


def test_a_cell_with_brackets_shows_in_the_progress_on_a_terminal(sandbox, tmp_path: Path) -> None:
    """The per-cell progress (on a terminal) labels each cell with its first line, verbatim."""
    nb = write_notebook(tmp_path / "brackets.ipynb", "label = '[/bold] closes nothing, [a-z]+ is a pattern'")
    out = opsbook("run", str(nb), "--env", "sandbox", "--runs-dir", str(tmp_path / "runs"),
                  env={**os.environ, "TTY_COMPATIBLE": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed" in out.stdout
