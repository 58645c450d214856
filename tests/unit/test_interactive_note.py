"""Every runbook and notebook says at its top, before any cell that runs, that a run in
JupyterLab is not recorded, and gives the `opsbook run` line that records one."""

from __future__ import annotations

import nbformat
import pytest
from opsbook.notebooks import all_notebooks

from tests.cli_lines import parse_cli


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.stem)
def test_notebook_says_an_interactive_run_is_not_recorded(path) -> None:
    nb = nbformat.read(path, as_version=4)
    first_code = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
    top = "\n".join(cell.source for cell in nb.cells[:first_code])
    assert "not recorded" in top, f"{path.name}: no note before its first code cell"
    line = next((ln for ln in top.splitlines() if ln.startswith(f"opsbook run {path.stem} ")), None)
    assert line, f"{path.name}: the note must show `opsbook run {path.stem} --env ...`"
    ctx = parse_cli(line.replace("<env>", "sandbox").replace("<parameter>=<value>", "key=value").split()[1:])
    assert ctx.params["name"] == path.stem and ctx.params["env"] == "sandbox"
