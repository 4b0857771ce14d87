"""/healthz and /metrics, for Kubernetes probes and Prometheus; no token needed."""

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from akros_gateway.context import GatewayDep
from akros_gateway.schemas import Health

router = APIRouter(tags=["operations"])

_PING_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(gateway: GatewayDep) -> Response:
    try:
        async with asyncio.timeout(_PING_TIMEOUT_S):
            reachable = bool(await gateway.redis.ping())
    except (RedisError, OSError, TimeoutError):
        reachable = False
    health = Health(status="ok" if reachable else "unavailable", redis=reachable)
    return JSONResponse(health.model_dump(), status_code=200 if reachable else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(gateway: GatewayDep) -> Response:
    return Response(gateway.metrics.render(), media_type=gateway.metrics.content_type)
