"""Validation of every write: the real schema first, then the rules a schema cannot express.

Each function returns the problems as causes naming the field; the caller turns a non-empty
list into a 422 Invalid and stores nothing.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from akros_kubesim import schemas
from akros_kubesim.errors import Cause
from akros_kubesim.quantity import QUANTITY_PATTERN, QuantityError, parse_quantity
from akros_kubesim.resources import ResourceType
from akros_kubesim.selectors import labels_match, selector_from_label_selector

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names become DNS labels (hostnames, namespace names) rather than subdomains.
_LABEL_NAMED_KINDS = {"Namespace", "Service"}


def field_path(parts: Iterable[str | int]) -> str:
    """`spec.containers[0].image` from the path segments jsonschema reports."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _is_quantity_schema(schema: object) -> bool:
    branches = schema.get("anyOf", []) if isinstance(schema, dict) else []
    return any(isinstance(b, dict) and b.get("pattern") == QUANTITY_PATTERN for b in branches)


def _schema_cause(error: jsonschema.ValidationError) -> Cause:
    path = field_path(error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else ""
        return Cause("FieldValueRequired", "Required value", f"{path}.{name}" if path else name)
    if error.validator == "enum":
        options = error.validator_value if isinstance(error.validator_value, list) else []
        supported = ", ".join(f'"{v}"' for v in options if v is not None)
        return Cause(
            "FieldValueNotSupported",
            f'Unsupported value: "{error.instance}": supported values: {supported}',
            path,
        )
    if error.validator == "anyOf" and _is_quantity_schema(error.schema):
        return Cause(
            "FieldValueInvalid",
            f'Invalid value: "{error.instance}": quantities must match the regular expression '
            f"'{QUANTITY_PATTERN}'",
            path,
        )
    return Cause("FieldValueInvalid", f"Invalid value: {error.instance!r}: {error.message}", path)


def schema_problems(
    obj: dict[str, Any], strict_fields: bool
) -> tuple[list[Cause], list[Cause], list[str]]:
    """(invalid values, unknown fields, warnings); unknown fields are removed from obj in place.

    Like the API server's default field validation ("Warn"), unknown fields are dropped with a
    warning; with fieldValidation=Strict they are errors instead.
    """
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    if not schemas.has_schema(api_version, kind):
        return [], [], []
    invalid: list[Cause] = []
    unknown: list[Cause] = []
    warnings: list[str] = []
    for error in schemas.validator(api_version, kind).iter_errors(obj):
        if error.validator != "additionalProperties":
            invalid.append(_schema_cause(error))
            continue
        schema = error.schema if isinstance(error.schema, dict) else {}
        declared = set((schema.get("properties") or {}).keys())
        container = error.instance
        if not isinstance(container, dict):
            continue
        for extra in sorted(set(container) - declared):
            path = field_path([*error.absolute_path, extra])
            if strict_fields:
                unknown.append(Cause("FieldValueInvalid", f'unknown field "{path}"', path))
            else:
                warnings.append(f'unknown field "{path}"')
                del container[extra]
    return invalid, unknown, warnings


def _name_problems(resource: ResourceType, metadata: Mapping[str, Any]) -> list[Cause]:
    name = metadata.get("name")
    if not name:
        if metadata.get("generateName"):
            return []
        return [
            Cause(
                "FieldValueRequired",
                "Required value: name or generateName is required",
                "metadata.name",
            )
        ]
    if resource.kind == "Event":
        # Event names are derived from their object plus a suffix and may hold dots and digits.
        return []
    if resource.kind in _LABEL_NAMED_KINDS:
        pattern, limit, what = _DNS1123_LABEL, 63, "RFC 1123 label"
        example = "'my-name',  or '123-abc'"
        rule = (
            "must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character"
        )
    else:
        pattern, limit, what = _DNS1123_SUBDOMAIN, 253, "RFC 1123 subdomain"
        example = "'example.com'"
        rule = (
            "must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character"
        )
    if len(name) > limit:
        return [
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be no more than {limit} characters',
                "metadata.name",
            )
        ]
    if not pattern.match(name):
        message = f'Invalid value: "{name}": a lowercase {what} {rule} (e.g. {example})'
        return [Cause("FieldValueInvalid", message, "metadata.name")]
    return []


def _qualified_name_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and _LABEL_NAME.match(name) is not None


