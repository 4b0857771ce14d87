"""/v1/cluster: the nodes' capacity, requests and use, for the admin dashboard (admins only).

Read from the read model (key ``akros:rm:cluster``), which the monitor keeps current from its
watches of nodes and pods; the gateway never talks to the cluster itself.
"""

from fastapi import APIRouter

from akros_gateway.context import AdminDep, GatewayDep
from akros_gateway.errors import responses
from akros_gateway.schemas import ClusterOut
from akros_intake import ForbiddenError

router = APIRouter(prefix="/v1/cluster", tags=["cluster"])


@router.get(
    "",
    response_model=ClusterOut,
    responses=responses(ForbiddenError),
    summary="Each node's allocatable CPU, memory and GPUs against requested and used",
)
async def cluster(_: AdminDep, gateway: GatewayDep) -> ClusterOut:
    return ClusterOut.of(await gateway.read_model.cluster())
