"""A real drill run, through the runner, leaves its start and end events in Datadog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsbook.datadog import connect
from opsbook.datadog.events import list_events
from opsbook.datadog.window import Window

from tests.notebook_runs import run_passing


def test_failover_drill_posts_start_and_end_events(sandbox, sandbox_env, sandbox_params, tmp_path) -> None:
    begun = datetime.now(UTC) - timedelta(minutes=1)
    result = run_passing("rds-failover-drill", tmp_path, sandbox_params)
    with connect(sandbox_env) as dd:
        events = list_events(dd, Window(begun, datetime.now(UTC) + timedelta(minutes=1)),
                             tags=[f"opsbook:run-id:{result.run_id}"])
    titles = list(events["title"])
    verdict = result.records["drill"]["verdict"]
    assert titles == [f"Drill started: rds-failover ({sandbox_params.env})",
                      f"Drill {verdict}: rds-failover ({sandbox_params.env})"]
