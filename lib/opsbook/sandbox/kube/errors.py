"""API errors as the Kubernetes API server reports them: a `Status` object with a reason."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


class ApiError(Exception):
    """An error answer: HTTP code, reason, message, and the Status `details`."""

    def __init__(self, code: int, message: str, reason: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # None: the code's usual reason; "" is StatusReasonUnknown (a plain error the server did not classify)
        self.reason = REASONS.get(code, "") if reason is None else reason
        # as on the API server, empty fields (the core group's "") are left out
        self.details = {k: v for k, v in details.items() if v not in (None, "")}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body


def success_status(name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    }


def not_found(group_resource: str, name: str, group: str, plural: str) -> ApiError:
    return ApiError(404, f'{group_resource} "{name}" not found', name=name, group=group, kind=plural)


def already_exists(group_resource: str, name: str, group: str, plural: str) -> ApiError:
    return ApiError(
        409, f'{group_resource} "{name}" already exists', "AlreadyExists", name=name, group=group, kind=plural
    )


def conflict(group_resource: str, name: str, group: str, plural: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        name=name,
        group=group,
        kind=plural,
    )


def invalid(kind_group: str, name: str, group: str, kind: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid with field causes, worded like the API server's validation errors."""
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    return ApiError(
        422, f'{kind_group} "{name}" is invalid: {summary}', name=name, group=group, kind=kind, causes=causes
    )
