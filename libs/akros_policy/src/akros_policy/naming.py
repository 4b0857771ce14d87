"""How the platform names and labels what it creates, so every service finds the same objects."""

from enum import StrEnum

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


def environment_object_name(owner: str, name: str) -> str:
    """The name of every object of one environment: "<owner>-<name>" (at most 61 characters,
    since both parts are DNS labels of at most 30)."""
    return f"{owner}-{name}"


def environment_host(owner: str, name: str, domain: str) -> str:
    """The environment's URL host: "<env>-<user>.<domain>"."""
    return f"{name}-{owner}.{domain}"


def environment_labels(owner: str, name: str) -> dict[str, str]:
    return {
        LABEL_OWNER: owner,
        LABEL_KIND: WorkloadKind.ENVIRONMENT.value,
        LABEL_ENV: name,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


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
