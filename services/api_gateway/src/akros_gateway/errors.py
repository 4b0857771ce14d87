"""The API's errors: one JSON shape for all of them, with a clear ``detail`` for people and a
stable ``code`` for programs."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

import akros_intake
from akros_bus import get_logger
from akros_readmodel import LockTimeoutError

_log = get_logger("akros.gateway")


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    QUOTA_EXCEEDED = "quota_exceeded"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"
    HTTP = "http"


class FieldError(BaseModel):
    field: str = Field(
        description="Where the problem is, e.g. 'body.cpu' or 'header.idempotency-key'"
    )
    message: str


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, in words a researcher understands")
    code: ErrorCode
    errors: list[FieldError] = Field(default_factory=list, description="Invalid fields, if any")


class UnauthenticatedError(Exception):
    """No valid bearer token. Only the HTTP front door authenticates its callers (Slack
    verifies the Slack app's), so this is the gateway's own error, not a refusal of the
    domain."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Answer:
    """The HTTP status and error code the API answers with."""

    status: int
    code: ErrorCode


UNAUTHENTICATED = Answer(401, ErrorCode.UNAUTHENTICATED)

# The API's answer to each refusal of the shared intake: the one place statuses are chosen.
ANSWERS: dict[type[akros_intake.RefusedError], Answer] = {
    akros_intake.ForbiddenError: Answer(403, ErrorCode.FORBIDDEN),
    # 403, as the Kubernetes API answers "exceeded quota": the request is well formed, the
    # caller's allowance refuses it, and it may succeed once they free resources.
    akros_intake.QuotaExceededError: Answer(403, ErrorCode.QUOTA_EXCEEDED),
    akros_intake.NotFoundError: Answer(404, ErrorCode.NOT_FOUND),
    akros_intake.ConflictError: Answer(409, ErrorCode.CONFLICT),
    akros_intake.InvalidError: Answer(422, ErrorCode.INVALID),
    akros_intake.UnavailableError: Answer(503, ErrorCode.UNAVAILABLE),
}

# A refusal of a kind the table lacks is a gap in the gateway (a test keeps the table
# complete), not the caller's fault.
_UNMAPPED = Answer(500, ErrorCode.HTTP)


def answer_of(kind: type[akros_intake.RefusedError]) -> Answer:
    """The answer to a refusal of ``kind``: its own entry, or else its nearest base's."""
    for base in kind.__mro__:
        if base in ANSWERS:
            return ANSWERS[base]
    return _UNMAPPED


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Pydantic's error list as field/message pairs: "body.cpu: 'lots' is not a quantity"."""
    return [
        FieldError(
            field=".".join(str(part) for part in item.get("loc", ())) or "body",
            message=str(item.get("msg", "invalid")).removeprefix("Value error, "),
        )
        for item in errors
    ]


def _body(detail: str, code: ErrorCode, errors: list[FieldError] | None = None) -> dict[str, Any]:
    return ErrorBody(detail=detail, code=code, errors=errors or []).model_dump(mode="json")


async def _unauthenticated(_: Request, error: Exception) -> JSONResponse:
    detail = cast(UnauthenticatedError, error).detail  # registered for it only
    return JSONResponse(
        _body(detail, UNAUTHENTICATED.code),
        status_code=UNAUTHENTICATED.status,
        headers={"WWW-Authenticate": "Bearer"},
    )


def body_field(refusal: akros_intake.InvalidError) -> str:
    """Where in the request the invalid field is: the intake names fields as the body spells
    them, and no field at all when only their combination is wrong."""
    return f"body.{refusal.field}" if refusal.field else "body"


async def _refused(_: Request, error: Exception) -> JSONResponse:
    refusal = cast(akros_intake.RefusedError, error)  # registered for the base class only
    answer = answer_of(type(refusal))
    if isinstance(refusal, akros_intake.InvalidError):
        invalid = FieldError(field=body_field(refusal), message=refusal.message)
        detail = f"Invalid request: {invalid.field}: {invalid.message}"
        return JSONResponse(_body(detail, answer.code, [invalid]), status_code=answer.status)
    return JSONResponse(_body(refusal.detail, answer.code), status_code=answer.status)


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    errors = field_errors(cast(RequestValidationError, error).errors())
    detail = "Invalid request: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
    return JSONResponse(_body(detail, ErrorCode.INVALID, errors), status_code=422)


_CODES = {413: ErrorCode.TOO_LARGE, 404: ErrorCode.NOT_FOUND, 401: ErrorCode.UNAUTHENTICATED}


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    """Errors raised by the framework itself (unknown route, wrong method, body too large)."""
    http_error = cast(StarletteHTTPException, error)
    code = _CODES.get(http_error.status_code, ErrorCode.HTTP)
    return JSONResponse(
        _body(str(http_error.detail), code),
        status_code=http_error.status_code,
        headers=http_error.headers,
    )


async def _store_unreachable(request: Request, error: Exception) -> JSONResponse:
    # The caller is told to retry; the operator sees why.
    _log.warning(
        "answered 503: the store is busy or unreachable",
        path=request.url.path,
        error=repr(error),
    )
    detail = "The platform's store is busy or unreachable; try again in a moment."
    return JSONResponse(_body(detail, ErrorCode.UNAVAILABLE), status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UnauthenticatedError, _unauthenticated)
    app.add_exception_handler(akros_intake.RefusedError, _refused)
    for unreachable in (RedisConnectionError, RedisTimeoutError, LockTimeoutError):
        app.add_exception_handler(unreachable, _store_unreachable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def responses(
    *refusals: type[akros_intake.RefusedError], accepted: bool = False
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the ErrorBody for each status an endpoint can answer
    (401 always, then the answer to each kind of refusal it may meet) and, for an accepted
    command, the Location of its request."""
    documented: dict[int | str, dict[str, Any]] = {}
    if accepted:
        documented[202] = {
            "headers": {
                "Location": {
                    "description": "Where to follow the request: /v1/requests/{request_id}",
                    "schema": {"type": "string"},
                }
            }
        }
    for answer in (UNAUTHENTICATED, *(answer_of(kind) for kind in refusals)):
        entry = documented.setdefault(answer.status, {"model": ErrorBody, "description": ""})
        entry["description"] = " or ".join(
            filter(None, [entry["description"], answer.code.value.replace("_", " ")])
        )
    return documented