def _label_problems(metadata: Mapping[str, Any]) -> list[Cause]:
    problems = []
    for key, value in (metadata.get("labels") or {}).items():
        if not _qualified_name_ok(key):
            problems.append(
                Cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": name part must consist of '
                    "alphanumeric characters, '-', '_' or '.'",
                    "metadata.labels",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(
                Cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.'",
                    "metadata.labels",
                )
            )
    for key in metadata.get("annotations") or {}:
        if not _qualified_name_ok(key):
            problems.append(
                Cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": not a qualified name',
                    "metadata.annotations",
                )
            )
    return problems


def _container_problems(pod_spec: Mapping[str, Any], path: str) -> list[Cause]:
    problems: list[Cause] = []
    if not pod_spec.get("containers"):
        problems.append(Cause("FieldValueRequired", "Required value", f"{path}.containers"))
    seen: set[str] = set()
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(pod_spec.get(list_name) or []):
            here = f"{path}.{list_name}[{index}]"
            name = container.get("name", "")
            if name and not _DNS1123_LABEL.match(name):
                problems.append(
                    Cause(
                        "FieldValueInvalid",
                        f'Invalid value: "{name}": a lowercase RFC 1123 label must consist '
                        "of lower case alphanumeric characters or '-'",
                        f"{here}.name",
                    )
                )
            if name in seen:
                problems.append(
                    Cause("FieldValueDuplicate", f'Duplicate value: "{name}"', f"{here}.name")
                )
            seen.add(name)
            if not container.get("image"):
                problems.append(Cause("FieldValueRequired", "Required value", f"{here}.image"))
            problems.extend(
                _resource_problems(container.get("resources") or {}, f"{here}.resources")
            )
    return problems


def _resource_problems(resources: Mapping[str, Any], path: str) -> list[Cause]:
    problems = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for section, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            try:
                amount = parse_quantity(value)
            except QuantityError:
                continue  # the schema check already reported the bad syntax
            if amount < 0:
                problems.append(
                    Cause(
                        "FieldValueInvalid",
                        f'Invalid value: "{value}": must be greater than or equal to 0',
                        f"{path}.{section}[{name}]",
                    )
                )
    for name, value in requests.items():
        if name not in limits:
            continue
        try:
            if parse_quantity(value) > parse_quantity(limits[name]):
                message = (
                    f'Invalid value: "{value}": must be less than or equal to '
                    f"{name} limit of {limits[name]}"
                )
                problems.append(Cause("FieldValueInvalid", message, f"{path}.requests"))
        except QuantityError:
            continue
    return problems


def _deployment_problems(spec: Mapping[str, Any]) -> list[Cause]:
    problems = []
    selector = spec.get("selector") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        problems.append(
            Cause(
                "FieldValueInvalid",
                "Invalid value: {}: empty selector is invalid for deployment",
                "spec.selector",
            )
        )
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and not labels_match(selector_from_label_selector(selector), labels):
        problems.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
                "spec.template.metadata.labels",
            )
        )
    template_spec = template.get("spec") or {}
    restart = template_spec.get("restartPolicy", "Always")
    if restart != "Always":
        problems.append(
            Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{restart}": supported values: "Always"',
                "spec.template.spec.restartPolicy",
            )
        )
    if (replicas := spec.get("replicas")) is not None and replicas < 0:
        problems.append(
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
                "spec.replicas",
            )
        )
    problems.extend(_container_problems(template_spec, "spec.template.spec"))
    return problems


def _service_problems(spec: Mapping[str, Any]) -> list[Cause]:
    problems = []
    if (
        spec.get("type") != "ExternalName"
        and not spec.get("ports")
        and spec.get("clusterIP") != "None"
    ):
        problems.append(Cause("FieldValueRequired", "Required value", "spec.ports"))
    for index, port in enumerate(spec.get("ports") or []):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            problems.append(
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                    f"spec.ports[{index}].port",
                )
            )
    return problems


def _pvc_problems(spec: Mapping[str, Any]) -> list[Cause]:
    problems = []
    if not spec.get("accessModes"):
        problems.append(
            Cause(
                "FieldValueRequired",
                "Required value: at least 1 access mode is required",
                "spec.accessModes",
            )
        )
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        problems.append(Cause("FieldValueRequired", "Required value", "spec.resources[storage]"))
    return problems


