"""Refuse request bodies larger than the configured limit with a JSON 413.

A body whose Content-Length is too large is refused before any of it is read; a body sent
without a length (chunked) is counted as it arrives and refused once it passes the limit.
Starlette's own limiter answers in plain text and replaces the application's response, so
the gateway keeps this small one to answer in the API's error shape.
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from akros_gateway.errors import ErrorBody, ErrorCode


def too_large_detail(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _refuse(send, self.max_body_bytes)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException passes FastAPI's body parsing untouched and reaches
                    # the API's error handler, which answers 413 in the usual shape.
                    raise HTTPException(413, too_large_detail(self.max_body_bytes))
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(send: Send, limit: int) -> None:
    body = ErrorBody(detail=too_large_detail(limit), code=ErrorCode.TOO_LARGE)
    payload = body.model_dump_json().encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
