"""The README lists exactly the runbooks and notebooks `opsbook list` shows, each under its folder.

A README list item of the form "- `name`: ..." names a runbook or notebook; its folder is the one
(`runbooks/` or `notebooks/`) that the paragraph of prose before its list names.
"""

from __future__ import annotations

import re
from pathlib import Path

from opsbook.notebooks import all_notebooks, describe, find_notebook, parse_overrides

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ITEM = re.compile(r"^- `([a-z0-9][a-z0-9-]*)`")
FOLDERS = ("runbooks", "notebooks")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside code blocks, without the continuation lines of list items."""
    lines, in_code = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith(" "):
            lines.append((number, line))
    return lines


def readme_listing(text: str) -> tuple[dict[str, str], list[str]]:
    """{name: folder} of the listed runbooks and notebooks, and what is wrong with the listing.

    A list's folder is the one the paragraph of prose before it names."""
    listed: dict[str, str] = {}
    problems: list[str] = []
    folder: str | None = None
    paragraph: list[str] = []  # the prose since the last list item
    for number, line in _prose_lines(text):
        if not line.startswith("- "):
            paragraph.append(line)
            continue
        if paragraph:
            named = [f for f in FOLDERS if f"`{f}/`" in " ".join(paragraph)]
            folder, paragraph = (named[0] if len(named) == 1 else None), []
        match = ITEM.match(line)
        if not match:
            continue
        name = match.group(1)
        if folder is None:
            problems.append(f"README.md:{number}: `{name}` is listed under no line naming `runbooks/` or `notebooks/`")
        elif name in listed:
            problems.append(f"README.md:{number}: `{name}` is listed twice")
        else:
            listed[name] = folder
    return listed, problems


def listing_problems(text: str, notebooks: list[Path]) -> list[str]:
    listed, problems = readme_listing(text)
    actual = {p.stem: p.parent.name for p in notebooks}
    problems += [f"{actual[n]}/{n}.ipynb is not listed in the README" for n in sorted(actual.keys() - listed.keys())]
    problems += [f"the README lists `{n}`, which is no runbook or notebook" for n in sorted(listed.keys() - actual.keys())]
    problems += [f"the README lists `{n}` as in {listed[n]}/, it is in {actual[n]}/"
                 for n in sorted(listed.keys() & actual.keys()) if listed[n] != actual[n]]
    return problems


def test_readme_lists_exactly_the_runbooks_and_notebooks():
    notebooks = all_notebooks()
    assert len(notebooks) >= 20
    problems = listing_problems(README.read_text(), notebooks)
    assert not problems, "README.md against `opsbook list`:\n" + "\n".join(problems)


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first = text.split("\n## ")[1]
    assert first.startswith("The two commands\n"), "the README's first section is the two commands"
    block = re.search(r"```sh\n(.*?)```", first, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make demo", "make test"]


def test_the_readme_check_can_fail(tmp_path):
    """A missing name, a made-up one, one in the wrong folder and one under no folder are all found."""
    for folder, name in (("runbooks", "health-check"), ("runbooks", "drill-cleanup"), ("notebooks", "cost-forecast")):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / f"{name}.ipynb").write_text("{}")
    notebooks = all_notebooks(tmp_path)
    good = "The runbooks, in `runbooks/`:\n\n- `health-check`: x\n- `drill-cleanup`: y\n  more of y\n\n" \
           "Analyses in `notebooks/`:\n\n- `cost-forecast`: z\n"
    assert listing_problems(good, notebooks) == []
    bad = "The runbooks, in `runbooks/`:\n\n- `health-check`: x\n- `made-up-drill`: no such thing\n\n" \
          "Analyses in `notebooks/`:\n\n- `drill-cleanup`: y\n\nSome prose.\n\n- `cost-forecast`: z\n"
    problems = "\n".join(listing_problems(bad, notebooks))
    assert "`made-up-drill`, which is no runbook" in problems
    assert "`drill-cleanup` as in notebooks/, it is in runbooks/" in problems
    assert "`cost-forecast` is listed under no line" in problems
    assert "notebooks/cost-forecast.ipynb is not listed" in problems


def test_readme_run_examples_name_real_notebooks_and_parameters():
    """`opsbook run NAME ... -p KEY=VALUE` in the README: NAME exists and has each KEY."""
    examples = re.findall(r"opsbook run (\S+)([^#\n]*)", README.read_text())
    assert examples
    for name, rest in examples:
        info = describe(find_notebook(name))
        pairs = re.findall(r"-p (\S+)", rest)
        assert parse_overrides(info, pairs).keys() == {pair.split("=")[0] for pair in pairs}, (name, pairs)
