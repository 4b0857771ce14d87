"""Who may deploy which in-house service spec: one rule, used by the gateway before publishing
and by the worker before applying, so both refuse the same spec for the same reason."""

from dataclasses import dataclass

from akros_msgs import Actor, Role
from akros_msgs.services import ServiceSpec, VolumeSource


@dataclass(frozen=True)
class SpecProblem:
    """A field of the spec (dotted path, e.g. "volumes.0.source") and what is wrong with it."""

    field: str
    message: str


def may_manage_services(actor: Actor) -> bool:
    return actor.role in {Role.ADMIN, Role.SYSTEM}


def host_path_problem(
    spec: ServiceSpec, actor: Actor, *, host_paths_enabled: bool
) -> SpecProblem | None:
    """Why ``actor`` may not mount the host paths ``spec`` asks for, or None.

    A host path reaches into the node itself, so only admins get it, and only on a platform
    whose settings enable it.
    """
    for index, volume in enumerate(spec.volumes):
        if volume.source is not VolumeSource.HOST_PATH:
            continue
        field = f"volumes.{index}.source"
        if actor.role is not Role.ADMIN:
            return SpecProblem(field, "only admins may mount a host path")
        if not host_paths_enabled:
            return SpecProblem(field, "host paths are disabled on this platform")
    return None
