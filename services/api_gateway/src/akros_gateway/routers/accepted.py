"""The answer to an accepted command, shared by the routers that queue commands."""

from fastapi import Response

from akros_gateway.schemas import Accepted
from akros_readmodel import RequestView


def request_location(request_id: str) -> str:
    return f"/v1/requests/{request_id}"


def accepted(request: RequestView, response: Response) -> Accepted:
    response.headers["Location"] = request_location(request.request_id)
    return Accepted(request_id=request.request_id, status=request.state)
