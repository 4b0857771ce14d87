"""The API's errors: one JSON shape for all of them, with a clear ``detail`` for people and a
stable ``code`` for programs."""

from collections.abc import Sequence
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


class ApiError(Exception):
    """An error the API answers with ``status`` and an ErrorBody."""

    status = 500
    code = ErrorCode.HTTP

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.errors = errors or []


class UnauthenticatedError(ApiError):
    status = 401
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(ApiError):
    status = 403
    code = ErrorCode.FORBIDDEN


class QuotaExceededError(ApiError):
    """403, as the Kubernetes API answers "exceeded quota": the request is well formed, the
    caller's allowance refuses it, and it may succeed once they free resources."""

    status = 403
    code = ErrorCode.QUOTA_EXCEEDED


class NotFoundError(ApiError):
    status = 404
    code = ErrorCode.NOT_FOUND


class ConflictError(ApiError):
    status = 409
    code = ErrorCode.CONFLICT


class InvalidError(ApiError):
    status = 422
    code = ErrorCode.INVALID

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Invalid request: {field}: {message}",
            errors=[FieldError(field=field, message=message)],
        )


class UnavailableError(ApiError):
    status = 503
    code = ErrorCode.UNAVAILABLE


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


async def _api_error(_: Request, error: Exception) -> JSONResponse:
    api_error = cast(ApiError, error)  # registered for ApiError only
    return JSONResponse(
        _body(api_error.detail, api_error.code, api_error.errors),
        status_code=api_error.status,
        headers=api_error.headers,
    )


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


def api_error_of(refusal: akros_intake.RefusedError) -> ApiError:
    """The API's answer to a refusal of the shared intake."""
    if isinstance(refusal, akros_intake.InvalidError):
        return InvalidError(f"body.{refusal.field}", refusal.message)
    kinds: dict[type[akros_intake.RefusedError], type[ApiError]] = {
        akros_intake.ForbiddenError: ForbiddenError,
        akros_intake.NotFoundError: NotFoundError,
        akros_intake.ConflictError: ConflictError,
        akros_intake.QuotaExceededError: QuotaExceededError,
        akros_intake.UnavailableError: UnavailableError,
    }
    return kinds.get(type(refusal), ApiError)(refusal.detail)


async def _refused(request: Request, error: Exception) -> JSONResponse:
    return await _api_error(request, api_error_of(cast(akros_intake.RefusedError, error)))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(akros_intake.RefusedError, _refused)
    for unreachable in (RedisConnectionError, RedisTimeoutError, LockTimeoutError):
        app.add_exception_handler(unreachable, _store_unreachable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def responses(*errors: type[ApiError], accepted: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the ErrorBody for each status an endpoint can answer
    (and, for an accepted command, the Location of its request)."""
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
    every: tuple[type[ApiError], ...] = (UnauthenticatedError, *errors)
    for error in every:
        entry = documented.setdefault(error.status, {"model": ErrorBody, "description": ""})
        entry["description"] = " or ".join(
            filter(None, [entry["description"], error.code.value.replace("_", " ")])
        )
    return documented
