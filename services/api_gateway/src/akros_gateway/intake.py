"""Accepting commands: check, record in the read model, publish. Nothing is published for a
request that is refused, and a retried request (same request id) is answered with the
original instead of being published twice.

Every check-then-act on one owner runs under the read model's owner lock, so two requests
racing for the last of a quota, or for the same name, are decided one after the other.
"""

from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from redis.exceptions import RedisError

from akros_gateway.access import owner_for_create
from akros_gateway.context import Gateway
from akros_gateway.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    QuotaExceededError,
    UnavailableError,
    field_errors,
)
from akros_gateway.schemas import CreateEnvironmentBody
from akros_msgs import (
    Actor,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    FailureCode,
)
from akros_msgs.services import DeleteService, DeployService, ServiceSpec
from akros_policy import Catalog, check_quota, host_path_problem, may_act_on
from akros_readmodel import (
    EnvironmentStatus,
    EnvironmentView,
    RequestState,
    RequestView,
    ServiceStatus,
    ServiceView,
    utc_now,
)

Step = Callable[[], Awaitable[None]]
EnvironmentCommand = CreateEnvironment | DeleteEnvironment | DeleteVolume
Command = EnvironmentCommand | DeployService | DeleteService
# One lock for every change to services: admins change them rarely, and a name is checked
# and taken under it. The colon keeps it apart from any user's lock (user ids have none).
SERVICES_LOCK = "services:"


def is_same_request(existing: RequestView, pending: RequestView) -> bool:
    """A retry names the same command, owner and object as the request it repeats."""
    return (existing.command_type, existing.owner, existing.name) == (
        pending.command_type,
        pending.owner,
        pending.name,
    )


def check_image(catalog: Catalog, image: str) -> None:
    if image not in catalog.images:
        choices = ", ".join(sorted(catalog.images))
        raise InvalidError(
            "body.image", f"'{image}' is not in the catalog; choose one of: {choices}"
        )


def pending_request(command: EnvironmentCommand) -> RequestView:
    return RequestView(
        request_id=command.request_id,
        state=RequestState.PENDING,
        command_type=command.type,
        actor=command.actor.user_id,
        owner=command.owner,
        name=command.name,
    )


def build_create(
    actor: Actor, body: CreateEnvironmentBody, owner: str, request_id: str
) -> CreateEnvironment:
    """The command for ``body``; its own cross-field rules (whole CPUs for dedicated cores, a
    GPU model only with GPUs) are refused as invalid fields of the body."""
    try:
        return CreateEnvironment(
            request_id=request_id,
            actor=actor,
            owner=owner,
            **body.model_dump(exclude={"owner"}),
        )
    except ValidationError as error:
        problems = field_errors(error.errors(include_url=False))
        message = "; ".join(p.message for p in problems)
        raise InvalidError("body", message) from error


def _reused_key(request_id: str) -> ConflictError:
    return ConflictError(
        f"Request id '{request_id}' was already used for another request; "
        "use a new Idempotency-Key."
    )


async def _replay(gateway: Gateway, pending: RequestView) -> RequestView | None:
    """The original request when ``pending`` repeats a known request id; a request id used
    for something else is a conflict."""
    existing = await gateway.read_model.request(pending.request_id)
    if existing is None:
        return None
    if not is_same_request(existing, pending):
        raise _reused_key(pending.request_id)
    return existing


async def _record_and_publish(
    gateway: Gateway,
    pending: RequestView,
    command: Command,
    write_view: Step,
    undo: Step,
) -> RequestView:
    if not await gateway.read_model.add_request(pending):
        # The owner lock serialises this owner's requests, so only a request for another
        # owner can have taken the id since ``_replay`` looked.
        raise _reused_key(pending.request_id)
    await write_view()
    try:
        # Stamped as it is accepted into the backbone, after every check: the worker measures
        # the platform's own overhead from this moment.
        await gateway.bus.publish(command.model_copy(update={"occurred_at": utc_now()}))
    except (RedisError, OSError) as error:
        await undo()
        await gateway.read_model.put_request(
            pending.model_copy(
                update={
                    "state": RequestState.FAILED,
                    "code": FailureCode.INTERNAL,
                    "reason": "The platform could not queue the request; nothing was changed.",
                    "updated_at": utc_now(),
                }
            )
        )
        raise UnavailableError("The platform could not queue the request; try again.") from error
    gateway.metrics.commands.labels(pending.command_type).inc()
    return pending


async def accept_create(
    gateway: Gateway, actor: Actor, body: CreateEnvironmentBody, request_id: str
) -> RequestView:
    owner = owner_for_create(actor, body.owner)
    if owner is None:
        raise ForbiddenError("Only admins may create environments for another user.")
    check_image(gateway.catalog, body.image)
    command = build_create(actor, body, owner, request_id)
    pending = pending_request(command)
    read_model = gateway.read_model

    async with read_model.owner_lock(owner):
        if replayed := await _replay(gateway, pending):
            return replayed
        if await read_model.environment(owner, command.name) is not None:
            raise ConflictError(f"{owner} already has an environment named '{command.name}'.")
        holding = await read_model.holding(owner)
        decision = check_quota(holding, command.resources, gateway.quotas.for_user(owner))
        if not decision.allowed:
            raise QuotaExceededError(decision.reason)

        async def write_view() -> None:
            await read_model.put_environment(pending_environment(command))

        async def undo() -> None:
            await read_model.remove_environment(owner, command.name)

        return await _record_and_publish(gateway, pending, command, write_view, undo)