def _strategy_problems(spec: Mapping[str, Any]) -> list[Cause]:
    """A rolling update must be able to move: maxSurge and maxUnavailable not both zero, and
    neither negative nor (maxUnavailable) above 100%, as apps validation says."""
    rolling = (spec.get("strategy") or {}).get("rollingUpdate")
    path = "spec.strategy.rollingUpdate"
    if (spec.get("strategy") or {}).get("type") == "Recreate":
        if rolling is not None:
            message = "Forbidden: may not be specified when strategy `type` is 'Recreate'"
            return [Cause("FieldValueForbidden", message, path)]
        return []
    rolling = rolling or {}
    problems = []
    amounts = {}
    for name in ("maxSurge", "maxUnavailable"):
        value = rolling.get(name, "25%")
        amount = _int_or_percent(value)
        amounts[name] = amount
        if amount is None:
            message = (
                f'Invalid value: "{value}": a valid percent string must be a numeric string '
                "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation "
                "is '[0-9]+%')"
            )
            problems.append(Cause("FieldValueInvalid", message, f"{path}.{name}"))
        elif amount < 0:
            message = f"Invalid value: {value}: must be greater than or equal to 0"
            problems.append(Cause("FieldValueInvalid", message, f"{path}.{name}"))
    unavailable = rolling.get("maxUnavailable", "25%")
    if isinstance(unavailable, str) and (amounts["maxUnavailable"] or 0) > 100:
        message = f'Invalid value: "{unavailable}": must not be greater than 100%'
        problems.append(Cause("FieldValueInvalid", message, f"{path}.maxUnavailable"))
    if amounts["maxSurge"] == 0 and amounts["maxUnavailable"] == 0:
        message = f"Invalid value: {unavailable!r}: may not be 0 when `maxSurge` is 0".replace(
            "'", '"'
        )
        problems.append(Cause("FieldValueInvalid", message, f"{path}.maxUnavailable"))
    return problems


def _int_or_percent(value: object) -> int | None:
    """The number in an IntOrString (a percentage's number); None when it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1])
    return None


def semantic_problems(resource: ResourceType, obj: Mapping[str, Any]) -> list[Cause]:
    """The rules beyond the schema: names, labels, quantities, cross-field constraints."""
    metadata = obj.get("metadata") or {}
    problems = _name_problems(resource, metadata) + _label_problems(metadata)
    spec = obj.get("spec") or {}
    if resource.kind == "Pod":
        problems += _container_problems(spec, "spec")
    elif resource.kind in ("Deployment", "DaemonSet", "ReplicaSet"):
        problems += _deployment_problems(spec)
        if resource.kind == "Deployment":
            problems += _strategy_problems(spec)
    elif resource.kind == "Service":
        problems += _service_problems(spec)
    elif resource.kind == "PersistentVolumeClaim":
        problems += _pvc_problems(spec)
    return problems


# Fields of a pod's spec that may change after creation, as the API server allows.
_MUTABLE_POD_SPEC_FIELDS = {"activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"}


def _without_images(spec: Mapping[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in spec.items() if k not in _MUTABLE_POD_SPEC_FIELDS}
    for list_name in ("containers", "initContainers"):
        if list_name in stripped:
            stripped[list_name] = [
                {k: v for k, v in c.items() if k != "image"} for c in stripped[list_name]
            ]
    return stripped


def update_problems(
    resource: ResourceType, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Cause]:
    """Immutability rules that apply to updates only."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if resource.kind == "Pod" and _without_images(old_spec) != _without_images(new_spec):
        message = (
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
            "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
            "(only additions to existing tolerations) or `spec.terminationGracePeriodSeconds`"
        )
        return [Cause("FieldValueForbidden", message, "spec")]
    selector_immutable = resource.kind in ("Deployment", "DaemonSet", "ReplicaSet")
    if selector_immutable and old_spec.get("selector") != new_spec.get("selector"):
        return [
            Cause(
                "FieldValueInvalid",
                f"Invalid value: {new_spec.get('selector')}: field is immutable",
                "spec.selector",
            )
        ]
    if resource.kind == "PersistentVolumeClaim":
        old_rest = {k: v for k, v in old_spec.items() if k not in ("resources", "volumeName")}
        new_rest = {k: v for k, v in new_spec.items() if k not in ("resources", "volumeName")}
        if old_rest != new_rest:
            return [
                Cause(
                    "FieldValueForbidden",
                    "Forbidden: spec is immutable after creation except resources.requests "
                    "and volumeAttributesClassName for bound claims",
                    "spec",
                )
            ]
    if (
        resource.kind == "Service"
        and old_spec.get("clusterIP")
        and new_spec.get("clusterIP") not in (None, "", old_spec.get("clusterIP"))
    ):
        return [
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{new_spec.get("clusterIP")}": field is immutable',
                "spec.clusterIP",
            )
        ]
    return []
