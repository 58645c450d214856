"""Datadog params: wanted monitors, metric queries and prices are checked when params load."""

from __future__ import annotations

import pytest
import yaml
from opsbook.errors import ParamsError
from opsbook.params import DATADOG_PLACEHOLDERS, load_params


@pytest.mark.parametrize("env", ["sandbox", "dev-pl", "prod-pl"])
def test_every_env_has_the_wanted_monitors_and_prices(env) -> None:
    params = load_params(env)
    names = [m.name for m in params.datadog.monitors]
    assert len(names) == len(set(names)) >= 14
    pricing = params.datadog.pricing
    assert pricing is not None and pricing.source.startswith("https://") and pricing.as_of
    assert {(p.plan, p.billing) for p in pricing.plans} == {
        ("Pro", "annual"), ("Pro", "on-demand"), ("Enterprise", "annual"), ("Enterprise", "on-demand")}


def write_env(tmp_path, datadog: dict) -> str:
    """A params file extending the sandbox with a different datadog section."""
    path = tmp_path / "dd-test.yaml"
    path.write_text(yaml.safe_dump({"extends": str(load_params("sandbox").source), "datadog": datadog}))
    return str(path)


def monitor(**changes) -> dict:
    spec = {"name": "m", "query": "avg(last_5m):avg:aws.rds.cpuutilization{dbinstanceidentifier:$rds} > 90",
            "critical": 90, "warning": 80}
    spec.update(changes)
    return spec


@pytest.mark.parametrize("spec, message", [
    (monitor(critical=85), "critical 85.0 differs from the query's threshold 90.0"),
    (monitor(warning=95), "warning 95.0 must be below critical 90.0"),
    (monitor(query="avg(last_5m):avg:a{*} < 1", critical=1, warning=0.5), "warning 0.5 must be above critical 1.0"),
    (monitor(query="avg(last_5m):avg:aws.rds.cpuutilization{*}"), "must end with a comparison"),
    (monitor(query="avg(last_5m):avg:a{cluster:$custer} > 90"), "unknown placeholder(s) $custer"),
    (monitor(priority=7), "datadog.monitors.0.priority"),
])
def test_bad_monitors_fail_naming_file_and_field(tmp_path, spec, message) -> None:
    path = write_env(tmp_path, {"monitors": [spec]})
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert message in str(caught.value) and "dd-test.yaml" in str(caught.value)


def test_monitor_names_must_be_unique(tmp_path) -> None:
    with pytest.raises(ParamsError, match="repeated: \\['m'\\]"):
        load_params(write_env(tmp_path, {"monitors": [monitor(), monitor()]}))


def test_metric_queries_may_only_use_known_placeholders(tmp_path) -> None:
    with pytest.raises(ParamsError, match="datadog.metrics.rds_cpu_percent"):
        load_params(write_env(tmp_path, {"metrics": {"rds_cpu_percent": "avg:x{db:$database}"}}))
    allowed = "".join(f"${name}" for name in DATADOG_PLACEHOLDERS)
    assert load_params(write_env(tmp_path, {"metrics": {"rds_cpu_percent": f"avg:x{{a:{allowed}}}"}}))
