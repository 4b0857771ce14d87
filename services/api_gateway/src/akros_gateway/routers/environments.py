"""/v1/environments: create, list, show, resize, stop, start, extend and delete research
environments."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from akros_gateway.access import owners_to_list
from akros_gateway.context import ActorDep, Gateway, GatewayDep, RequestIdDep
from akros_gateway.errors import responses
from akros_gateway.intake import (
    accept_create,
    accept_delete,
    accept_extend,
    accept_resize,
    accept_stop_or_start,
)
from akros_gateway.routers.accepted import accepted
from akros_gateway.schemas import (
    Accepted,
    CreateEnvironmentBody,
    Environment,
    EnvironmentList,
    ExtendEnvironmentBody,
    ResizeEnvironmentBody,
)
from akros_intake import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    QuotaExceededError,
    require_access,
)
from akros_msgs import Actor, StartEnvironment, StopEnvironment
from akros_msgs.names import UserId
from akros_readmodel import EnvironmentView

router = APIRouter(prefix="/v1/environments", tags=["environments"])

UserFilter = Annotated[
    UserId | None,
    Query(description="Whose environments: admins may name anyone, researchers only themselves"),
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(
        ForbiddenError, QuotaExceededError, ConflictError, InvalidError, accepted=True
    ),
    summary="Ask for a new environment",
    description="Checks the request and the caller's quota, then queues it: 202 with the "
    "request id and `Location: /v1/requests/{id}`. Over quota is refused with 403 "
    "(code `quota_exceeded`) and nothing is queued.\n\n"
    "Resources come from a catalog `profile`, from the fields, or both: the profile supplies "
    "`cpu`, `memory`, `gpus` and `dedicated_cores`, and each of those given in the body "
    "overrides the profile's value (the environment still counts as of that profile); a "
    "profile marked `underuse_exempt` is a ceiling: its cpu, memory and gpus may be lowered, "
    "not raised (422 naming the field). Without a profile, `cpu` and `memory` are required. "
    "A profile the catalog does not offer is refused with 422 naming `body.profile`.",
)
async def create_environment(
    body: CreateEnvironmentBody,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
) -> Accepted:
    request = await accept_create(gateway, actor, body, request_id)
    return accepted(request, response)


@router.get("", response_model=EnvironmentList, responses=responses(ForbiddenError, InvalidError))
async def list_environments(
    actor: ActorDep, gateway: GatewayDep, user: UserFilter = None
) -> EnvironmentList:
    if user is not None:
        require_access(actor, user)
    views = await gateway.read_model.environments(owners_to_list(actor, user))
    return EnvironmentList(environments=[Environment.of(view) for view in views])


@router.get(
    "/{name}",
    response_model=Environment,
    responses=responses(ForbiddenError, NotFoundError, InvalidError),
)
async def get_environment(
    name: str, actor: ActorDep, gateway: GatewayDep, user: UserFilter = None
) -> Environment:
    return Environment.of(await environment_view(gateway, actor, user or actor.user_id, name))


async def environment_view(
    gateway: Gateway, actor: Actor, owner: str, name: str
) -> EnvironmentView:
    """The view of ``owner``'s environment ``name``, for a caller who may see it."""
    require_access(actor, owner)
    view = await gateway.read_model.environment(owner, name)
    if view is None:
        raise NotFoundError(f"{owner} has no environment named '{name}'.")
    return view


@router.delete(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, accepted=True),
    summary="Delete an environment",
    description="The work volume is kept (GET /v1/volumes) unless `purge_volume=true`.",
)
async def delete_environment(
    name: str,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
    user: UserFilter = None,
    purge_volume: Annotated[
        bool, Query(description="Delete the work volume too, for good")
    ] = False,
) -> Accepted:
    owner = user or actor.user_id
    request = await accept_delete(
        gateway, actor, owner, name, purge_volume=purge_volume, request_id=request_id
    )
    return accepted(request, response)


@router.post(
    "/{name}/stop",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, accepted=True),
    summary="Stop an environment",
    description="Scales its workload to zero and keeps its definition, volume, URL and name: "
    "once stopped (the request is applied when its pod is gone) it holds no CPU, memory or "
    "GPUs in the quota, and still counts as one of the owner's environments. Only a ready "
    "environment can be stopped (409 otherwise, saying what it is doing).",
)
async def stop_environment(
    name: str,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
    user: UserFilter = None,
) -> Accepted:
    owner = user or actor.user_id
    request = await accept_stop_or_start(gateway, actor, owner, name, request_id, StopEnvironment)
    return accepted(request, response)


@router.post(
    "/{name}/start",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(
        ForbiddenError,
        NotFoundError,
        ConflictError,
        QuotaExceededError,
        InvalidError,
        accepted=True,
    ),
    summary="Start a stopped environment",
    description="Brings it back with the same volume (on the node the volume is stored on, "
    "for local storage), URL and name; its request goes through the stages of a create "
    "(`GET /v1/requests/{id}`). Refused with 403 `quota_exceeded` when the quota no longer "
    "has room for what it reserves, and 409 unless it is stopped.",
)
async def start_environment(
    name: str,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
    user: UserFilter = None,
) -> Accepted:
    owner = user or actor.user_id
    request = await accept_stop_or_start(gateway, actor, owner, name, request_id, StartEnvironment)
    return accepted(request, response)


@router.post(
    "/{name}/extend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, accepted=True),
    summary="Move an environment's expiry on",
    description="From its expiry (or from now, once that has passed) by `hours`, by default "
    "and at most the platform's extension (`AKROS_EXTEND_BY_S`, 24 h), and never further "
    "than that ahead of now. At its expiry an environment is stopped, never deleted, and its "
    "owner is told ahead of it. 409 for an environment without an expiry.",
)
async def extend_environment(
    name: str,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
    body: ExtendEnvironmentBody | None = None,
    user: UserFilter = None,
) -> Accepted:
    owner = user or actor.user_id
    hours = None if body is None else body.hours
    request = await accept_extend(gateway, actor, owner, name, hours, request_id)
    return accepted(request, response)


@router.patch(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(
        ForbiddenError,
        NotFoundError,
        ConflictError,
        QuotaExceededError,
        InvalidError,
        accepted=True,
    ),
    summary="Resize an environment",
    description="Changes its CPU, memory, GPUs or dedicated cores (those not given stay), "
    "keeping its volume, URL and name. A ready environment is restarted with them, within "
    "the quota (403 `quota_exceeded`), and its request goes through the stages of a start; a "
    "stopped one keeps them for its next start. A start that fails leaves it stopped, saying "
    "why. 409 while it is starting, stopping or being deleted.",
)
async def resize_environment(
    name: str,
    body: ResizeEnvironmentBody,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
    user: UserFilter = None,
) -> Accepted:
    owner = user or actor.user_id
    request = await accept_resize(gateway, actor, owner, name, body, request_id)
    return accepted(request, response)
