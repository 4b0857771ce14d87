"""How the platform names and labels what it creates, so every service finds the same objects."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

LABEL_OWNER = "akros.io/owner"
LABEL_KIND = "akros.io/kind"
LABEL_ENV = "akros.io/env"
LABEL_SERVICE = "akros.io/service"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "akros"
LABEL_UNDERUSE_EXEMPT = "akros.io/underuse-exempt"
LABEL_PROFILE = "akros.io/profile"
"""The catalog resource profile an environment was created from, on its Deployment and pods."""
ANNOTATION_REQUEST_ID = "akros.io/request-id"
ANNOTATION_IMAGE_KEY = "akros.io/image"


class WorkloadKind(StrEnum):
    """Values of the akros.io/kind label: who a workload belongs to."""

    ENVIRONMENT = "environment"
    SERVICE = "service"
    INFERENCE = "inference"


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _joined(first: str, second: str) -> str:
    """``first``, ``second`` and the length of ``first`` in one base-36 digit, joined by '-'.

    Injective: the last character (never a '-') gives where ``first`` ends, so the name
    splits back into exactly one pair (``split_environment_object_name``). "<first>-<second>"
    alone is not: ("jan", "peter-lab") and ("jan-peter", "lab") are both "jan-peter-lab".
    Both parts are DNS labels of at most 30 characters (akros_msgs.names), so the result is a
    DNS label of at most 30 + 1 + 30 + 1 + 1 = 63 characters, ending in a letter or digit.
    """
    if not 0 < len(first) < len(_BASE36):
        raise ValueError(f"a name part must have 1 to {len(_BASE36) - 1} characters: {first!r}")
    return f"{first}-{second}-{_BASE36[len(first)]}"


def _split(joined: str) -> tuple[str, str] | None:
    """The pair ``_joined`` made ``joined`` of, or None if it made no such name."""
    if len(joined) < 5 or joined[-2] != "-" or joined[-1] not in _BASE36:
        return None
    length = _BASE36.index(joined[-1])
    first, rest = joined[:length], joined[length:-2]
    if not first or not rest.startswith("-") or len(rest) < 2:
        return None
    return first, rest[1:]


def environment_object_name(owner: str, name: str) -> str:
    """The name of every object of one environment: "<owner>-<name>-<len(owner) in base 36>",
    e.g. "jan-peter-lab-3" for owner jan's "peter-lab", "jan-peter-lab-9" for jan-peter's
    "lab"; no two (owner, name) pairs share one (see ``_joined``)."""
    return _joined(owner, name)


def split_environment_object_name(object_name: str) -> tuple[str, str] | None:
    """The (owner, name) whose objects are named ``object_name``, or None if no environment's
    are (a name from before the scheme, or another object's)."""
    return _split(object_name)


def environment_host(owner: str, name: str, domain: str) -> str:
    """The environment's URL host: "<env>-<user>-<len(env) in base 36>.<domain>", injective
    for the same reason as the object name (the URL must not be another owner's either)."""
    return f"{_joined(name, owner)}.{domain}"


def split_environment_host(host: str, domain: str) -> tuple[str, str] | None:
    """The (owner, name) of the environment whose URL host is ``host`` under ``domain``
    (the inverse of ``environment_host``), or None if ``host`` is no environment's: another
    domain, a name of more than one label, or one that no pair makes. A port, a trailing dot
    and upper case (as a browser may send them) are ignored."""
    bare = host.strip().lower().partition(":")[0].removesuffix(".")
    first_label, dot, rest = bare.partition(".")
    if not dot or rest != domain.lower().removesuffix("."):
        return None
    pair = _split(first_label)
    if pair is None:
        return None
    name, owner = pair
    return owner, name


def legacy_environment_object_name(owner: str, name: str) -> str:
    """The name objects had before the injective scheme ("<owner>-<name>"), which collides
    across owners: only the name migration (akros_k8s_worker.rename) looks for it, and it
    takes an object under it only when the object's labels say whose it is."""
    return f"{owner}-{name}"


def environment_labels(owner: str, name: str) -> dict[str, str]:
    return {
        LABEL_OWNER: owner,
        LABEL_KIND: WorkloadKind.ENVIRONMENT.value,
        LABEL_ENV: name,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def labelled_environment(labels: Mapping[str, str] | None) -> tuple[str, str] | None:
    """The (owner, name) an object's labels say it belongs to, or None if not an
    environment's."""
    labels = labels or {}
    owner, env = labels.get(LABEL_OWNER), labels.get(LABEL_ENV)
    if not owner or not env or labels.get(LABEL_KIND) != WorkloadKind.ENVIRONMENT.value:
        return None
    return owner, env


def foreign_object_reason(manifest: Mapping[str, Any] | None, owner: str, name: str) -> str | None:
    """Why the platform must not patch, replace, delete or adopt ``manifest`` (an object that
    exists under the name of environment ``name`` of ``owner``), or None when its labels say
    it is that environment's (or there is no object). An object is never taken on its name
    alone: a name is only a lookup, the labels say whose the object is. The reason does not
    say whose it is instead (that is another person's business; the worker logs it)."""
    if manifest is None:
        return None
    metadata = manifest.get("metadata") or {}
    if labelled_environment(metadata.get("labels")) == (owner, name):
        return None
    kind = str(manifest.get("kind") or "object")
    return (
        f"The {kind} '{metadata.get('name', '')}' is not the one of your environment "
        f"'{name}' (its labels name another owner or environment, or none); the platform "
        "leaves it alone. Ask an admin to look at it."
    )


def owner_selector(owner: str) -> str:
    """A label selector for every environment object of ``owner``."""
    return f"{LABEL_OWNER}={owner},{LABEL_KIND}={WorkloadKind.ENVIRONMENT.value}"


def environment_selector(owner: str, name: str) -> str:
    """A label selector for the objects (and pods) of one environment."""
    return f"{LABEL_OWNER}={owner},{LABEL_ENV}={name}"


def service_labels(name: str) -> dict[str, str]:
    """The labels of an in-house service's objects and pods."""
    return {
        LABEL_KIND: WorkloadKind.SERVICE.value,
        LABEL_SERVICE: name,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def service_pod_selector(name: str) -> dict[str, str]:
    """The labels that select one in-house service's pods."""
    return {LABEL_KIND: WorkloadKind.SERVICE.value, LABEL_SERVICE: name}


SERVICES_SELECTOR = f"{LABEL_KIND}={WorkloadKind.SERVICE.value}"
"""A label selector for the objects of every in-house service."""
