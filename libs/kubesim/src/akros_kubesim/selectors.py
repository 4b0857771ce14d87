"""Label and field selectors: parsing the query-string forms and matching objects against them."""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from akros_kubesim.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector; operator is one of =, !=, in, notin, exists, !."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case "=":
                return present and labels[self.key] in self.values
            case "!=":
                return not present or labels[self.key] not in self.values
            case "in":
                return present and labels[self.key] in self.values
            case "notin":
                return not present or labels[self.key] not in self.values
            case "exists":
                return present
            case _:
                return not present


LabelSelector = tuple[Requirement, ...]

_SET_CLAUSE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY_CLAUSE = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS_CLAUSE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def _split_clauses(text: str) -> list[str]:
    """Splits on commas that are not inside the parentheses of an `in (a,b)` clause."""
    clauses, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            clauses.append(text[start:index])
            start = index + 1
    clauses.append(text[start:])
    return [clause for clause in clauses if clause.strip()]


def parse_label_selector(text: str) -> LabelSelector:
    """Parses `app=web,tier!=db,env in (a,b),!legacy` into requirements; 400 on bad syntax."""
    requirements = []
    for clause in _split_clauses(text):
        if match := _SET_CLAUSE.match(clause):
            values = frozenset(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif match := _EQUALITY_CLAUSE.match(clause):
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), operator, frozenset([match.group(3)])))
        elif match := _EXISTS_CLAUSE.match(clause):
            operator = "!" if match.group(1) else "exists"
            requirements.append(Requirement(match.group(2), operator))
        else:
            raise bad_request(f"unable to parse requirement: {clause.strip()!r}")
    return tuple(requirements)


def selector_from_label_selector(selector: Mapping[str, Any]) -> LabelSelector:
    """Converts a metav1.LabelSelector (matchLabels, matchExpressions) into requirements."""
    requirements = [
        Requirement(key, "=", frozenset([value]))
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator", ""))
        if operator is None:
            raise bad_request(f"{expression.get('operator')!r} is not a valid selector operator")
        values = frozenset(expression.get("values") or [])
        requirements.append(Requirement(expression["key"], operator, values))
    return tuple(requirements)


def labels_match(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    present = labels or {}
    return all(requirement.matches(present) for requirement in selector)


def selector_to_string(selector: Mapping[str, Any]) -> str:
    """The text form of a metav1.LabelSelector, as the Scale subresource reports it."""
    clauses = [
        f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())
    ]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(sorted(expression.get("values") or []))
        if operator in ("In", "NotIn"):
            clauses.append(f"{key} {operator.lower()} ({values})")
        elif operator == "Exists":
            clauses.append(key)
        else:
            clauses.append(f"!{key}")
    return ",".join(clauses)


# Field selectors: which paths each kind supports, as the API server restricts them.
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
}

FieldSelector = tuple[tuple[str, bool, str], ...]


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    """Parses `spec.nodeName=a,status.phase!=Running`; fields the kind does not index get 400."""
    allowed = _COMMON_FIELDS + SUPPORTED_FIELDS.get(kind, ())
    clauses = []
    for clause in (c for c in text.split(",") if c.strip()):
        match = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", clause)
        if match is None:
            raise bad_request(f"invalid selector: {text!r}; can't understand {clause!r}")
        path = match.group(1)
        if path not in allowed:
            raise bad_request(f'field label not supported: "{path}"')
        clauses.append((path, match.group(2) != "!=", match.group(3)))
    return tuple(clauses)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    return all((_field_value(obj, path) == value) == equal for path, equal, value in selector)


def object_filter(
    labels: LabelSelector, fields: FieldSelector
) -> Callable[[Mapping[str, Any]], bool]:
    def accepts(obj: Mapping[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        return labels_match(labels, metadata.get("labels")) and fields_match(fields, obj)

    return accepts


def _requirement_holds(requirement: Mapping[str, Any], value: str | None) -> bool:
    operator = requirement.get("operator")
    values = [str(v) for v in requirement.get("values") or []]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            number, bound = int(value), int(values[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False


def node_selector_terms_match(terms: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> bool:
    """A core/v1 NodeSelector: any term matches when all its label and field requirements hold.

    Node affinity and a PersistentVolume's node affinity share this type; matchFields knows
    only metadata.name, as the API allows.
    """
    metadata = node.get("metadata") or {}
    labels = metadata.get("labels") or {}
    fields = {"metadata.name": metadata.get("name")}
    for term in terms:
        expressions = term.get("matchExpressions") or []
        field_requirements = term.get("matchFields") or []
        if not expressions and not field_requirements:
            continue  # an empty term matches no objects
        if all(_requirement_holds(r, labels.get(r.get("key"))) for r in expressions) and all(
            _requirement_holds(r, fields.get(r.get("key"))) for r in field_requirements
        ):
            return True
    return False
