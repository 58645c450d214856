"""The emulator's HTTP API (Flask): routes, keys, and the shapes of the v1 responses.

Every route checks the keys as Datadog does: `DD-API-KEY` always, `DD-APPLICATION-KEY`
too except where the spec asks for the API key only (posting events, /validate).
Missing or wrong keys answer 403 `{"errors": ["Forbidden"]}`. Observers (the contract
tests) see every response the emulator gives.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request

from opsbook.sandbox.datadog.metrics import QueryError, run_query
from opsbook.sandbox.datadog.store import EVENT_ALERT_TYPES, Store, monitor_errors
from opsbook.sandbox.datadog.usage import Usage, iso, month_start, next_month, parse_time

USAGE_JSON = "application/json;datetime-format=rfc3339"
Observer = Callable[[str, str, int, str, bytes], None]


def errors(status: int, *messages: str, mimetype: str = "application/json") -> Response:
    response = jsonify({"errors": list(messages)})
    response.status_code = status
    response.content_type = mimetype
    return response


def create_app(store: Store, usage: Usage, api_key: str, app_key: str, observers: list[Observer]) -> Flask:
    app = Flask("opsbook-datadog-emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _install_keys_and_observers(app, api_key, app_key, observers)
    endpoints = Endpoints(store, usage)
    for method, rule, name in ROUTES:
        app.add_url_rule(rule, endpoint=name, view_func=getattr(endpoints, name), methods=[method])
    return app


API_KEY_ONLY = {("POST", "/api/v1/events"), ("GET", "/api/v1/validate")}


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _install_keys_and_observers(app: Flask, api_key: str, app_key: str, observers: list[Observer]) -> None:
    """The key check before every request, the observers after it, and the 404 body."""

    @app.before_request
    def check_keys() -> Response | None:
        need_app = (request.method, request.path) not in API_KEY_ONLY
        if not _same(request.headers.get("DD-API-KEY"), api_key) or (
            need_app and not _same(request.headers.get("DD-APPLICATION-KEY"), app_key)
        ):
            return errors(403, "Forbidden", mimetype=_mimetype())
        return None

    @app.after_request
    def observe(response: Response) -> Response:
        for observer in list(observers):
            observer(request.method, request.path, response.status_code, response.content_type or "",
                     response.get_data())
        return response

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return errors(404, "Not found")


def _mimetype() -> str:
    return USAGE_JSON if request.path.startswith("/api/v1/usage/") else "application/json"


# --- request helpers ----------------------------------------------------------------------


def body() -> dict | None:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def int_arg(name: str, required: bool = False) -> int | None:
    value = request.args.get(name)
    if value is None:
        if required:
            raise ValueError(f"The parameter '{name}' is required")
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"The parameter '{name}' must be an integer, got {value!r}") from None


def usage_time(name: str, required: bool) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        if required:
            raise ValueError(f"The parameter '{name}' is required")
        return None
    return parse_time(value, name)


def usage_json(payload: dict) -> Response:
    response = jsonify(payload)
    response.content_type = USAGE_JSON
    return response


NOT_AN_OBJECT = "Invalid JSON: the body must be a JSON object"


def event_problems(data: dict) -> list[str]:
    problems = [f"Event {key} is required" for key in ("title", "text") if not isinstance(data.get(key), str)]
    if data.get("alert_type", "info") not in EVENT_ALERT_TYPES:
        problems.append(f"Invalid alert_type {data['alert_type']!r}")
    if data.get("priority", "normal") not in ("normal", "low"):
        problems.append(f"Invalid priority {data['priority']!r}: expected normal or low")
    if len(data.get("text") or "") > 4000:
        problems.append("Event text must be 4000 characters or fewer")
    return problems


def downtime_problems(data: dict, store: Store) -> list[str]:
    problems = []
    if not isinstance(data.get("scope"), list) or not data["scope"]:
        problems.append("Invalid scope: scope is required (for example [\"*\"])")
    start, end = data.get("start") or time.time(), data.get("end")
    if end is not None and end <= start:
        problems.append(f"Invalid end {end}: the downtime must end after it starts ({int(start)})")
    if data.get("monitor_id") is not None and data["monitor_id"] not in store.monitors:
        problems.append(f"Monitor {data['monitor_id']} not found")
    return problems


def top_avg_window(when: datetime, whole_month: bool) -> tuple[datetime, datetime, dict]:
    """The [start, end) of a top_avg_metrics request (the month or the day of `when`) and its metadata."""
    if whole_month:
        start = month_start(when)
        return start, next_month(when), {"month": iso(start)}
    start = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, datetime.fromtimestamp(start.timestamp() + 86400, UTC), {"day": iso(start)}


# --- the endpoints --------------------------------------------------------------------------

# (method, rule, endpoint): each endpoint is the method of `Endpoints` of that name
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/v1/validate", "validate"),
    ("GET", "/api/v1/query", "query"),
    ("GET", "/api/v1/monitor", "list_monitors"),
    ("POST", "/api/v1/monitor", "create_monitor"),
    ("POST", "/api/v1/monitor/validate", "validate_monitor"),
    ("GET", "/api/v1/monitor/<int:monitor_id>", "get_monitor"),
    ("PUT", "/api/v1/monitor/<int:monitor_id>", "update_monitor"),
    ("DELETE", "/api/v1/monitor/<int:monitor_id>", "delete_monitor"),
    ("POST", "/api/v1/events", "create_event"),
    ("GET", "/api/v1/events", "list_events"),
    ("GET", "/api/v1/events/<int:event_id>", "get_event"),
    ("GET", "/api/v1/downtime", "list_downtimes"),
    ("POST", "/api/v1/downtime", "create_downtime"),
    ("GET", "/api/v1/downtime/<int:downtime_id>", "get_downtime"),
    ("DELETE", "/api/v1/downtime/<int:downtime_id>", "cancel_downtime"),
    ("GET", "/api/v1/usage/hosts", "usage_hosts"),
    ("GET", "/api/v1/usage/top_avg_metrics", "usage_top_avg_metrics"),
    ("GET", "/api/v1/usage/summary", "usage_summary"),
]


class Endpoints:
    """The v1 endpoints over one store and one usage model."""

    def __init__(self, store: Store, usage: Usage) -> None:
        self.store, self.usage = store, usage

    # --- authentication -------------------------------------------------------------------

    def validate(self) -> Response:
        return jsonify({"valid": True})

    # --- metrics --------------------------------------------------------------------------

    def query(self) -> Response:
        try:
            start, end = int_arg("from", True), int_arg("to", True)
            text = request.args.get("query")
            if not text:
                raise ValueError("The parameter 'query' is required")
            return jsonify(run_query(self.store.estate, text, start, end, time.time()))
        except (ValueError, QueryError) as exc:
            return errors(400, str(exc))

    # --- monitors -------------------------------------------------------------------------

    def list_monitors(self) -> Response:
        try:
            page, size = int_arg("page"), int_arg("page_size") or 100
        except ValueError as exc:
            return errors(400, str(exc))
        tags = [t for t in (request.args.get("monitor_tags") or "").split(",") if t]
        return jsonify(self.store.list_monitors(request.args.get("name"), tags, page, size))

    def create_monitor(self) -> Response:
        data = body()
        problems = monitor_errors(data)
        if problems:
            return errors(400, *problems)
        return jsonify(self.store.create_monitor(data, time.time()))

    def validate_monitor(self) -> Response:
        problems = monitor_errors(body())
        return errors(400, *problems) if problems else jsonify({})

    def get_monitor(self, monitor_id: int) -> Response:
        monitor = self.store.monitors.get(monitor_id)
        return jsonify(monitor) if monitor else errors(404, "Monitor not found")

    def update_monitor(self, monitor_id: int) -> Response:
        data = body()
        if data is None:
            return errors(400, NOT_AN_OBJECT)
        monitor, problems = self.store.update_monitor(monitor_id, data, time.time())
        if problems:
            return errors(400, *problems)
        return jsonify(monitor) if monitor else errors(404, "Monitor not found")

    def delete_monitor(self, monitor_id: int) -> Response:
        with self.store.lock:
            found = self.store.monitors.pop(monitor_id, None)
        return jsonify({"deleted_monitor_id": monitor_id}) if found else errors(404, "Monitor not found")

    # --- events ---------------------------------------------------------------------------

    def create_event(self) -> Response:
        data = body()
        if data is None:
            return errors(400, NOT_AN_OBJECT)
        problems = event_problems(data)
        if problems:
            return errors(400, *problems)
        response = jsonify({"status": "ok", "event": self.store.add_event(data, time.time())})
        response.status_code = 202
        return response

    def list_events(self) -> Response:
        try:
            start, end = int_arg("start", True), int_arg("end", True)
        except ValueError as exc:
            return errors(400, str(exc))
        sources = [s.strip().lower() for s in (request.args.get("sources") or "").split(",") if s.strip()]
        tags = [t for t in (request.args.get("tags") or "").split(",") if t]
        return jsonify({"status": "ok", "events": self.store.list_events(start, end, sources, tags)})

    def get_event(self, event_id: int) -> Response:
        event = self.store.events.get(event_id)
        return jsonify({"status": "ok", "event": event}) if event else errors(404, "Event not found")

    # --- downtimes ------------------------------------------------------------------------

    def list_downtimes(self) -> Response:
        now = time.time()
        shown = [self.store.show_downtime(d, now) for d in self.store.downtimes.values()]
        if request.args.get("current_only") == "true":
            shown = [d for d in shown if d["active"]]
        return jsonify(shown)

    def create_downtime(self) -> Response:
        data = body()
        if data is None:
            return errors(400, NOT_AN_OBJECT)
        problems = downtime_problems(data, self.store)
        if problems:
            return errors(400, *problems)
        return jsonify(self.store.add_downtime(data, time.time()))

    def get_downtime(self, downtime_id: int) -> Response:
        downtime = self.store.downtimes.get(downtime_id)
        if not downtime:
            return errors(404, "Downtime not found")
        return jsonify(self.store.show_downtime(downtime, time.time()))

    def cancel_downtime(self, downtime_id: int) -> Response:
        downtime = self.store.downtimes.get(downtime_id)
        if downtime is None or downtime["canceled"] is not None:
            return errors(404, "Downtime not found")
        downtime.update(canceled=int(time.time()), disabled=True)
        return Response(status=204)

    # --- usage ----------------------------------------------------------------------------

    def usage_hosts(self) -> Response:
        try:
            start = usage_time("start_hr", True)
            end = usage_time("end_hr", False) or datetime.now(UTC)
        except ValueError as exc:
            return errors(400, str(exc), mimetype=USAGE_JSON)
        if end <= start:
            return errors(400, "end_hr must be after start_hr", mimetype=USAGE_JSON)
        return usage_json(self.usage.hosts(start, end, datetime.now(UTC)))

    def usage_top_avg_metrics(self) -> Response:
        try:
            month, day = usage_time("month", False), usage_time("day", False)
            limit = int_arg("limit") or 500
            offset = int(request.args.get("next_record_id") or 0)
        except ValueError as exc:
            return errors(400, str(exc), mimetype=USAGE_JSON)
        if (month is None) == (day is None):
            return errors(400, "Either month or day should be specified, but not both", mimetype=USAGE_JSON)
        if not 1 <= limit <= 5000:
            return errors(400, f"limit must be between 1 and 5000, got {limit}", mimetype=USAGE_JSON)
        start, end, meta = top_avg_window(month or day, whole_month=month is not None)
        names = [n for value in request.args.getlist("names") for n in value.split(",") if n]
        rows = self.usage.top_avg_metrics(start, end, datetime.now(UTC), names)
        page = rows[offset:offset + limit]
        following = str(offset + limit) if offset + limit < len(rows) else None
        meta["pagination"] = {"limit": limit, "next_record_id": following,
                              "total_number_of_records": len(rows)}
        return usage_json({"metadata": meta, "usage": page})

    def usage_summary(self) -> Response:
        try:
            first = month_start(usage_time("start_month", True))
            last = month_start(usage_time("end_month", False) or first)
        except ValueError as exc:
            return errors(400, str(exc), mimetype=USAGE_JSON)
        now = datetime.now(UTC)
        months, month = [], first
        while month <= last and month <= now:
            months.append(self.usage.month_summary(month, now))
            month = next_month(month)
        total = {f"{key}_sum": sum(m[key] for m in months) for key in (
            "host_top99p", "agent_host_top99p", "infra_host_top99p", "container_avg", "container_hwm")}
        return usage_json({
            "start_date": iso(first), "end_date": iso(last),
            "last_updated": iso(now.replace(minute=0, second=0, microsecond=0)),
            **total, "custom_ts_sum": sum(m["custom_ts_avg"] for m in months), "usage": months,
        })