def pending_environment(command: CreateEnvironment) -> EnvironmentView:
    return EnvironmentView(
        owner=command.owner,
        name=command.name,
        status=EnvironmentStatus.PENDING,
        image=command.image,
        resources=command.resources,
        dedicated_cores=command.dedicated_cores,
        gpu_model=command.gpu_model,
        volume_size=command.volume_size,
        request_id=command.request_id,
        expires_at=command.expires_at,
    )


async def accept_delete(
    gateway: Gateway, actor: Actor, owner: str, name: str, *, purge_volume: bool, request_id: str
) -> RequestView:
    require_access(actor, owner)
    command = DeleteEnvironment(
        request_id=request_id, actor=actor, owner=owner, name=name, purge_volume=purge_volume
    )
    pending = pending_request(command)
    read_model = gateway.read_model

    async with read_model.owner_lock(owner):
        if replayed := await _replay(gateway, pending):
            return replayed
        view = await read_model.environment(owner, name)
        if view is None:
            raise NotFoundError(f"{owner} has no environment named '{name}'.")

        async def write_view() -> None:
            await read_model.put_environment(
                view.model_copy(
                    update={"status": EnvironmentStatus.DELETING, "updated_at": utc_now()}
                )
            )

        async def undo() -> None:
            await read_model.put_environment(view)

        return await _record_and_publish(gateway, pending, command, write_view, undo)


async def accept_volume_delete(
    gateway: Gateway, actor: Actor, owner: str, name: str, request_id: str
) -> RequestView:
    require_access(actor, owner)
    command = DeleteVolume(request_id=request_id, actor=actor, owner=owner, name=name)
    pending = pending_request(command)
    read_model = gateway.read_model

    async with read_model.owner_lock(owner):
        if replayed := await _replay(gateway, pending):
            return replayed
        if await read_model.volume(owner, name) is None:
            raise NotFoundError(f"{owner} has no kept volume named '{name}'.")
        if await read_model.environment(owner, name) is not None:
            raise ConflictError(
                f"The environment '{name}' still uses this volume; delete it with "
                "?purge_volume=true, or delete the environment first."
            )

        async def nothing() -> None:
            """The volume's view stays until the worker reports it deleted."""

        return await _record_and_publish(gateway, pending, command, nothing, nothing)


def require_access(actor: Actor, owner: str) -> None:
    if not may_act_on(actor, owner):
        raise ForbiddenError(f"You may not act on {owner}'s environments or volumes.")


def pending_service_request(command: DeployService | DeleteService) -> RequestView:
    name = command.spec.name if isinstance(command, DeployService) else command.name
    return RequestView(
        request_id=command.request_id,
        state=RequestState.PENDING,
        command_type=command.type,
        actor=command.actor.user_id,
        name=name,
    )


async def accept_deploy(
    gateway: Gateway, actor: Actor, spec: ServiceSpec, request_id: str, *, update: bool
) -> RequestView:
    """Queue a new service (``update`` False: its name must be free) or a new spec for an
    existing one (``update`` True: it must exist)."""
    problem = host_path_problem(spec, actor, host_paths_enabled=gateway.host_paths_enabled)
    if problem is not None:
        raise InvalidError(f"body.{problem.field}", problem.message)
    command = DeployService(request_id=request_id, actor=actor, spec=spec)
    pending = pending_service_request(command)
    read_model = gateway.read_model

    async with read_model.owner_lock(SERVICES_LOCK):
        if replayed := await _replay(gateway, pending):
            return replayed
        existing = await read_model.service(spec.name)
        if update and existing is None:
            raise NotFoundError(f"There is no service named '{spec.name}'.")
        if not update and existing is not None:
            raise ConflictError(
                f"A service named '{spec.name}' exists; PUT /v1/services/{spec.name} updates it."
            )

        async def write_view() -> None:
            await read_model.put_service(
                ServiceView(
                    name=spec.name, spec=spec, status=ServiceStatus.PENDING, request_id=request_id
                )
                if existing is None
                else existing.model_copy(
                    update={
                        "spec": spec,
                        "status": ServiceStatus.PENDING,
                        "request_id": request_id,
                        "reason": None,
                        "updated_at": utc_now(),
                    }
                )
            )

        async def undo() -> None:
            if existing is None:
                await read_model.remove_service(spec.name)
            else:
                await read_model.put_service(existing)

        return await _record_and_publish(gateway, pending, command, write_view, undo)


async def accept_service_delete(
    gateway: Gateway, actor: Actor, name: str, request_id: str
) -> RequestView:
    command = DeleteService(request_id=request_id, actor=actor, name=name)
    pending = pending_service_request(command)
    read_model = gateway.read_model

    async with read_model.owner_lock(SERVICES_LOCK):
        if replayed := await _replay(gateway, pending):
            return replayed
        view = await read_model.service(name)
        if view is None:
            raise NotFoundError(f"There is no service named '{name}'.")

        async def write_view() -> None:
            await read_model.put_service(
                view.model_copy(
                    update={
                        "status": ServiceStatus.DELETING,
                        "request_id": request_id,
                        "updated_at": utc_now(),
                    }
                )
            )

        async def undo() -> None:
            await read_model.put_service(view)

        return await _record_and_publish(gateway, pending, command, write_view, undo)
