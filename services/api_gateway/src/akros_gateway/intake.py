"""The HTTP front door of the shared intake (akros_intake): the request body becomes a command,
the shared accept sequence checks, records and publishes it, and its refusals become API
errors through the handlers in ``errors``."""

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from akros_gateway.access import owner_for_create
from akros_gateway.context import Gateway
from akros_gateway.errors import field_errors
from akros_gateway.schemas import CreateEnvironmentBody, ResizeEnvironmentBody
from akros_intake import (
    Accepted,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    check_image,
    require_access,
    with_profile,
)
from akros_msgs import (
    Actor,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    ResizeEnvironment,
    StartEnvironment,
    StopEnvironment,
)
from akros_msgs.names import ResourceName
from akros_msgs.quantity import format_cpu, format_memory
from akros_msgs.services import DeleteService, DeployService, ServiceSpec
from akros_readmodel import RequestView


def build_create(
    actor: Actor, fields: Mapping[str, Any], owner: str, request_id: str
) -> CreateEnvironment:
    """The command of the body's ``fields`` (its profile applied); the command's own
    cross-field rules (whole CPUs for dedicated cores, a GPU model only with GPUs) are refused
    as an invalid body, no one field being at fault."""
    try:
        return CreateEnvironment(request_id=request_id, actor=actor, owner=owner, **fields)
    except ValidationError as error:
        problems = field_errors(error.errors(include_url=False))
        message = "; ".join(p.message for p in problems)
        raise InvalidError("", message) from error


_RESOURCE_NAME: TypeAdapter[str] = TypeAdapter(ResourceName)


def require_nameable(name: str, not_found: str) -> None:
    """404 for a path name no object can have (such as '0'), as for any name that is not there.

    Checked before the command is built: the command's own validation would otherwise raise
    inside the handler and answer 500.
    """
    try:
        _RESOURCE_NAME.validate_python(name)
    except ValidationError:
        raise NotFoundError(not_found) from None


def _counted(gateway: Gateway, accepted: Accepted) -> RequestView:
    if not accepted.replayed:
        gateway.metrics.commands.labels(accepted.request.command_type).inc()
    return accepted.request


async def accept_create(
    gateway: Gateway, actor: Actor, body: CreateEnvironmentBody, request_id: str
) -> RequestView:
    owner = owner_for_create(actor, body.owner)
    if owner is None:
        raise ForbiddenError("Only admins may create environments for another user.")
    # Before the command is built, so an unknown image or profile is named as such rather
    # than hidden behind the command's other validation errors.
    catalog = gateway.intake.catalog
    check_image(catalog, body.image)
    given = body.model_dump(exclude={"owner", "profile"})
    command = build_create(actor, with_profile(catalog, body.profile, given), owner, request_id)
    return _counted(gateway, await gateway.intake.create(command))


async def accept_delete(
    gateway: Gateway, actor: Actor, owner: str, name: str, *, purge_volume: bool, request_id: str
) -> RequestView:
    require_access(actor, owner)
    require_nameable(name, f"{owner} has no environment named '{name}'.")
    command = DeleteEnvironment(
        request_id=request_id, actor=actor, owner=owner, name=name, purge_volume=purge_volume
    )
    return _counted(gateway, await gateway.intake.delete(command))


async def accept_stop_or_start(
    gateway: Gateway,
    actor: Actor,
    owner: str,
    name: str,
    request_id: str,
    kind: type[StopEnvironment] | type[StartEnvironment],
) -> RequestView:
    require_access(actor, owner)
    require_nameable(name, f"{owner} has no environment named '{name}'.")
    command = kind(request_id=request_id, actor=actor, owner=owner, name=name)
    intake = gateway.intake
    if isinstance(command, StopEnvironment):
        return _counted(gateway, await intake.stop(command))
    return _counted(gateway, await intake.start(command))


async def accept_extend(
    gateway: Gateway, actor: Actor, owner: str, name: str, hours: float | None, request_id: str
) -> RequestView:
    require_access(actor, owner)
    require_nameable(name, f"{owner} has no environment named '{name}'.")
    by_s = None if hours is None else hours * 3600
    accepted = await gateway.intake.extend(actor, owner, name, request_id=request_id, by_s=by_s)
    return _counted(gateway, accepted)


async def accept_resize(
    gateway: Gateway,
    actor: Actor,
    owner: str,
    name: str,
    body: ResizeEnvironmentBody,
    request_id: str,
) -> RequestView:
    """The environment's resources with the body's changes; those not given stay."""
    require_access(actor, owner)
    require_nameable(name, f"{owner} has no environment named '{name}'.")
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidError("", "give at least one of cpu, memory, gpus, dedicated_cores")
    view = await gateway.read_model.environment(owner, name)
    if view is None:
        raise NotFoundError(f"{owner} has no environment named '{name}'.")
    now = view.resources
    fields = {
        "cpu": format_cpu(now.cpu_millis),
        "memory": format_memory(now.memory_bytes),
        "gpus": now.gpus,
        "dedicated_cores": view.dedicated_cores,
        **changes,
    }
    try:
        command = ResizeEnvironment(
            request_id=request_id, actor=actor, owner=owner, name=name, **fields
        )
    except ValidationError as error:
        problems = field_errors(error.errors(include_url=False))
        raise InvalidError("", "; ".join(p.message for p in problems)) from error
    return _counted(gateway, await gateway.intake.resize(command))


async def accept_volume_delete(
    gateway: Gateway, actor: Actor, owner: str, name: str, request_id: str
) -> RequestView:
    require_access(actor, owner)
    require_nameable(name, f"{owner} has no kept volume named '{name}'.")
    command = DeleteVolume(request_id=request_id, actor=actor, owner=owner, name=name)
    return _counted(gateway, await gateway.intake.delete_volume(command))


async def accept_deploy(
    gateway: Gateway, actor: Actor, spec: ServiceSpec, request_id: str, *, update: bool
) -> RequestView:
    """Queue a new service (``update`` False) or a new spec for an existing one (True)."""
    command = DeployService(request_id=request_id, actor=actor, spec=spec)
    accepted = await gateway.intake.deploy_service(
        command, update=update, host_paths_enabled=gateway.host_paths_enabled
    )
    return _counted(gateway, accepted)


async def accept_service_delete(
    gateway: Gateway, actor: Actor, name: str, request_id: str
) -> RequestView:
    require_nameable(name, f"There is no service named '{name}'.")
    command = DeleteService(request_id=request_id, actor=actor, name=name)
    return _counted(gateway, await gateway.intake.delete_service(command))
