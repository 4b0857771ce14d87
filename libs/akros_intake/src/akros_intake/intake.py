"""Accepting environment commands: check, record in the read model, publish.

The one accept sequence every front door uses (the HTTP gateway, the Slack app), so a request
is refused for the same reasons whichever way it came in. Nothing is published for a request
that is refused, and a retried request (same request id) is answered with the original instead
of being published twice.

Every check-then-act on one owner runs under the read model's owner lock, so two requests
racing for the last of a quota, or for the same name, are decided one after the other.

A process runs only a few accept sequences at once, first come first served. Each sequence is
several Redis round trips; a burst of a hundred run side by side interleaves them all, so every
request finished (and was published) at the end of the burst, and the worker received the
burst as one wall of commands. Admitted a few at a time they finish in order, at the same
throughput: the first answers sooner and the worker sees a steady stream.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.exceptions import RedisError

from akros_bus import Bus
from akros_intake.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    QuotaExceededError,
    UnavailableError,
)
from akros_msgs import (
    Actor,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    EnvironmentCommand,
    ExtendEnvironment,
    FailureCode,
    ResizeEnvironment,
    Resources,
    ServiceCommand,
    StartEnvironment,
    StopEnvironment,
)
from akros_msgs.quantity import cpu_millicores, memory_bytes
from akros_msgs.services import DeleteService, DeployService
from akros_policy import (
    Catalog,
    QuotaPolicy,
    ResourceProfile,
    check_quota,
    extended_expiry,
    host_path_problem,
    may_act_on,
)
from akros_readmodel import (
    EnvironmentStatus,
    EnvironmentView,
    ReadModel,
    RequestState,
    RequestView,
    ServiceStatus,
    ServiceView,
    holding_of,
    pending_environment,
    resuming_environment,
    utc_now,
)

T = TypeVar("T")
Step = Callable[[], Awaitable[None]]
# One lock for every change to services: admins change them rarely, and a name is checked
# and taken under it. The colon keeps it apart from any user's lock (user ids have none).
SERVICES_LOCK = "services:"
# Enough to overlap one sequence's round trips with another's work (see the module's notes).
DEFAULT_ACCEPT_CONCURRENCY = 8


@dataclass(frozen=True)
class Accepted:
    """The request as recorded; ``replayed`` when it repeats one accepted earlier (nothing was
    published this time)."""

    request: RequestView
    replayed: bool = False


def is_same_request(existing: RequestView, pending: RequestView) -> bool:
    """A retry names the same command, owner and object as the request it repeats."""
    return (existing.command_type, existing.owner, existing.name) == (
        pending.command_type,
        pending.owner,
        pending.name,
    )


def _offered(field: str, key: str, offered: Mapping[str, T]) -> T:
    """The catalog's entry of ``key``, or InvalidError naming ``field`` and the choices."""
    found = offered.get(key)
    if found is None:
        choices = ", ".join(sorted(offered)) or "none are offered"
        raise InvalidError(field, f"'{key}' is not in the catalog; choose one of: {choices}")
    return found


def check_image(catalog: Catalog, image: str) -> None:
    _offered("image", image, catalog.images)


PROFILE_FIELDS = ("cpu", "memory", "gpus", "dedicated_cores")
"""The fields of a create request that a resource profile supplies."""


def check_profile(catalog: Catalog, profile: str | None) -> ResourceProfile | None:
    """The catalog's profile of that key (None for no profile), or InvalidError naming it."""
    return None if profile is None else _offered("profile", profile, catalog.profiles)


