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
    api_key_only = {("POST", "/api/v1/events"), ("GET", "/api/v1/validate")}

    def same(given: str | None, expected: str) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected.encode())

    @app.before_request
    def check_keys() -> Response | None:
        need_app = (request.method, request.path) not in api_key_only
        if not same(request.headers.get("DD-API-KEY"), api_key) or (
            need_app and not same(request.headers.get("DD-APPLICATION-KEY"), app_key)
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

    # --- authentication ---------------------------------------------------------------------

    @app.get("/api/v1/validate")
    def validate() -> Response:
        return jsonify({"valid": True})

    # --- metrics --------------------------------------------------------------------------

    @app.get("/api/v1/query")
    def query() -> Response:
        try:
            start, end = int_arg("from", True), int_arg("to", True)
            text = request.args.get("query")
            if not text:
                raise ValueError("The parameter 'query' is required")
            return jsonify(run_query(store.estate, text, start, end, time.time()))
        except (ValueError, QueryError) as exc:
            return errors(400, str(exc))

    # --- monitors -------------------------------------------------------------------------

    @app.get("/api/v1/monitor")
    def list_monitors() -> Response:
        try:
            page, size = int_arg("page"), int_arg("page_size") or 100
        except ValueError as exc:
            return errors(400, str(exc))
        tags = [t for t in (request.args.get("monitor_tags") or "").split(",") if t]
        return jsonify(store.list_monitors(request.args.get("name"), tags, page, size))

    @app.post("/api/v1/monitor")
    def create_monitor() -> Response:
        data = body()
        problems = monitor_errors(data)
        if problems:
            return errors(400, *problems)
        return jsonify(store.create_monitor(data, time.time()))

    @app.post("/api/v1/monitor/validate")
    def validate_monitor() -> Response:
        problems = monitor_errors(body())
        return errors(400, *problems) if problems else jsonify({})

    @app.get("/api/v1/monitor/<int:monitor_id>")
    def get_monitor(monitor_id: int) -> Response:
        monitor = store.monitors.get(monitor_id)
        return jsonify(monitor) if monitor else errors(404, "Monitor not found")

    @app.put("/api/v1/monitor/<int:monitor_id>")
    def update_monitor(monitor_id: int) -> Response:
        data = body()
        if data is None:
            return errors(400, "Invalid JSON: the body must be a JSON object")
        monitor, problems = store.update_monitor(monitor_id, data, time.time())
        if problems:
            return errors(400, *problems)
        return jsonify(monitor) if monitor else errors(404, "Monitor not found")

    @app.delete("/api/v1/monitor/<int:monitor_id>")
    def delete_monitor(monitor_id: int) -> Response:
        with store.lock:
            found = store.monitors.pop(monitor_id, None)
        return jsonify({"deleted_monitor_id": monitor_id}) if found else errors(404, "Monitor not found")

    # --- events ---------------------------------------------------------------------------

    @app.post("/api/v1/events")
    def create_event() -> Response:
        data = body()
        if data is None:
            return errors(400, "Invalid JSON: the body must be a JSON object")
        problems = [f"Event {key} is required" for key in ("title", "text") if not isinstance(data.get(key), str)]
        if data.get("alert_type", "info") not in EVENT_ALERT_TYPES:
            problems.append(f"Invalid alert_type {data['alert_type']!r}")
        if data.get("priority", "normal") not in ("normal", "low"):
            problems.append(f"Invalid priority {data['priority']!r}: expected normal or low")
        if len(data.get("text") or "") > 4000:
            problems.append("Event text must be 4000 characters or fewer")
        if problems:
            return errors(400, *problems)
        response = jsonify({"status": "ok", "event": store.add_event(data, time.time())})
        response.status_code = 202
        return response

    @app.get("/api/v1/events")
    def list_events() -> Response:
        try:
            start, end = int_arg("start", True), int_arg("end", True)
        except ValueError as exc:
            return errors(400, str(exc))
        sources = [s.strip().lower() for s in (request.args.get("sources") or "").split(",") if s.strip()]
        tags = [t for t in (request.args.get("tags") or "").split(",") if t]
        return jsonify({"status": "ok", "events": store.list_events(start, end, sources, tags)})

    @app.get("/api/v1/events/<int:event_id>")
    def get_event(event_id: int) -> Response:
        event = store.events.get(event_id)
        return jsonify({"status": "ok", "event": event}) if event else errors(404, "Event not found")

    # --- downtimes ------------------------------------------------------------------------

    @app.get("/api/v1/downtime")
    def list_downtimes() -> Response:
        now = time.time()
        shown = [store.show_downtime(d, now) for d in store.downtimes.values()]
        if request.args.get("current_only") == "true":
            shown = [d for d in shown if d["active"]]
        return jsonify(shown)

    @app.post("/api/v1/downtime")
    def create_downtime() -> Response:
        data = body()
        if data is None:
            return errors(400, "Invalid JSON: the body must be a JSON object")
        problems = []
        if not isinstance(data.get("scope"), list) or not data["scope"]:
            problems.append("Invalid scope: scope is required (for example [\"*\"])")
        start, end = data.get("start") or time.time(), data.get("end")
        if end is not None and end <= start:
            problems.append(f"Invalid end {end}: the downtime must end after it starts ({int(start)})")
        if data.get("monitor_id") is not None and data["monitor_id"] not in store.monitors:
            problems.append(f"Monitor {data['monitor_id']} not found")
        if problems:
            return errors(400, *problems)
        return jsonify(store.add_downtime(data, time.time()))

    @app.get("/api/v1/downtime/<int:downtime_id>")
    def get_downtime(downtime_id: int) -> Response:
        downtime = store.downtimes.get(downtime_id)
        return jsonify(store.show_downtime(downtime, time.time())) if downtime else errors(404, "Downtime not found")

    @app.delete("/api/v1/downtime/<int:downtime_id>")
    def cancel_downtime(downtime_id: int) -> Response:
        downtime = store.downtimes.get(downtime_id)
        if downtime is None or downtime["canceled"] is not None:
            return errors(404, "Downtime not found")
        downtime.update(canceled=int(time.time()), disabled=True)
        return Response(status=204)

    # --- usage ----------------------------------------------------------------------------

    def usage_json(payload: dict) -> Response:
        response = jsonify(payload)
        response.content_type = USAGE_JSON
        return response

    def usage_time(name: str, required: bool) -> datetime | None:
        value = request.args.get(name)
        if value is None:
            if required:
                raise ValueError(f"The parameter '{name}' is required")
            return None
        return parse_time(value, name)

    @app.get("/api/v1/usage/hosts")
    def usage_hosts() -> Response:
        try:
            start = usage_time("start_hr", True)
            end = usage_time("end_hr", False) or datetime.now(UTC)
        except ValueError as exc:
            return errors(400, str(exc), mimetype=USAGE_JSON)
        if end <= start:
            return errors(400, "end_hr must be after start_hr", mimetype=USAGE_JSON)
        return usage_json(usage.hosts(start, end, datetime.now(UTC)))

    @app.get("/api/v1/usage/top_avg_metrics")
    def usage_top_avg_metrics() -> Response:
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
        if month is not None:
            start, end = month_start(month), next_month(month)
            meta = {"month": iso(start)}
        else:
            start = day.replace(hour=0, minute=0, second=0, microsecond=0)
            end = datetime.fromtimestamp(start.timestamp() + 86400, UTC)
            meta = {"day": iso(start)}
        names = request.args.getlist("names") or []
        names = [n for value in names for n in value.split(",") if n]
        rows = usage.top_avg_metrics(start, end, datetime.now(UTC), names)
        page = rows[offset:offset + limit]
        following = str(offset + limit) if offset + limit < len(rows) else None
        meta["pagination"] = {"limit": limit, "next_record_id": following, "total_number_of_records": len(rows)}
        return usage_json({"metadata": meta, "usage": page})

    @app.get("/api/v1/usage/summary")
    def usage_summary() -> Response:
        try:
            first = month_start(usage_time("start_month", True))
            last = month_start(usage_time("end_month", False) or first)
        except ValueError as exc:
            return errors(400, str(exc), mimetype=USAGE_JSON)
        now = datetime.now(UTC)
        months, month = [], first
        while month <= last and month <= now:
            months.append(usage.month_summary(month, now))
            month = next_month(month)
        total = {f"{key}_sum": sum(m[key] for m in months) for key in (
            "host_top99p", "agent_host_top99p", "infra_host_top99p", "container_avg", "container_hwm")}
        return usage_json({
            "start_date": iso(first), "end_date": iso(last), "last_updated": iso(now.replace(minute=0, second=0,
                                                                                            microsecond=0)),
            **total, "custom_ts_sum": sum(m["custom_ts_avg"] for m in months), "usage": months,
        })

    def _mimetype() -> str:
        return USAGE_JSON if request.path.startswith("/api/v1/usage/") else "application/json"

    return app
