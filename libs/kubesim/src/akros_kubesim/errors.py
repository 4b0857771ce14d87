"""API errors and the metav1.Status objects that carry them to clients."""

from dataclasses import dataclass, field
from typing import Any

_PHRASE_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass
class Cause:
    """One field-level problem, as metav1.StatusCause: reason is e.g. FieldValueRequired."""

    reason: str
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class ApiError(Exception):
    code: int
    message: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.reason:
            self.reason = _PHRASE_REASONS.get(self.code, "Unknown")

    def status(self) -> dict[str, Any]:
        """The Status with its fields in the order of metav1.Status (details before code).

        The API server's JSON follows the Go struct's field order, and clients that print the
        body (the official client's FailToCreateError, kubectl -v) show it as sent.
        """
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        details = dict(self.details)
        if self.causes:
            details["causes"] = [cause.to_dict() for cause in self.causes]
        if details:
            body["details"] = details
        body["code"] = self.code
        return body


def _details(kind_plural: str, name: str, group: str) -> dict[str, Any]:
    """metav1.StatusDetails in its field order: name, group (omitted when empty), kind."""
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind_plural
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(plural, group)} "{name}" not found',
        details=_details(plural, name, group),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(plural, group)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(plural, name, group),
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        details=_details(plural, name, group),
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid, worded like the API server: `Pod "x" is invalid: spec.y: Required value`."""
    summary = ", ".join(f"{c.field}: {c.message}" for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    qualified_kind = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{qualified_kind} "{name}" is invalid: {summary}',
        details=_details(kind, name, group),
        causes=causes,
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "the server does not allow this method on the requested resource")


def gone(message: str) -> ApiError:
    return ApiError(410, message)
