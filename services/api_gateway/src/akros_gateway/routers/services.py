"""/v1/services: in-house services deployed from a JSON spec (admins only)."""

import json

from fastapi import APIRouter, Response, status

from akros_gateway.context import ActorDep, AdminDep, GatewayDep, RequestIdDep
from akros_gateway.errors import responses
from akros_gateway.intake import accept_deploy, accept_service_delete
from akros_gateway.routers.accepted import accepted
from akros_gateway.schemas import Accepted, ServiceList
from akros_intake import ConflictError, ForbiddenError, InvalidError, NotFoundError
from akros_msgs.services import ServiceSpec
from akros_readmodel import ServiceView

router = APIRouter(prefix="/v1/services", tags=["services"])

_SCHEMA = json.dumps(ServiceSpec.model_json_schema())
_SCHEMA_MEDIA_TYPE = "application/schema+json"


@router.get(
    "/schema",
    response_class=Response,
    responses={
        **responses(),
        200: {
            "content": {_SCHEMA_MEDIA_TYPE: {}},
            "description": "A JSON Schema (draft 2020-12) document",
        },
    },
    summary="The JSON Schema of a service spec",
    description="What POST and PUT accept; the dashboard's editor validates against it.",
)
async def service_schema(_: ActorDep) -> Response:
    return Response(_SCHEMA, media_type=_SCHEMA_MEDIA_TYPE)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, ConflictError, InvalidError, accepted=True),
    summary="Deploy a new service",
    description="Queues a Deployment, a Service (when it has ports) and an autoscaler (when "
    "it has `autoscaling`). 409 when the name is taken: PUT updates.",
)
async def create_service(
    spec: ServiceSpec,
    actor: AdminDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
) -> Accepted:
    request = await accept_deploy(gateway, actor, spec, request_id, update=False)
    return accepted(request, response)


@router.get("", response_model=ServiceList, responses=responses(ForbiddenError))
async def list_services(_: AdminDep, gateway: GatewayDep) -> ServiceList:
    return ServiceList(services=await gateway.read_model.services())


@router.get(
    "/{name}",
    response_model=ServiceView,
    responses=responses(ForbiddenError, NotFoundError, InvalidError),
)
async def get_service(name: str, _: AdminDep, gateway: GatewayDep) -> ServiceView:
    view = await gateway.read_model.service(name)
    if view is None:
        raise NotFoundError(f"There is no service named '{name}'.")
    return view


@router.put(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, accepted=True),
    summary="Change a service's spec",
    description="Objects that already match are left alone: an unchanged spec restarts "
    "nothing. Removing `autoscaling` deletes the autoscaler.",
)
async def update_service(
    name: str,
    spec: ServiceSpec,
    actor: AdminDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
) -> Accepted:
    if spec.name != name:
        raise InvalidError("name", f"must be '{name}', the service this request updates")
    request = await accept_deploy(gateway, actor, spec, request_id, update=True)
    return accepted(request, response)


@router.delete(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError, accepted=True),
    summary="Delete a service: its Deployment, Service and autoscaler",
)
async def delete_service(
    name: str,
    actor: AdminDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    response: Response,
) -> Accepted:
    request = await accept_service_delete(gateway, actor, name, request_id)
    return accepted(request, response)
