"""The runs portal in a real browser (Chromium through Playwright), from file:// and from the S3 mirror.

The runs are real (the `evidence` fixture: drills within and over their targets, a health
check, the monthly cost review); what the pages should show is worked out here from the
run folders' results.json, and every link followed must lead to a file that exists.
Screenshots go beside the runs, in `screenshots/`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from opsbook.mirror import mirror_run

from tests.e2e.conftest import results_of
from tests.e2e.helpers import opsbook


def by_runbook(runs_root: Path) -> dict[tuple[str, str], list[dict]]:
    """{(name, env): its runs, oldest first}, read from the run folders."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run in sorted(results_of(runs_root), key=lambda r: r["started_at"]):
        groups[(run["name"], run["env"])].append(run)
    return dict(groups)


def over_target(runs: list[dict], metric: str) -> int:
    drills = [r["records"]["drill"] for r in runs]
    return sum(d[f"{metric}_s"] is not None and d[f"{metric}_s"] > d[f"{metric}_target_s"] for d in drills)


def local_file(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def hrefs(page, selector: str) -> list[str]:
    return [urljoin(page.url, a.get_attribute("href")) for a in page.locator(selector).all()]


def portal_errors(tab) -> list[str]:
    """Console errors met on any page opened: the portal's and the runs' report.html (which
    loads nothing from the network: report/html.py drops the lab template's CDN scripts)."""
    return list(tab.errors)


def check_dashboard(tab, groups: dict) -> None:
    page = tab.page
    rows = page.locator("tr[data-search]")
    assert rows.count() == len(groups)
    for row in rows.all():
        name, env = row.locator("a.runbook").inner_text(), row.locator("td").nth(1).inner_text()
        runs = groups[(name, env)]
        assert row.locator("td.status").inner_text() == runs[-1]["status"]
        assert row.locator("td.strip a").evaluate_all("links => links.map(a => a.className)") == \
            [r["status"] for r in runs[-10:]]
    assert page.locator("#shown").inner_text() == f"{len(groups)} of {len(groups)} shown"


def test_dashboard_filter_report_and_runbook_page_from_file(evidence: Path, tab) -> None:
    groups = by_runbook(evidence)
    shots = evidence / "screenshots"
    page = tab.page
    page.goto((evidence / "index.html").as_uri())
    check_dashboard(tab, groups)
    tab.screenshot(shots, "1-dashboard")

    drill_name = "rds-pitr-drill"
    drill_runs = groups[(drill_name, "sandbox")]
    page.fill("#filter", drill_name)
    visible = page.locator("tr[data-search]:visible")
    assert visible.count() == 1 and visible.locator("a.runbook").inner_text() == drill_name
    assert page.locator("#shown").inner_text() == f"1 of {len(groups)} shown"
    assert visible.locator("svg").count() == 2  # RTO and RPO against target
    tab.screenshot(shots, "2-filtered")
    page.fill("#filter", f"{drill_name} no-such-word")
    assert page.locator("tr[data-search]:visible").count() == 0
    page.fill("#filter", "")
    assert page.locator("tr[data-search]:visible").count() == len(groups)

    # finance: the cost review's latest report, and its workbook
    review = page.locator("tr[data-search]", has=page.locator("a.runbook", has_text="cost-monthly-review"))
    [workbook] = hrefs(page, "tr:has(a.runbook:text-is('cost-monthly-review')) a:text-is('report.xlsx')")
    assert local_file(workbook) == groups[("cost-monthly-review", "sandbox")][-1]["_dir"] / "report.xlsx"
    review.locator("a", has_text="latest report").click()
    page.wait_for_load_state()
    latest = groups[("cost-monthly-review", "sandbox")][-1]
    assert local_file(page.url) == latest["_dir"] / "report.html"
    assert f"cost-monthly-review: {latest['status'].upper()}" in page.locator("h2").first.inner_text()
    tab.screenshot(shots, "3-report")

    page.go_back()
    page.locator("a.runbook", has_text=drill_name).click()
    page.wait_for_load_state()
    assert local_file(page.url) == evidence / "sandbox" / f"{drill_name}.html"
    shown = page.locator("table.history td.run-id").all_inner_texts()
    assert shown == [r["run_id"] for r in reversed(drill_runs)]  # newest first, every run
    for link in hrefs(page, "table.history td.links a"):
        assert local_file(link).is_file(), link
    for run in drill_runs:
        links = {Path(h).name for h in hrefs(page, f"#run-{run['run_id']} td.links a")}
        assert links == {p.name for p in run["_dir"].iterdir()}
    charts = page.locator("figure svg")
    assert charts.count() == 2
    for chart, metric in zip(charts.all(), ("rto", "rpo"), strict=True):
        measured = [r for r in drill_runs if r["records"]["drill"][f"{metric}_s"] is not None]
        assert chart.locator("circle").count() == len(measured)
        assert chart.locator("circle[fill='#cf222e']").count() == over_target(drill_runs, metric)
        assert chart.locator("polyline.target").count() == 1
    tab.screenshot(shots, "4-runbook-page")
    assert portal_errors(tab) == []


def sign_for_s3(page, env) -> None:
    """Sign the browser's requests to S3 with the environment's credentials (SigV4), as a CloudFront
    origin access control or a signing proxy does in front of a private mirror bucket."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = env.session.get_credentials().get_frozen_credentials()

    def handle(route) -> None:
        request = AWSRequest(method=route.request.method, url=route.request.url)
        S3SigV4Auth(credentials, "s3", env.params.region).add_auth(request)
        route.continue_(headers={**route.request.headers, **dict(request.headers)})

    page.route(f"{os.environ['AWS_ENDPOINT_URL']}/**", handle)


def test_portal_published_to_the_s3_mirror_works_in_the_browser(evidence: Path, sandbox_env, tab, tmp_path) -> None:
    bucket = sandbox_env.params.buckets.logs
    prefix = f"opsbook-portal/{tmp_path.name}"
    for run in results_of(evidence):
        mirror_run(run["_dir"], f"s3://{bucket}/{prefix}", sandbox_env)
    out = opsbook("portal", "--mirror", f"s3://{bucket}/{prefix}", "--env", "sandbox")
    assert out.returncode == 0, out.stderr
    s3 = sandbox_env.aws("s3")
    page_head = s3.head_object(Bucket=bucket, Key=f"{prefix}/index.html")
    assert page_head["ContentType"].startswith("text/html")

    groups = by_runbook(evidence)
    page = tab.page
    sign_for_s3(page, sandbox_env)
    page.goto(f"{os.environ['AWS_ENDPOINT_URL']}/{bucket}/{prefix}/index.html")  # S3's path-style URL
    check_dashboard(tab, groups)
    tab.screenshot(evidence / "screenshots", "5-dashboard-from-s3")
    page.locator("a.runbook", has_text="health-check").click()
    page.wait_for_load_state()
    health = groups[("health-check", "sandbox")]
    assert page.locator("table.history td.run-id").all_inner_texts() == [r["run_id"] for r in reversed(health)]
    page.locator("table.history td.links a", has_text="report.html").first.click()
    page.wait_for_load_state()
    assert f"health-check: {health[-1]['status'].upper()}" in page.locator("h2").first.inner_text()
    assert portal_errors(tab) == []
