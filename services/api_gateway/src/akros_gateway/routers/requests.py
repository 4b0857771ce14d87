"""/v1/requests/{id}: what became of an accepted command."""

from fastapi import APIRouter

from akros_gateway.context import ActorDep, GatewayDep
from akros_gateway.errors import responses
from akros_gateway.schemas import RequestStatus
from akros_intake import ForbiddenError, InvalidError, NotFoundError
from akros_policy import may_act_on

router = APIRouter(prefix="/v1/requests", tags=["requests"])


@router.get(
    "/{request_id}",
    response_model=RequestStatus,
    responses=responses(ForbiddenError, NotFoundError, InvalidError),
    summary="The state of a request: pending, applied, or failed with the reason",
)
async def get_request(request_id: str, actor: ActorDep, gateway: GatewayDep) -> RequestStatus:
    view = await gateway.read_model.request(request_id)
    if view is None:
        raise NotFoundError(f"No request '{request_id}' (requests are kept for 7 days).")
    if view.actor != actor.user_id and not may_act_on(actor, view.owner or view.actor):
        raise ForbiddenError("This request is someone else's.")
    return RequestStatus.of(view)
