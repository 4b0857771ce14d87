"""Where a bound volume lets a pod run, from the PersistentVolume's node affinity.

A local volume (local-path on RKE2) lives on one node's disk, and the provisioner pins the
volume there with ``spec.nodeAffinity.required``: every later pod that mounts it runs on that
node or nowhere. The worker's never-fits check and the monitor's capacity count read the pin
the way the scheduler's VolumeBinding plugin does. Pure functions over the API's JSON shapes.

kubesim's scheduler matches node selectors with its own code (akros_kubesim.selectors) on
purpose: the simulator is the oracle the product is tested against, so a shared mistake in
reading a selector would pass every test instead of failing one.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NodeSelectorTerms = Sequence[Mapping[str, Any]]


def volume_node_selector(volume: Mapping[str, Any]) -> NodeSelectorTerms | None:
    """The terms a node must match to mount ``volume``; None when any node may."""
    affinity = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not affinity:
        return None
    return list(affinity.get("nodeSelectorTerms") or [])


def claim_volume_name(claim: Mapping[str, Any]) -> str | None:
    """The volume a claim is bound to; None while it is unbound (it may bind anywhere)."""
    if (claim.get("status") or {}).get("phase") != "Bound":
        return None
    return (claim.get("spec") or {}).get("volumeName") or None


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
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def node_matches(terms: NodeSelectorTerms, name: str, labels: Mapping[str, str]) -> bool:
    """A core/v1 NodeSelector: any term whose label and field requirements all hold; an empty
    term matches no node, and matchFields knows only metadata.name (as the API allows)."""
    fields = {"metadata.name": name}
    for term in terms:
        expressions = term.get("matchExpressions") or []
        field_requirements = term.get("matchFields") or []
        if not expressions and not field_requirements:
            continue
        if all(_requirement_holds(r, labels.get(str(r.get("key")))) for r in expressions) and all(
            _requirement_holds(r, fields.get(str(r.get("key")))) for r in field_requirements
        ):
            return True
    return False


def nodes_allowed(
    selectors: Iterable[NodeSelectorTerms], nodes: Iterable[tuple[str, Mapping[str, str]]]
) -> frozenset[str]:
    """The names of the nodes (name, labels) that every one of a pod's volume selectors
    admits."""
    terms = list(selectors)
    return frozenset(
        name for name, labels in nodes if all(node_matches(t, name, labels) for t in terms)
    )
