"""The emulator's pieces without HTTP: query language, monitor validation, the estate's signals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from opsbook.params import load_params
from opsbook.sandbox.datadog.metrics import Query, QueryError, pick_interval
from opsbook.sandbox.datadog.signals import SLOT, Estate, traffic
from opsbook.sandbox.datadog.store import monitor_errors
from opsbook.sandbox.datadog.usage import top99p


def test_query_parsing() -> None:
    query = Query.parse("sum:smsapi.sms.sent{kube_cluster_name:a,service:b} by {service}.as_count().rollup(sum, 3600)")
    assert (query.aggr, query.metric, query.scope, query.by) == (
        "sum", "smsapi.sms.sent", {"kube_cluster_name": "a", "service": "b"}, ["service"])
    assert (query.as_count, query.rollup, query.interval) == (True, "sum", 3600)
    assert Query.parse("avg:x{*}").scope == {}


@pytest.mark.parametrize("text", ["x > 3", "avg:x", "avg:x{a}", "avg:x{*}.frobnicate()", "avg:x{*}.rollup(median)"])
def test_bad_queries_are_refused(text) -> None:
    with pytest.raises(QueryError, match="Error parsing query"):
        Query.parse(text)


def test_intervals_keep_the_point_count_bounded() -> None:
    assert pick_interval(3600, None) == 20
    assert pick_interval(86400, None) == 300
    assert pick_interval(31 * 86400, 60) * 1500 >= 31 * 86400  # a too fine rollup is widened


def test_monitor_validation_messages() -> None:
    good = {"type": "query alert", "query": "avg(last_5m):avg:x{*} > 90", "options": {"thresholds": {"critical": 90}}}
    assert monitor_errors(good) == []
    assert monitor_errors({**good, "query": "change(max(last_15m),last_15m):sum:x{*} by {pod} > 3",
                           "options": {"thresholds": {"critical": 3}}}) == []
    assert "type is required" in monitor_errors({"query": "x"})[0]
    assert monitor_errors([1]) == ["Invalid JSON: the body must be a JSON object"]
    lower = {**good, "query": "avg(last_5m):avg:x{*} < 1", "options": {"thresholds": {"critical": 1, "warning": 0.5}}}
    assert "must be greater than the alert threshold" in monitor_errors(lower)[0]
    # a non-metric monitor type is not parsed as a metric query
    assert monitor_errors({"type": "service check", "query": '"http.can_connect".over("*").last(2).count_by_status()'}) == []


def test_traffic_follows_the_warsaw_business_day() -> None:
    def at(day: int, hour: int) -> float:  # March 2025: the 12th is a Wednesday, the 15th a Saturday
        return traffic(datetime(2025, 3, day, hour, tzinfo=UTC).timestamp())

    assert at(12, 2) < 0.1 < at(12, 12)  # night vs. early afternoon (13:00 in Warsaw)
    assert at(15, 12) < at(12, 12)  # weekends are quieter
    assert 0 <= min(at(12, h) for h in range(24)) and max(at(12, h) for h in range(24)) <= 1


def test_signals_are_deterministic_and_the_incident_shows() -> None:
    params = load_params("sandbox")
    start = datetime(2025, 3, 12, 11, 20, tzinfo=UTC).timestamp()
    one, two = Estate(params, start), Estate(params, start)
    before, during = start - 3600, start + 30 * 60
    for t in (before, during):
        assert one.rds_cpu(t) == two.rds_cpu(t) and one.sms_rate(t) == two.sms_rate(t)
    assert one.rds_cpu(during) > 90 > one.rds_cpu(before)
    assert one.sms_rate(during) < one.sms_rate(before) / 2
    assert one.queue_depth("sms-sender", during) > 10 * one.queue_depth("sms-sender", before)
    groups = params.eks.node_groups
    for t in range(int(start), int(start) + 86400, SLOT):
        assert sum(g.desired_size for g in groups) <= one.total_nodes(t) <= sum(g.max_size for g in groups)


def test_top99p() -> None:
    assert top99p([1] * 99 + [50]) == 1 and top99p([2, 7]) == 7 and top99p([]) == 0
