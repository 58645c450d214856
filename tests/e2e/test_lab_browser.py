"""JupyterLab in a real browser: open a runbook, edit its parameters cell, run all cells on the sandbox.

`jupyter lab` starts on a free port with a token, as `make lab` starts it (OPSBOOK_ROOT set to
the checkout); the kernel inherits the session's sandbox. The runbook is a copy of
runbooks/health-check.ipynb in a folder of the test's own, so Lab's autosave never writes
outputs into the committed notebook. The verdict Lab shows must be the one a headless run
with the same parameters records.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from opsbook.net import free_port

from tests.e2e.helpers import ROOT
from tests.notebook_runs import run_passing

VERDICT = re.compile(r"sandbox: (\d+) pass, (\d+) warn, (\d+) fail")
EDITED = {"cert_warn_margin_days": 3650}  # every certificate is then within the warning margin


@dataclass
class Lab:
    url: str
    token: str
    root: Path


def _wait_until_up(url: str, token: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within 90 s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def lab(sandbox, tmp_path: Path) -> Iterator[Lab]:
    root = tmp_path / "checkout"
    (root / "runbooks").mkdir(parents=True)
    shutil.copy(ROOT / "runbooks/health-check.ipynb", root / "runbooks")
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"  # Lab's own settings, workspaces and runtime files, not the user's
    env = {**os.environ, "OPSBOOK_ROOT": str(ROOT), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings")}
    log = tmp_path / "jupyter-lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--LabApp.extension_manager=readonly"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, token, proc, log)
        yield Lab(url, token, root)
    finally:
        proc.terminate()  # Lab shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def verdict_line(summary: dict) -> str:
    return f"sandbox: {summary['pass']} pass, {summary['warn']} warn, {summary['fail']} fail"


def test_run_a_runbook_in_jupyterlab_with_edited_parameters(lab: Lab, tab, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    default = run_passing("health-check", runs).records["summary"]
    expected = run_passing("health-check", runs, overrides=EDITED).records["summary"]
    assert verdict_line(expected) != verdict_line(default)  # so the edit is seen in the verdict
    shots = runs / "screenshots"
    page = tab.page
    page.set_default_timeout(60_000)
    page.goto(f"{lab.url}/lab/tree/runbooks/health-check.ipynb?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell")

    # the note comes before the first code cell (the parameters), so before anything runs; Lab
    # renders markdown cells as they load, so their text is read once it has rendered
    top = page.wait_for_function("""() => {
        const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
        const first = cells.findIndex(c => c.classList.contains('jp-CodeCell'));
        const text = cells.slice(0, first).map(c => c.innerText).join(' ');
        return first > 0 && text.includes('opsbook run health-check') && text;
    }""").json_value()
    assert "not recorded" in top and "opsbook run health-check --env" in top
    tab.screenshot(shots, "lab-1-opened")

    parameters = page.locator(".jp-Notebook .jp-CodeCell").first
    source = parameters.locator(".cm-content").inner_text()
    assert source.startswith('env = "sandbox"')
    edited = re.sub(r"^cert_warn_margin_days = \d+", f"cert_warn_margin_days = {EDITED['cert_warn_margin_days']}",
                    source, flags=re.M)
    assert edited != source
    parameters.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(edited)
    assert parameters.locator(".cm-content").inner_text() == edited

    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some(e => /sandbox: \\d+ pass, \\d+ warn, \\d+ fail/.test(e.innerText))", timeout=300_000)
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    [shown] = [m.group(0) for text in outputs if (m := VERDICT.search(text))]
    tab.screenshot(shots, "lab-2-verdict")
    assert shown == verdict_line(expected)
    assert not any("Traceback" in text for text in outputs)
