"""Fixtures for the end-to-end tests: real run folders to list and show, and drill leftovers to find."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from opsbook.clients import Env, new_run_id
from opsbook.drills.framework import PURPOSE
from opsbook.guard import k8s_labels, ownership_tags
from opsbook.report.index import write_index

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.helpers import ROOT
from tests.notebook_runs import run, run_passing


@pytest.fixture(scope="session")
def evidence(sandbox, tmp_path_factory) -> Path:
    """A runs root holding real runs, as on-call and finance leave them, with its portal written:
    an RDS drill within its targets, the same drill over targets too tight to meet (a failed
    run), a health check, and the monthly cost review."""
    root = tmp_path_factory.mktemp("evidence") / "runs"
    run_passing("rds-pitr-drill", root)
    tight = root.parent / "sandbox-tight-targets.yaml"
    tight.write_text(yaml.safe_dump({"extends": str(ROOT / "params/sandbox.yaml"),
                                     "targets": {"rto_minutes": 0.0001, "rpo_minutes": 0.0001}}))
    assert not run("rds-pitr-drill", root, env=str(tight)).ok
    run_passing("health-check", root)
    review = run_passing("cost-monthly-review", root)
    if not (review.run_dir / "report.xlsx").exists():
        # the finance workbook comes from the runner once issue 14 lands; until then a file
        # stands in for it, so the portal's link to it is tested
        (review.run_dir / "report.xlsx").write_bytes(b"PK\x03\x04")
    write_index(root)
    return root


def results_of(runs_root: Path) -> list[dict]:
    """Every results.json under a runs root, read directly (the tests' own view of the runs)."""
    return [json.loads(p.read_text()) | {"_dir": p.parent} for p in sorted(runs_root.glob("*/*/*/results.json"))]


@dataclass
class Leftovers:
    """Drill resources a dead drill could have left, each carrying the drill ownership tags."""

    env: Env
    volume: str
    snapshot: str
    namespace: str

    @property
    def names(self) -> list[str]:
        return [self.volume, self.snapshot, self.namespace]


@pytest.fixture()
def leftovers(sandbox, sandbox_params) -> Iterator[Leftovers]:
    """Tagged drill leftovers in the sandbox (an EBS volume, an RDS snapshot, a namespace) with
    long names, removed afterwards by id, never through the sweeper under test."""
    env = Env(params=sandbox_params, run_id=new_run_id())
    token = secrets.token_hex(3)
    tags = ownership_tags(env.run_id, PURPOSE)
    aws_tags = [{"Key": k, "Value": v} for k, v in tags.items()]
    ec2, rds, core = env.aws("ec2"), env.aws("rds"), client.CoreV1Api(env.kube)
    volume = ec2.create_volume(AvailabilityZone=sandbox_params.network.azs[0], Size=1,
                               TagSpecifications=[{"ResourceType": "volume", "Tags": aws_tags}])["VolumeId"]
    snapshot = f"opsbook-drill-{token}-leftover-snapshot-of-the-main-database-with-a-long-name"
    rds.create_db_snapshot(DBInstanceIdentifier=sandbox_params.rds[0].identifier, DBSnapshotIdentifier=snapshot,
                           Tags=aws_tags)
    namespace = f"drill-{token}-restored-namespace-wider-than-a-column"  # <= 63 characters
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=namespace, labels=k8s_labels(tags))))
    try:
        yield Leftovers(env, volume, snapshot, namespace)
    finally:
        ec2.delete_volume(VolumeId=volume)
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot)
        core.delete_namespace(namespace)


# --- the browser --------------------------------------------------------------------------------

# Debian's Chromium (scripts/browser.sh installs it), launched by path: Playwright's own browser
# download cannot be reached from these machines. No network beyond the pages under test.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def _missing(message: str) -> None:
    """A browser test without its browser fails in CI and skips on a laptop, saying what to install."""
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium driven by Playwright for Python, for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed: pip install -e '.[dev]' (make setup)")
    chromium = shutil.which("chromium")
    if chromium is None:
        _missing("chromium is not on PATH: scripts/browser.sh installs it (make setup)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A browser page that keeps every console error and uncaught exception it meets, each as
    "<the page's URL> | <message>"."""

    page: Any
    errors: list[str]

    def screenshot(self, folder: Path, name: str) -> Path:
        """A full-page screenshot into `folder` (the evidence of the test's own runs)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture()
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"{page.url} | {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"{page.url} | {exc}"))
    page.set_default_timeout(30_000)
    yield Tab(page, errors)
    context.close()