def with_profile(catalog: Catalog, profile: str | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a create request once ``profile`` has filled in its resources.

    The rule: a profile supplies cpu, memory, gpus and dedicated_cores; any of them given
    explicitly (not None) overrides the profile's value. A profile exempt from under-use
    nudges is a ceiling, though: its exemption must not cover more than the admins sized it
    for, so cpu, memory and gpus may be lowered, not raised. Without a profile, cpu and memory
    must be given. The profile's key is kept in the result, so the
    environment is known as one of that profile (its label, its under-use exemption).
    """
    found = check_profile(catalog, profile)
    fields = found.model_dump(include=set(PROFILE_FIELDS)) if found else {}
    fields.update({key: value for key, value in given.items() if value is not None})
    for required in ("cpu", "memory"):
        if required not in fields:
            raise InvalidError(required, "required unless a profile supplies it")
    if found is not None and found.underuse_exempt:
        _check_within(str(profile), found, fields)
    if profile is not None:
        fields["profile"] = profile
    return fields


def _check_within(name: str, profile: ResourceProfile, fields: Mapping[str, Any]) -> None:
    ceilings: dict[str, tuple[Callable[[Any], int], Any]] = {
        "cpu": (cpu_millicores, profile.cpu),
        "memory": (memory_bytes, profile.memory),
        "gpus": (int, profile.gpus),
    }
    for field_name, (amount, ceiling) in ceilings.items():
        try:
            beyond = amount(fields[field_name]) > amount(ceiling)
        except (TypeError, ValueError):
            continue  # malformed: the command's own validation says why
        if beyond:
            raise InvalidError(
                field_name,
                f"at most {ceiling} with profile '{name}', which is exempt from under-use "
                "nudges for what it reserves",
            )


def require_access(actor: Actor, owner: str) -> None:
    if not may_act_on(actor, owner):
        raise ForbiddenError(f"You may not act on {owner}'s environments or volumes.")


def pending_request(command: EnvironmentCommand) -> RequestView:
    return RequestView(
        request_id=command.request_id,
        state=RequestState.PENDING,
        command_type=command.type,
        actor=command.actor.user_id,
        owner=command.owner,
        name=command.name,
    )


def pending_service_request(command: ServiceCommand) -> RequestView:
    name = command.spec.name if isinstance(command, DeployService) else command.name
    return RequestView(
        request_id=command.request_id,
        state=RequestState.PENDING,
        command_type=command.type,
        actor=command.actor.user_id,
        name=name,
    )


def _not_stoppable(view: EnvironmentView) -> str:
    """Why an environment that is not ready cannot be stopped now."""
    name = f"'{view.name}'"
    return {
        EnvironmentStatus.PENDING: f"{name} is still starting; stop it once it is ready.",
        EnvironmentStatus.STOPPING: f"{name} is being stopped already.",
        EnvironmentStatus.STOPPED: f"{name} is stopped already.",
        EnvironmentStatus.DELETING: f"{name} is being deleted.",
        EnvironmentStatus.FAILED: f"{name} failed and has nothing running; delete it, or "
        "create it again.",
    }.get(view.status, f"{name} is {view.status.value}.")


def _not_startable(view: EnvironmentView) -> str:
    """Why an environment that is not stopped cannot be started."""
    name = f"'{view.name}'"
    return {
        EnvironmentStatus.READY: f"{name} is running already.",
        EnvironmentStatus.PENDING: f"{name} is starting already.",
        EnvironmentStatus.STOPPING: f"{name} is still being stopped; start it once it is stopped.",
        EnvironmentStatus.DELETING: f"{name} is being deleted.",
        EnvironmentStatus.FAILED: f"{name} failed; delete it, or create it again.",
    }.get(view.status, f"{name} is {view.status.value}.")


def _not_resizable(view: EnvironmentView) -> str:
    """Why an environment that is neither ready nor stopped cannot be resized now."""
    name = f"'{view.name}'"
    return {
        EnvironmentStatus.PENDING: f"{name} is still starting; resize it once it is ready.",
        EnvironmentStatus.STOPPING: f"{name} is being stopped; resize it once it is stopped.",
        EnvironmentStatus.DELETING: f"{name} is being deleted.",
        EnvironmentStatus.FAILED: f"{name} failed; delete it, or create it again.",
    }.get(view.status, f"{name} is {view.status.value}.")


def _reused_key(request_id: str) -> ConflictError:
    return ConflictError(
        f"Request id '{request_id}' was already used for another request; "
        "use a new Idempotency-Key."
    )


@dataclass(frozen=True)
class Intake:
    """What accepting a command needs, created once at a service's start."""

    read_model: ReadModel
    bus: Bus
    catalog: Catalog
    quotas: QuotaPolicy
    concurrency: int = DEFAULT_ACCEPT_CONCURRENCY
    extend_by_s: float = 86_400.0
    """How far one extension moves an expiry, and the most it may be ahead of now."""
    _admission: asyncio.Semaphore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_admission", asyncio.Semaphore(self.concurrency))

    @contextlib.asynccontextmanager
    async def _turn(self, lock: str) -> AsyncIterator[None]:
        """This process's turn to accept (FIFO, ``concurrency`` at a time), then ``lock``."""
        async with self._admission, self.read_model.owner_lock(lock):
            yield

    async def create(self, command: CreateEnvironment) -> Accepted:
        require_access(command.actor, command.owner)
        check_image(self.catalog, command.image)
        check_profile(self.catalog, command.profile)
        pending = pending_request(command)
        read_model = self.read_model
        owner = command.owner

        async with self._turn(owner):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
            if await read_model.environment(owner, command.name) is not None:
                raise ConflictError(f"{owner} already has an environment named '{command.name}'.")
            holding = await read_model.holding(owner)
            decision = check_quota(holding, command.resources, self.quotas.for_user(owner))
            if not decision.allowed:
                raise QuotaExceededError(decision.reason)

            async def write_view() -> None:
                await read_model.put_environment(pending_environment(command))

            async def undo() -> None:
                await read_model.remove_environment(owner, command.name)

            return await self._record_and_publish(pending, command, write_view, undo)

    async def delete(self, command: DeleteEnvironment) -> Accepted:
        require_access(command.actor, command.owner)
        pending = pending_request(command)
        read_model = self.read_model
        owner, name = command.owner, command.name

        async with self._turn(owner):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
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

            return await self._record_and_publish(pending, command, write_view, undo)

    async def stop(self, command: StopEnvironment) -> Accepted:
        """Queue the stop of a ready environment; it holds its resources until the worker
        reports it stopped (its pod may take its grace period to go)."""
        return await self._change_environment(
            command,
            {EnvironmentStatus.READY},
            _not_stoppable,
            lambda view: view.model_copy(
                update={
                    "status": EnvironmentStatus.STOPPING,
                    "request_id": command.request_id,
                    "updated_at": utc_now(),
                }
            ),
        )

    async def start(self, command: StartEnvironment) -> Accepted:
        """Queue the start of a stopped environment, if the owner's quota has room again for
        what it reserves (it still counts as one of their environments)."""

        async def room_for(view: EnvironmentView) -> None:
            await self._check_room_beside_others(view, view.resources)

        return await self._change_environment(
            command,
            {EnvironmentStatus.STOPPED},
            _not_startable,
            lambda view: resuming_environment(view, command.request_id),
            check=room_for,
        )

    async def resize(self, command: ResizeEnvironment) -> Accepted:
        """Queue new resources for a ready environment (restarted with them, if the quota has
        room for them beside the owner's other environments) or a stopped one (kept for its
        next start, whose quota check they then meet)."""

        async def room_for(view: EnvironmentView) -> None:
            if view.status is not EnvironmentStatus.STOPPED:
                await self._check_room_beside_others(view, command.resources)

        def resized(view: EnvironmentView) -> EnvironmentView:
            if view.status is EnvironmentStatus.STOPPED:
                # The worker writes the new resources once it has them on the workload.
                return view.model_copy(
                    update={"request_id": command.request_id, "updated_at": utc_now()}
                )
            return resuming_environment(view, command.request_id).model_copy(
                update={
                    "resources": command.resources,
                    "dedicated_cores": command.dedicated_cores,
                    "gpu_model": view.gpu_model if command.gpus else None,
                }
            )

        return await self._change_environment(
            command,
            {EnvironmentStatus.READY, EnvironmentStatus.STOPPED},
            _not_resizable,
            resized,
            check=room_for,
        )

    async def _check_room_beside_others(self, view: EnvironmentView, resources: Resources) -> None:
        """QuotaExceededError unless the owner's quota has room for ``resources`` beside
        their other environments (``view``'s own environment already counts as one)."""
        others = [e for e in await self.read_model.environments(view.owner) if e.name != view.name]
        decision = check_quota(holding_of(others), resources, self.quotas.for_user(view.owner))
        if not decision.allowed:
            raise QuotaExceededError(decision.reason)

    async def _change_environment(
        self,
        command: StopEnvironment | StartEnvironment | ResizeEnvironment,
        from_statuses: set[EnvironmentStatus],
        refusal: Callable[[EnvironmentView], str],
        changed: Callable[[EnvironmentView], EnvironmentView],
        check: Callable[[EnvironmentView], Awaitable[None]] | None = None,
    ) -> Accepted:
        """Accept a command that moves an environment from one of ``from_statuses`` (else a
        conflict, saying ``refusal``) to its ``changed`` view, once ``check`` passes."""
        require_access(command.actor, command.owner)
        pending = pending_request(command)

        async with self._turn(command.owner):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
            view = await self._environment(command.owner, command.name)
            if view.status not in from_statuses:
                raise ConflictError(refusal(view))
            if check is not None:
                await check(view)

            async def write_view() -> None:
                await self.read_model.put_environment(changed(view))

            async def undo() -> None:
                await self.read_model.put_environment(view)

            return await self._record_and_publish(pending, command, write_view, undo)

    async def extend(
        self,
        actor: Actor,
        owner: str,
        name: str,
        *,
        request_id: str,
        by_s: float | None = None,
    ) -> Accepted:
        """Queue moving an environment's expiry ``by_s`` seconds on (by default and at most
        ``extend_by_s``, the policy's bound, and never more than that ahead of now:
        extended_expiry)."""
        require_access(actor, owner)
        limit_s = self.extend_by_s
        by_s = limit_s if by_s is None else by_s
        if not 0 < by_s <= limit_s:
            raise InvalidError(
                "hours", f"an extension is more than 0 and at most {limit_s / 3600:g} hours"
            )
        pending = RequestView(
            request_id=request_id,
            state=RequestState.PENDING,
            command_type="extend_environment",
            actor=actor.user_id,
            owner=owner,
            name=name,
        )

        async with self._turn(owner):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
            view = await self._environment(owner, name)
            if view.status in {EnvironmentStatus.DELETING, EnvironmentStatus.FAILED}:
                raise ConflictError(f"'{name}' is {view.status.value}; there is nothing to extend.")
            if view.expires_at is None:
                raise ConflictError(f"'{name}' has no expiry to extend.")
            command = ExtendEnvironment(
                request_id=request_id,
                actor=actor,
                owner=owner,
                name=name,
                expires_at=extended_expiry(view.expires_at, utc_now(), by_s, limit_s),
            )

            async def nothing() -> None:
                """The view's expiry changes once the worker has moved the workload's."""

            return await self._record_and_publish(pending, command, nothing, nothing)

    async def _environment(self, owner: str, name: str) -> EnvironmentView:
        view = await self.read_model.environment(owner, name)
        if view is None:
            raise NotFoundError(f"{owner} has no environment named '{name}'.")
        return view

    async def delete_volume(self, command: DeleteVolume) -> Accepted:
        require_access(command.actor, command.owner)
        pending = pending_request(command)
        read_model = self.read_model
        owner, name = command.owner, command.name

        async with self._turn(owner):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
            if await read_model.volume(owner, name) is None:
                raise NotFoundError(f"{owner} has no kept volume named '{name}'.")
            if await read_model.environment(owner, name) is not None:
                raise ConflictError(
                    f"The environment '{name}' still uses this volume; delete it with "
                    "?purge_volume=true, or delete the environment first."
                )

            async def nothing() -> None:
                """The volume's view stays until the worker reports it deleted."""

            return await self._record_and_publish(pending, command, nothing, nothing)

    async def deploy_service(
        self, command: DeployService, *, update: bool, host_paths_enabled: bool
    ) -> Accepted:
        """Queue a new service (``update`` False: its name must be free) or a new spec for an
        existing one (``update`` True: it must exist)."""
        spec = command.spec
        problem = host_path_problem(spec, command.actor, host_paths_enabled=host_paths_enabled)
        if problem is not None:
            raise InvalidError(problem.field, problem.message)
        pending = pending_service_request(command)
        read_model = self.read_model

        async with self._turn(SERVICES_LOCK):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
            existing = await read_model.service(spec.name)
            if update and existing is None:
                raise NotFoundError(f"There is no service named '{spec.name}'.")
            if not update and existing is not None:
                raise ConflictError(
                    f"A service named '{spec.name}' exists; PUT /v1/services/{spec.name} "
                    "updates it."
                )

            async def write_view() -> None:
                await read_model.put_service(
                    ServiceView(
                        name=spec.name,
                        spec=spec,
                        status=ServiceStatus.PENDING,
                        request_id=command.request_id,
                    )
                    if existing is None
                    else existing.model_copy(
                        update={
                            "spec": spec,
                            "status": ServiceStatus.PENDING,
                            "request_id": command.request_id,
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

            return await self._record_and_publish(pending, command, write_view, undo)

    async def delete_service(self, command: DeleteService) -> Accepted:
        pending = pending_service_request(command)
        read_model = self.read_model

        async with self._turn(SERVICES_LOCK):
            if replayed := await self._replay(pending):
                return Accepted(replayed, replayed=True)
            view = await read_model.service(command.name)
            if view is None:
                raise NotFoundError(f"There is no service named '{command.name}'.")

            async def write_view() -> None:
                await read_model.put_service(
                    view.model_copy(
                        update={
                            "status": ServiceStatus.DELETING,
                            "request_id": command.request_id,
                            "updated_at": utc_now(),
                        }
                    )
                )

            async def undo() -> None:
                await read_model.put_service(view)

            return await self._record_and_publish(pending, command, write_view, undo)

    async def _replay(self, pending: RequestView) -> RequestView | None:
        """The original request when ``pending`` repeats a known request id; a request id used
        for something else is a conflict."""
        existing = await self.read_model.request(pending.request_id)
        if existing is None:
            return None
        if not is_same_request(existing, pending):
            raise _reused_key(pending.request_id)
        return existing

    async def _record_and_publish(
        self,
        pending: RequestView,
        command: EnvironmentCommand | ServiceCommand,
        write_view: Step,
        undo: Step,
    ) -> Accepted:
        if not await self.read_model.add_request(pending):
            # The owner lock serialises this owner's requests, so only a request for another
            # owner can have taken the id since ``_replay`` looked.
            raise _reused_key(pending.request_id)
        await write_view()
        try:
            # Stamped as it is accepted into the backbone, after every check: the worker
            # measures the platform's own overhead from this moment.
            await self.bus.publish(command.model_copy(update={"occurred_at": utc_now()}))
        except (RedisError, OSError) as error:
            await undo()
            await self.read_model.put_request(
                pending.model_copy(
                    update={
                        "state": RequestState.FAILED,
                        "code": FailureCode.INTERNAL,
                        "reason": "The platform could not queue the request; nothing was changed.",
                        "updated_at": utc_now(),
                    }
                )
            )
            raise UnavailableError(
                "The platform could not queue the request; try again."
            ) from error
        return Accepted(pending)
