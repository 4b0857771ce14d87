"""The ReplicaSet controller's decisions, as pure functions: which pods to create or delete,
when a pod counts as available, the status the controller reports, and the names and hashes
the deployment controller gives the ReplicaSets it makes."""

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from akros_kubesim.ownership import controller_reference

Pod = Mapping[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
# apimachinery's rand alphabet: no vowels, no lookalikes, so encoded hashes never spell words.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The API server's generateName: a base of at most 58 characters plus 5 random ones, so a
# generated name fits the 63 characters of a DNS label (storage/names.SimpleNameGenerator).
MAX_GENERATED_NAME_BASE = 58

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes) -> int:
    number = _FNV32_OFFSET
    for byte in data:
        number = ((number ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return number


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: every character mapped into the safe alphabet by its code."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def pod_template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """controller.ComputeHash: FNV-32a of the template (and of the collision count, once the
    controller has met a name collision), its decimal digits safely encoded.

    Upstream hashes Go's printed form of the PodTemplateSpec; kubesim hashes the canonical
    JSON instead, so the values differ from a real cluster's but have their shape (up to 10
    characters of "456789bcdf") and their stability."""
    data = orjson.dumps(template_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def template_without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template with the pod-template-hash label removed: what EqualIgnoreHash compares."""
    stripped = copy.deepcopy(dict(template))
    metadata = stripped.get("metadata") or {}
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != POD_TEMPLATE_HASH}
    if metadata:
        metadata = dict(metadata)
        if labels:
            metadata["labels"] = labels
        else:
            metadata.pop("labels", None)
        stripped["metadata"] = metadata
    return stripped


def generated_name(base: str, suffix: str) -> str:
    return base[:MAX_GENERATED_NAME_BASE] + suffix


def pod_generate_name(replicaset_name: str) -> str:
    """The generateName the controller gives its pods: the ReplicaSet's name and a dash (the
    server truncates it to 58 characters before adding its 5)."""
    return f"{replicaset_name}-"


# --- pods ---------------------------------------------------------------------------------


def is_ready(pod: Pod) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def is_active(pod: Pod) -> bool:
    """controller.FilterActivePods: not being deleted and not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def is_available(ready_seconds: float | None, min_ready_seconds: float) -> bool:
    """podutil.IsPodAvailable: ready, and for minReadySeconds (None: not ready)."""
    if ready_seconds is None:
        return False
    return min_ready_seconds <= 0 or ready_seconds >= min_ready_seconds


def least_useful_first(pods: Sequence[Pod]) -> list[Pod]:
    """controller.ActivePods order: unscheduled before scheduled, not running before running,
    not ready before ready, youngest before oldest; the first are deleted first."""
    youngest_first = sorted(
        pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True
    )
    return sorted(
        youngest_first,
        key=lambda p: (
            bool(p["spec"].get("nodeName")),
            (p.get("status") or {}).get("phase") == "Running",
            is_ready(p),
        ),
    )


def pods_to_create_and_delete(replicas: int, active: Sequence[Pod]) -> tuple[int, list[Pod]]:
    """The ReplicaSet's step towards spec.replicas active pods."""
    if len(active) < replicas:
        return replicas - len(active), []
    return 0, least_useful_first(active)[: len(active) - replicas]


def replicaset_status(
    replicaset: Mapping[str, Any],
    owned: Iterable[Pod],
    available: int,
) -> dict[str, Any]:
    """status as the ReplicaSet controller computes it from its pods (calculateStatus)."""
    active = [p for p in owned if is_active(p)]
    template_labels = ((replicaset["spec"].get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    fully_labeled = sum(
        1
        for p in active
        if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
    )
    status: dict[str, Any] = {
        "replicas": len(active),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": available,
        "observedGeneration": replicaset["metadata"].get("generation", 1),
    }
    # The API server leaves zero counts out (omitempty), except replicas.
    return {k: v for k, v in status.items() if v or k == "replicas"}


# --- the ReplicaSets a deployment makes ---------------------------------------------------

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Annotations of a Deployment that its ReplicaSets do not copy (deploymentutil).
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}


def revision_of(replicaset: Mapping[str, Any]) -> int:
    value = (replicaset["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def copied_annotations(deployment: Mapping[str, Any]) -> dict[str, str]:
    annotations = deployment["metadata"].get("annotations") or {}
    return {k: v for k, v in annotations.items() if k not in _NOT_COPIED}


def new_replicaset(
    deployment: Mapping[str, Any],
    pod_hash: str,
    revision: int,
    replicas: int,
    max_replicas: int,
) -> dict[str, Any]:
    """The ReplicaSet for the deployment's current template (getNewReplicaSet)."""
    metadata = deployment["metadata"]
    spec = deployment["spec"]
    template = copy.deepcopy(spec["template"])
    template_metadata = template.setdefault("metadata", {})
    template_metadata["labels"] = dict(template_metadata.get("labels") or {}) | {
        POD_TEMPLATE_HASH: pod_hash
    }
    selector = copy.deepcopy(spec["selector"])
    selector["matchLabels"] = dict(selector.get("matchLabels") or {}) | {
        POD_TEMPLATE_HASH: pod_hash
    }
    annotations = copied_annotations(deployment) | {
        REVISION: str(revision),
        DESIRED_REPLICAS: str(spec.get("replicas", 1)),
        MAX_REPLICAS: str(max_replicas),
    }
    replicaset_spec = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):  # omitempty: the API server writes no zero
        replicaset_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{metadata['name']}-{pod_hash}",
            "namespace": metadata["namespace"],
            "labels": dict(template_metadata["labels"]),
            "annotations": annotations,
            "ownerReferences": [controller_reference(deployment, "apps/v1", "Deployment")],
        },
        "spec": replicaset_spec,
    }


def controlled_pod(replicaset: Mapping[str, Any]) -> dict[str, Any]:
    """The pod a ReplicaSet creates from its template (named by the server)."""
    template = copy.deepcopy(dict(replicaset["spec"]["template"]))
    template_metadata = template.get("metadata") or {}
    pod_metadata: dict[str, Any] = {
        "generateName": pod_generate_name(replicaset["metadata"]["name"]),
        "namespace": replicaset["metadata"]["namespace"],
        "labels": dict(template_metadata.get("labels") or {}),
        "ownerReferences": [controller_reference(replicaset, "apps/v1", "ReplicaSet")],
    }
    if template_metadata.get("annotations"):
        pod_metadata["annotations"] = dict(template_metadata["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_metadata,
        "spec": template.get("spec") or {},
    }
