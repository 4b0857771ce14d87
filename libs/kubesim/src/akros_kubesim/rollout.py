"""What the deployment controller does next, as pure functions of the Deployment and the
ReplicaSets it owns: which ReplicaSet is new, how far each is scaled in one pass (Recreate,
RollingUpdate with maxSurge/maxUnavailable, proportional scaling), which old ones the revision
history limit prunes, and the status and conditions it reports (pkg/controller/deployment)."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from akros_kubesim.replicasets import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    revision_of,
    template_without_hash,
)

ReplicaSet = Mapping[str, Any]

# progressDeadlineSeconds of MaxInt32 means "no deadline": the Progressing condition goes.
NO_PROGRESS_DEADLINE = 2**31 - 1


def resolve_int_or_percent(value: object, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: a number, or a percentage of `total`."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        share = total * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _replicas(obj: Mapping[str, Any]) -> int:
    return _desired(obj.get("spec") or {})


def _desired(spec: Mapping[str, Any]) -> int:
    return int(spec.get("replicas", 1))


def _status(obj: Mapping[str, Any], name: str) -> int:
    return int((obj.get("status") or {}).get(name, 0))


def is_recreate(spec: Mapping[str, Any]) -> bool:
    return (spec.get("strategy") or {}).get("type") == "Recreate"


def fenceposts(spec: Mapping[str, Any]) -> tuple[int, int]:
    """ResolveFenceposts: (maxSurge, maxUnavailable) in pods; surge rounds up, unavailability
    down, and both zero (which validation refuses) becomes one unavailable."""
    if is_recreate(spec):
        return 0, 0
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    desired = _desired(spec)
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = resolve_int_or_percent(
        rolling.get("maxUnavailable", "25%"), desired, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(spec: Mapping[str, Any]) -> int:
    """deploymentutil.MaxUnavailable: no more than the replicas; 0 for Recreate."""
    if is_recreate(spec) or _desired(spec) == 0:
        return 0
    return min(fenceposts(spec)[1], _desired(spec))


def max_replicas(spec: Mapping[str, Any]) -> int:
    """The max-replicas annotation: replicas plus the surge."""
    return _desired(spec) + fenceposts(spec)[0]


def _by_creation(replicasets: Sequence[ReplicaSet]) -> list[ReplicaSet]:
    return sorted(
        replicasets,
        key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]),
    )


def find_new(deployment: Mapping[str, Any], replicasets: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """FindNewReplicaSet: the oldest ReplicaSet whose template is the deployment's, ignoring
    the pod-template-hash label (so an undo reuses the ReplicaSet of that revision)."""
    wanted = template_without_hash(deployment["spec"]["template"])
    for replicaset in _by_creation(replicasets):
        if template_without_hash(replicaset["spec"]["template"]) == wanted:
            return replicaset
    return None


def next_revision(old: Sequence[ReplicaSet]) -> int:
    return max((revision_of(r) for r in old), default=0) + 1


@dataclass(frozen=True)
class Plan:
    """One pass of the controller: create the new ReplicaSet with `create_replicas` pods (None:
    do not create it), set these ReplicaSets' spec.replicas, delete these old ones."""

    create_replicas: int | None = None
    scales: dict[str, int] = field(default_factory=dict)
    prune: tuple[str, ...] = ()


def _new_replicas_for_rolling(
    spec: Mapping[str, Any], all_replicasets: Sequence[ReplicaSet], new_replicas: int
) -> int:
    """NewRSNewReplicas: scale the new ReplicaSet up as far as replicas+maxSurge allows."""
    desired = _desired(spec)
    max_total = desired + fenceposts(spec)[0]
    current = sum(_replicas(r) for r in all_replicasets)
    if current >= max_total:
        return new_replicas
    return new_replicas + min(max_total - current, desired - new_replicas)


