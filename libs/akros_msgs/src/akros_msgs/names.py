"""Names that end up in Kubernetes object names, labels and host names."""

import re
from typing import Annotated

from pydantic import AfterValidator

# DNS-1123 labels, further required to start with a letter (DNS-1035), because the same name
# becomes a Service name, and Services accept only DNS-1035 labels.
_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# Object names are composed as "<owner>-<name>-<c>" and host names as
# "<name>-<owner>-<c>.<domain>" (<c>: the first part's length, one base-36 digit, which makes
# the composition injective; akros_policy.naming); both parts stay short enough that the
# composition is still a valid 63-character label.
MAX_PART_LENGTH = 30


def check_label(value: str, *, max_length: int = 63) -> str:
    """Accept a lower-case DNS label starting with a letter, or raise ValueError saying why."""
    if not value:
        raise ValueError("must not be empty")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters long")
    if not _LABEL.fullmatch(value):
        raise ValueError(
            "must consist of lower-case letters, digits and '-', start with a letter "
            "and end with a letter or digit (a DNS-1123 label), e.g. 'my-env-2'"
        )
    return value


def _check_part(value: str) -> str:
    return check_label(value, max_length=MAX_PART_LENGTH)


def _check_object_name(value: str) -> str:
    return check_label(value, max_length=63)


ResourceName = Annotated[str, AfterValidator(_check_part)]
"""The name of an environment, volume or service chosen by a person."""

UserId = Annotated[str, AfterValidator(_check_part)]
"""A platform user id; also a label value and part of object and host names."""

ObjectName = Annotated[str, AfterValidator(_check_object_name)]
"""A full Kubernetes object name (namespaces, deployments) chosen by an operator."""
