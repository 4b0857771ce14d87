"""/v1/environments/{name}/logs and /events: what an environment's program printed and what
the cluster said about it, read from the cluster (read-only) rather than the read model."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from akros_gateway.context import ActorDep, Gateway, GatewayDep
from akros_gateway.errors import responses
from akros_gateway.routers.environments import UserFilter
from akros_gateway.schemas import ClusterEventOut, EnvironmentEvents
from akros_intake import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    UnavailableError,
    require_access,
)
from akros_intake.cluster_reads import EnvironmentReader
from akros_readmodel import EnvironmentStatus, EnvironmentView

router = APIRouter(prefix="/v1/environments", tags=["environments"])

DEFAULT_TAIL_LINES = 100
MAX_TAIL_LINES = 10_000
_TEXT = "text/plain; charset=utf-8"


async def _environment(
    gateway: Gateway, actor: ActorDep, owner: str, name: str
) -> tuple[EnvironmentView, EnvironmentReader]:
    require_access(actor, owner)
    view = await gateway.read_model.environment(owner, name)
    if view is None:
        raise NotFoundError(f"{owner} has no environment named '{name}'.")
    if gateway.environment_reader is None:
        raise UnavailableError("The gateway has no access to the cluster: logs and events are off.")
    return view, gateway.environment_reader


@router.get(
    "/{name}/logs",
    response_class=Response,
    responses={
        200: {"content": {_TEXT: {"schema": {"type": "string"}}}, "description": "The log"},
        **responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, UnavailableError),
    },
    summary="What an environment's program printed",
    description="The last `tail` lines of its log, as `kubectl logs` shows them. With "
    "`follow=true` the answer is a stream: those lines, then each new one as it is written, "
    "until the program ends, the environment is stopped or deleted, or the caller hangs up. "
    "409 when it has no running container (stopped, or not placed on a node yet: its events "
    "say why). Owners see their own; admins anyone's (`user`).",
)
async def environment_logs(
    name: str,
    actor: ActorDep,
    gateway: GatewayDep,
    user: UserFilter = None,
    tail: Annotated[
        int, Query(ge=0, le=MAX_TAIL_LINES, description="How many of the last lines")
    ] = DEFAULT_TAIL_LINES,
    follow: Annotated[bool, Query(description="Keep sending new lines as they come")] = False,
) -> Response:
    owner = user or actor.user_id
    _, reader = await _environment(gateway, actor, owner, name)
    if follow:
        stream = await reader.follow_log(owner, name, tail)
        # No buffering on the way (nginx, the ingress): each line reaches the reader at once.
        return StreamingResponse(
            stream,
            media_type=_TEXT,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return PlainTextResponse(await reader.log(owner, name, tail), media_type=_TEXT)


@router.get(
    "/{name}/events",
    response_model=EnvironmentEvents,
    responses=responses(ForbiddenError, NotFoundError, InvalidError, UnavailableError),
    summary="What the cluster said about an environment, and why it is pending",
    description="The Events about its pods, volume and workload, oldest first (the cluster "
    "keeps them about an hour): scheduling, image pulls, crashes, preemption, each also in "
    "words. While it is pending, `why_pending` says what it waits for. Owners see their own; "
    "admins anyone's (`user`).",
)
async def environment_events(
    name: str, actor: ActorDep, gateway: GatewayDep, user: UserFilter = None
) -> EnvironmentEvents:
    owner = user or actor.user_id
    view, reader = await _environment(gateway, actor, owner, name)
    history = await reader.events(owner, name)
    return EnvironmentEvents(
        owner=owner,
        name=name,
        status=view.status,
        why_pending=history.why_pending() if view.status is EnvironmentStatus.PENDING else None,
        events=[ClusterEventOut.of(event) for event in history.events],
    )