def _scale_down_old_for_rolling(
    spec: Mapping[str, Any], new: ReplicaSet, old: Sequence[ReplicaSet]
) -> dict[str, int]:
    """reconcileOldReplicaSets: first old pods that are not available, then available ones,
    oldest ReplicaSet first, never below replicas-maxUnavailable available pods."""
    if sum(_replicas(r) for r in old) == 0:
        return {}
    every = [new, *old]
    desired = _desired(spec)
    min_available = desired - max_unavailable(spec)
    new_unavailable = _replicas(new) - _status(new, "availableReplicas")
    max_scaled_down = sum(_replicas(r) for r in every) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    scales: dict[str, int] = {}
    sizes = {r["metadata"]["name"]: _replicas(r) for r in old}
    cleaned = 0
    for replicaset in _by_creation(old):
        name = replicaset["metadata"]["name"]
        if cleaned >= max_scaled_down:
            break
        unhealthy = sizes[name] - _status(replicaset, "availableReplicas")
        if sizes[name] == 0 or unhealthy <= 0:
            continue
        step = min(unhealthy, max_scaled_down - cleaned)
        sizes[name] -= step
        scales[name] = sizes[name]
        cleaned += step
    available = sum(_status(r, "availableReplicas") for r in every)
    if available <= min_available:
        return scales
    total_scale_down = available - min_available
    scaled = 0
    for replicaset in _by_creation(old):
        name = replicaset["metadata"]["name"]
        if scaled >= total_scale_down:
            break
        if sizes[name] == 0:
            continue
        step = min(sizes[name], total_scale_down - scaled)
        sizes[name] -= step
        scales[name] = sizes[name]
        scaled += step
    return scales


def is_scaling_event(spec: Mapping[str, Any], replicasets: Sequence[ReplicaSet]) -> bool:
    """isScalingEvent: an active ReplicaSet was sized for another replicas count."""
    desired = _desired(spec)
    for replicaset in replicasets:
        if _replicas(replicaset) == 0:
            continue
        annotated = (replicaset["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
        if annotated is not None and str(annotated).isdigit() and int(annotated) != desired:
            return True
    return False


def _proportional_scales(
    deployment: Mapping[str, Any], new: ReplicaSet | None, old: Sequence[ReplicaSet]
) -> dict[str, int]:
    """dc.scale: one active ReplicaSet takes the new size; with several, the change is shared
    in proportion to their sizes (the largest takes the remainder)."""
    spec = deployment["spec"]
    desired = _replicas(deployment)
    every = [r for r in (new, *old) if r is not None]
    active = [r for r in every if _replicas(r) > 0]
    target: ReplicaSet | None = None
    if len(active) == 1:
        target = active[0]
    elif not active:
        target = new if new is not None else (_by_creation(old)[-1] if old else None)
    if target is not None or len(active) <= 1:
        if target is None or _replicas(target) == desired:
            return {}
        return {target["metadata"]["name"]: desired}
    if (
        new is not None
        and _replicas(new) == desired
        and _status(new, "availableReplicas") >= desired
    ):
        return {r["metadata"]["name"]: 0 for r in old if _replicas(r)}
    if is_recreate(spec):
        return {}
    allowed = desired + fenceposts(spec)[0] if desired > 0 else 0
    to_add = allowed - sum(_replicas(r) for r in every)
    if to_add == 0:
        return {}
    # Scaling up favours the larger and newer ReplicaSets, scaling down the larger and older.
    order = sorted(
        active,
        key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]),
        reverse=to_add > 0,
    )
    order = sorted(order, key=_replicas, reverse=True)
    sizes: dict[str, int] = {}
    added = 0
    for replicaset in order:
        proportion = _proportion(deployment, replicaset, to_add, added)
        sizes[replicaset["metadata"]["name"]] = _replicas(replicaset) + proportion
        added += proportion
    first = order[0]["metadata"]["name"]
    sizes[first] = max(0, sizes[first] + to_add - added)
    return {name: size for name, size in sizes.items() if size != _replicas(_named(every, name))}


def _named(replicasets: Sequence[ReplicaSet], name: str) -> ReplicaSet:
    return next(r for r in replicasets if r["metadata"]["name"] == name)


