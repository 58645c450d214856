"""Helpers for end-to-end tests that run the `opsbook` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
OPSBOOK = str(Path(sys.executable).with_name("opsbook"))


def opsbook(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed `opsbook` command; the sandbox exported by the fixture is inherited."""
    return subprocess.run([OPSBOOK, *args], cwd=ROOT, env=env or os.environ.copy(), capture_output=True,
                          text=True, timeout=timeout)


def write_notebook(path: Path, *code_cells: str, params: str = 'env = "sandbox"') -> Path:
    """A small notebook with a purpose line and a parameters cell, for runner tests."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}\nA notebook made by a test.")]
    nb.cells.append(nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(code) for code in code_cells]
    nbformat.write(nb, path)
    return path
