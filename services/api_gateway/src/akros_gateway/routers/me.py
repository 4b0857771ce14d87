"""/v1/me and /v1/catalog: who the caller is and what they may ask for."""

from fastapi import APIRouter

from akros_gateway.context import ActorDep, GatewayDep
from akros_gateway.errors import responses
from akros_gateway.schemas import Me, QuotaOut
from akros_policy import Catalog

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/me", response_model=Me, responses=responses())
async def me(actor: ActorDep, gateway: GatewayDep) -> Me:
    holding = await gateway.read_model.holding(actor.user_id)
    return Me(
        user=actor.user_id,
        role=actor.role,
        quota=QuotaOut.of(gateway.intake.quotas.for_user(actor.user_id)),
        holding=QuotaOut.of(holding),
    )


@router.get(
    "/catalog",
    response_model=Catalog,
    responses=responses(),
    summary="The images and resource profiles admins offer",
)
async def catalog(_: ActorDep, gateway: GatewayDep) -> Catalog:
    return gateway.intake.catalog
