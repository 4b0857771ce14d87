"""/v1/volumes: work volumes kept after their environment was deleted."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from akros_gateway.context import ActorDep, GatewayDep, RequestIdDep
from akros_gateway.errors import responses
from akros_gateway.intake import accept_volume_delete
from akros_gateway.routers.accepted import accepted
from akros_gateway.schemas import Accepted, Volume, VolumeList
from akros_intake import ConflictError, ForbiddenError, InvalidError, NotFoundError, require_access
from akros_msgs.names import UserId

router = APIRouter(prefix="/v1/volumes", tags=["volumes"])

UserFilter = Annotated[
    UserId | None, Query(description="Whose volumes: admins may name anyone; default yourself")
]


@router.get("", response_model=VolumeList, responses=responses(ForbiddenError, InvalidError))
async def list_volumes(actor: ActorDep, gateway: GatewayDep, user: UserFilter = None) -> VolumeList:
    owner = user or actor.user_id
    require_access(actor, owner)
    views = await gateway.read_model.volumes(owner)
    return VolumeList(volumes=[Volume.of(view) for view in views])


@router.delete(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, accepted=True),
    summary="Delete a kept volume for good",
    description="409 while an environment of the same name still exists.",
)
async def delete_volume(
    name: str,
    actor: ActorDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
    user: UserFilter = None,
) -> Accepted:
    owner = user or actor.user_id
    request = await accept_volume_delete(gateway, actor, owner, name, request_id)
    return accepted(request, response)