def _proportion(
    deployment: Mapping[str, Any], replicaset: ReplicaSet, to_add: int, added: int
) -> int:
    """GetProportion: this ReplicaSet's share of the change, within what is left to add."""
    if _replicas(replicaset) == 0 or to_add == 0 or to_add == added:
        return 0
    desired = _replicas(deployment)
    if desired == 0:
        fraction = -_replicas(replicaset)
    else:
        total = desired + fenceposts(deployment["spec"])[0]
        annotated = (replicaset["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
        base = int(annotated) if annotated and str(annotated).isdigit() else 0
        base = base or _status(deployment, "replicas") or 1
        fraction = math.floor(_replicas(replicaset) * total / base + 0.5) - _replicas(replicaset)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def history_to_prune(spec: Mapping[str, Any], old: Sequence[ReplicaSet]) -> tuple[str, ...]:
    """cleanupDeployment: the oldest revisions beyond revisionHistoryLimit, among the old
    ReplicaSets that are scaled to zero and have no pods left."""
    limit = int(spec.get("revisionHistoryLimit", 10))
    cleanable = sorted(
        (
            r
            for r in old
            if _replicas(r) == 0
            and _status(r, "replicas") == 0
            and not r["metadata"].get("deletionTimestamp")
        ),
        key=revision_of,
    )
    excess = len(cleanable) - limit
    return tuple(r["metadata"]["name"] for r in cleanable[: max(excess, 0)])


def plan(
    deployment: Mapping[str, Any],
    new: ReplicaSet | None,
    old: Sequence[ReplicaSet],
    old_pods_running: bool,
) -> Plan:
    """The controller's next step for a deployment (syncDeployment, one pass).

    old_pods_running: some pod of an old ReplicaSet has not finished (terminating ones count),
    which a Recreate waits for before it makes the new ReplicaSet."""
    spec = deployment["spec"]
    every = [r for r in (new, *old) if r is not None]
    desired = _replicas(deployment)
    if spec.get("paused"):
        return Plan(scales=_proportional_scales(deployment, new, old) if every else {})
    if is_scaling_event(spec, every):
        return Plan(scales=_proportional_scales(deployment, new, old))
    if is_recreate(spec):
        active_old = {r["metadata"]["name"]: 0 for r in old if _replicas(r) > 0}
        if active_old:
            return Plan(scales=active_old)
        if old_pods_running:
            return Plan()
        if new is None:
            return Plan(create_replicas=desired)
        if _replicas(new) != desired:
            return Plan(scales={new["metadata"]["name"]: desired})
    else:
        if new is None:
            return Plan(create_replicas=_new_replicas_for_rolling(spec, old, 0))
        name = new["metadata"]["name"]
        if _replicas(new) > desired:
            return Plan(scales={name: desired})
        if _replicas(new) < desired:
            wanted = _new_replicas_for_rolling(spec, every, _replicas(new))
            if wanted != _replicas(new):
                return Plan(scales={name: wanted})
        scales = _scale_down_old_for_rolling(spec, new, old)
        if scales:
            return Plan(scales=scales)
    if is_complete(deployment, status_counts(deployment, new, old)):
        return Plan(prune=history_to_prune(spec, old))
    return Plan()


# --- status -------------------------------------------------------------------------------


def status_counts(
    deployment: Mapping[str, Any], new: ReplicaSet | None, old: Sequence[ReplicaSet]
) -> dict[str, int]:
    """calculateStatus's numbers: pods of every ReplicaSet, of the new one, ready, available."""
    every = [r for r in (new, *old) if r is not None]
    available = sum(_status(r, "availableReplicas") for r in every)
    return {
        "observedGeneration": int(deployment["metadata"].get("generation", 1)),
        "replicas": sum(_status(r, "replicas") for r in every),
        "updatedReplicas": _status(new, "replicas") if new is not None else 0,
        "readyReplicas": sum(_status(r, "readyReplicas") for r in every),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(_replicas(r) for r in every) - available, 0),
    }


def is_complete(deployment: Mapping[str, Any], counts: Mapping[str, int]) -> bool:
    """DeploymentComplete: every replica updated and available, and nothing older left."""
    desired = _replicas(deployment)
    return (
        counts["updatedReplicas"] == desired
        and counts["replicas"] == desired
        and counts["availableReplicas"] == desired
        and counts["observedGeneration"] >= int(deployment["metadata"].get("generation", 1))
    )


def _has_progressed(previous: Mapping[str, Any], counts: Mapping[str, int]) -> bool:
    """DeploymentProgressing: more pods updated, ready or available, or fewer old ones."""
    old_before = int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0))
    old_now = counts["replicas"] - counts["updatedReplicas"]
    return (
        counts["updatedReplicas"] > int(previous.get("updatedReplicas", 0))
        or old_now < old_before
        or counts["readyReplicas"] > int(previous.get("readyReplicas", 0))
        or counts["availableReplicas"] > int(previous.get("availableReplicas", 0))
    )


