"""The environment form (create and shrink modals): what it shows and how a submission becomes
a command. Pure functions, no I/O."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from akros_msgs import Actor, CreateEnvironment, Resources
from akros_msgs.quantity import format_cpu, format_memory

# Block ids of the form; each input's action id is the same as its block id.
NAME = "name"
IMAGE = "image"
GPUS = "gpus"
CPU = "cpu"
MEMORY = "memory"
DEDICATED = "dedicated_cores"
VOLUME = "volume_size"
FORM_FIELDS = (NAME, IMAGE, GPUS, CPU, MEMORY, DEDICATED, VOLUME)

FormErrors = dict[str, str]
"""Block id -> what is wrong with it, as Slack shows under the field."""

_GIB = 2**30


@dataclass(frozen=True)
class EnvironmentForm:
    """What the form shows when it opens."""

    name: str | None = None
    image: str | None = None
    cpu: str = "2"
    memory: str = "8Gi"
    gpus: int = 0
    dedicated_cores: bool = False
    volume_size: str = "20Gi"


def smaller_form(name: str, image: str | None, requested: Resources) -> EnvironmentForm:
    """A shrink proposal: about half of each reservation, in whole cores and whole GiB, never
    below one core and 1Gi."""
    cores = max(1, -(-requested.cpu_millis // 2000))
    gib = max(1, requested.memory_bytes // _GIB // 2)
    return EnvironmentForm(
        name=name,
        image=image,
        cpu=format_cpu(cores * 1000),
        memory=format_memory(gib * _GIB),
        gpus=requested.gpus // 2,
    )


def read_values(values: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The submitted form's fields by name: text inputs as typed, the image's selected value,
    the dedicated-cores box as a bool. Fields left empty are missing."""
    fields: dict[str, Any] = {}
    for block_id in FORM_FIELDS:
        state = values.get(block_id, {}).get(block_id)
        if not state:
            continue
        if block_id == DEDICATED:
            fields[block_id] = bool(state.get("selected_options"))
        elif block_id == IMAGE:
            if selected := state.get("selected_option"):
                fields[block_id] = selected["value"]
        elif (value := state.get("value")) not in (None, ""):
            fields[block_id] = value.strip()
    return fields


def _field_of(location: tuple[int | str, ...], message: str) -> str:
    """The form field an error belongs to; cross-field rules name theirs in the message."""
    if location and str(location[0]) in FORM_FIELDS:
        return str(location[0])
    prefix = message.split(":", 1)[0]
    return prefix if prefix in FORM_FIELDS else NAME


def command_from_form(
    fields: Mapping[str, Any], *, actor: Actor, owner: str, request_id: str
) -> CreateEnvironment | FormErrors:
    """The create command the form describes, or an error per field."""
    try:
        return CreateEnvironment(
            request_id=request_id,
            actor=actor,
            owner=owner,
            **{k: v for k, v in fields.items() if k in FORM_FIELDS},
        )
    except ValidationError as error:
        errors: FormErrors = {}
        for item in error.errors(include_url=False):
            message = str(item["msg"]).removeprefix("Value error, ")
            field = _field_of(tuple(item["loc"]), message)
            errors.setdefault(field, message.removeprefix(f"{field}: "))
        return errors
