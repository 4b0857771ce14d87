"""Usage and notifications, read from the read model, where the monitor writes them: each
environment's downsampled history, each user's latest totals (admins) and each owner's
newest notifications."""

from collections import defaultdict

from fastapi import APIRouter

from akros_gateway.context import ActorDep, AdminDep, GatewayDep
from akros_gateway.errors import responses
from akros_gateway.routers.environments import UserFilter
from akros_gateway.schemas import EnvironmentUsage, NotificationList, UsageByUser, UserUsage
from akros_intake import ForbiddenError, InvalidError, NotFoundError, require_access
from akros_readmodel import UsagePoint

router = APIRouter(tags=["usage"])


@router.get(
    "/v1/environments/{name}/usage",
    response_model=EnvironmentUsage,
    responses=responses(ForbiddenError, NotFoundError, InvalidError),
    summary="An environment's CPU, memory and GPU use against its requests, oldest first",
    description="One point per history step (the means over it), as far back as the "
    "history reaches (7 days by default). Owners see their own; admins anyone's (`user`).",
)
async def environment_usage(
    name: str, actor: ActorDep, gateway: GatewayDep, user: UserFilter = None
) -> EnvironmentUsage:
    owner = user or actor.user_id
    require_access(actor, owner)
    points = await gateway.read_model.usage_history(owner, name)
    if not points and await gateway.read_model.environment(owner, name) is None:
        raise NotFoundError(f"{owner} has no environment named '{name}'.")
    return EnvironmentUsage(owner=owner, name=name, points=points)


def _totals(user: str, points: list[UsagePoint]) -> UserUsage:
    return UserUsage(
        user=user,
        environments=len(points),
        cpu_requested_millis=sum(p.cpu_requested_millis for p in points),
        cpu_used_millis=sum(p.cpu_used_millis for p in points),
        memory_requested_bytes=sum(p.memory_requested_bytes for p in points),
        memory_used_bytes=sum(p.memory_used_bytes for p in points),
        gpus=sum(p.gpus for p in points),
    )


@router.get(
    "/v1/usage",
    response_model=UsageByUser,
    responses=responses(ForbiddenError),
    summary="Per user, the latest use of all their environments against their requests",
)
async def usage_by_user(_: AdminDep, gateway: GatewayDep) -> UsageByUser:
    by_owner: dict[str, list[UsagePoint]] = defaultdict(list)
    for (owner, _name), point in (await gateway.read_model.latest_usage()).items():
        by_owner[owner].append(point)
    return UsageByUser(users=[_totals(user, by_owner[user]) for user in sorted(by_owner)])


@router.get(
    "/v1/notifications",
    response_model=NotificationList,
    summary="The caller's newest notifications (such as under-used environments), newest first",
)
async def notifications(actor: ActorDep, gateway: GatewayDep) -> NotificationList:
    return NotificationList(notifications=await gateway.read_model.notifications(actor.user_id))