def condition(kind: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """SetDeploymentCondition: the same status and reason changes nothing (not even times);
    the same status keeps its transition time."""
    for index, current in enumerate(conditions):
        if current["type"] != new["type"]:
            continue
        if current["status"] == new["status"] and current.get("reason") == new.get("reason"):
            return
        if current["status"] == new["status"]:
            new = new | {"lastTransitionTime": current["lastTransitionTime"]}
        del conditions[index]
        break
    conditions.append(new)


def progressing_on_new_replicaset(
    conditions: list[dict[str, Any]], reason: str, message: str, now: str
) -> None:
    """The Progressing condition the controller sets when it creates or finds the new
    ReplicaSet (NewReplicaSetCreated, FoundNewReplicaSet)."""
    set_condition(conditions, condition("Progressing", "True", reason, message, now))


@dataclass(frozen=True)
class StatusUpdate:
    status: dict[str, Any]
    # The Progressing condition was refreshed: the progress deadline counts from now.
    progressed: bool


def deployment_status(
    deployment: Mapping[str, Any],
    new: ReplicaSet | None,
    old: Sequence[ReplicaSet],
    deadline_passed: bool,
    now: str,
) -> StatusUpdate:
    """syncRolloutStatus: the counts, Available (minimum availability), and Progressing
    (NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded).

    deadline_passed: progressDeadlineSeconds have gone by since the condition last showed
    progress."""
    previous = deployment.get("status") or {}
    counts = status_counts(deployment, new, old)
    conditions = [dict(c) for c in previous.get("conditions") or []]
    spec = deployment["spec"]
    if counts["availableReplicas"] >= _replicas(deployment) - max_unavailable(spec):
        available = condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    else:
        available = condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(conditions, available)
    progressed = False
    has_deadline = int(spec.get("progressDeadlineSeconds", 600)) != NO_PROGRESS_DEADLINE
    current = next((c for c in conditions if c["type"] == "Progressing"), None)
    if not has_deadline:
        conditions = [c for c in conditions if c["type"] != "Progressing"]
    complete_before = (
        current is not None
        and current.get("reason") == "NewReplicaSetAvailable"
        and counts["replicas"] == counts["updatedReplicas"]
    )
    subject = (
        f'ReplicaSet "{new["metadata"]["name"]}"'
        if new is not None
        else f'Deployment "{deployment["metadata"]["name"]}"'
    )
    if has_deadline and not complete_before:
        if is_complete(deployment, counts):
            set_condition(
                conditions,
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f"{subject} has successfully progressed.",
                    now,
                ),
            )
        elif _has_progressed(previous, counts):
            refreshed = condition(
                "Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing.", now
            )
            if current is not None and current["status"] == "True":
                refreshed["lastTransitionTime"] = current["lastTransitionTime"]
                conditions = [c for c in conditions if c["type"] != "Progressing"]
            set_condition(conditions, refreshed)
            progressed = True
        elif current is not None and (
            current.get("reason") == "ProgressDeadlineExceeded" or deadline_passed
        ):
            set_condition(
                conditions,
                condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f"{subject} has timed out progressing.",
                    now,
                ),
            )
    # Every count is omitempty in DeploymentStatus (unlike a ReplicaSet's replicas): no zeros.
    status: dict[str, Any] = {k: v for k, v in counts.items() if v or k == "observedGeneration"}
    if previous.get("collisionCount"):
        status["collisionCount"] = previous["collisionCount"]
    status["conditions"] = conditions
    return StatusUpdate(status, progressed)
