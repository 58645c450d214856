"""Finding notebooks, their purpose and parameters, and typing -p overrides."""

from __future__ import annotations

import nbformat
import pytest
from opsbook.errors import UsageError
from opsbook.notebooks import all_notebooks, describe, find_notebook, parse_overrides


@pytest.fixture()
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A drill\nRestores the thing and checks it.\n\nMore text."),
        nbformat.v4.new_code_cell(
            'env = "sandbox"\napply = False\nthreshold = 12\nratio = 0.5\nconfirm = ""\ntables = ["a"]',
            metadata={"tags": ["parameters"]},
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "a-drill.ipynb"
    nbformat.write(nb, path)
    return path


def test_describe_reads_title_purpose_and_parameters(notebook) -> None:
    info = describe(notebook)
    assert (info.title, info.purpose) == ("A drill", "Restores the thing and checks it.")
    assert list(info.parameters) == ["env", "apply", "threshold", "ratio", "confirm", "tables"]


def test_overrides_are_typed_like_the_defaults(notebook) -> None:
    info = describe(notebook)
    got = parse_overrides(info, ["apply=true", "threshold=30", "ratio=2", "confirm=db-1", "tables=[a, b]"])
    assert got == {"apply": True, "threshold": 30, "ratio": 2.0, "confirm": "db-1", "tables": ["a", "b"]}


@pytest.mark.parametrize("pair, message", [
    ("apply=yes please", "expected true or false"),
    ("threshold=ten", "expected a whole number"),
    ("threshold=true", "expected a whole number"),
    ("nope=1", "has no parameter 'nope'"),
    ("apply", "expected key=value"),
    ("env=prod-pl", "--env"),
])
def test_bad_overrides_are_refused(notebook, pair, message) -> None:
    with pytest.raises(UsageError, match=message):
        parse_overrides(describe(notebook), [pair])


def test_every_committed_notebook_has_purpose_and_env_parameter() -> None:
    paths = all_notebooks()
    assert paths, "no notebooks found"
    for path in paths:
        info = describe(path)
        assert info.purpose, f"{path.name}: first markdown cell needs a one-line purpose under the title"
        assert "env" in info.parameters, f"{path.name}: parameters cell must define env"


def test_committed_notebooks_have_no_outputs() -> None:
    for path in all_notebooks():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_unknown_notebook_lists_known(notebook) -> None:
    with pytest.raises(UsageError, match="no runbook or notebook named"):
        find_notebook("does-not-exist")
