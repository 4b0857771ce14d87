"""What the deployment controller does next, as a pure function of the pods it owns."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Pod = Mapping[str, Any]


@dataclass(frozen=True)
class RolloutStep:
    create: int
    delete: tuple[Pod, ...]


def is_ready(pod: Pod) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def resolve_int_or_percent(value: object, total: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable: an absolute number or a percentage of the replicas."""
    if isinstance(value, str) and value.endswith("%"):
        share = total * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


def _least_useful_first(pods: Sequence[Pod]) -> list[Pod]:
    """Unscheduled before scheduled, not ready before ready, youngest before oldest."""
    youngest_first = sorted(
        pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True
    )
    return sorted(youngest_first, key=lambda p: (bool(p["spec"].get("nodeName")), is_ready(p)))


def _scale(current: Sequence[Pod], desired: int) -> RolloutStep:
    if len(current) > desired:
        return RolloutStep(0, tuple(_least_useful_first(current)[: len(current) - desired]))
    return RolloutStep(desired - len(current), ())


def rollout_step(
    spec: Mapping[str, Any],
    current: Sequence[Pod],
    outdated: Sequence[Pod],
    outdated_terminating: int,
) -> RolloutStep:
    """Pods to create from the current template and pods to delete, for one reconcile pass.

    current/outdated are the live (not terminating) pods of the current and of older
    templates. Recreate removes every old pod and waits for them to be gone; RollingUpdate
    keeps at most replicas+maxSurge pods and at least replicas-maxUnavailable ready ones.
    """
    desired = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if not outdated and not (strategy.get("type") == "Recreate" and outdated_terminating):
        return _scale(current, desired)
    if strategy.get("type") == "Recreate":
        if outdated:
            return RolloutStep(0, tuple(outdated))
        return RolloutStep(0, ())  # old pods are still terminating
    rolling = strategy.get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = resolve_int_or_percent(
        rolling.get("maxUnavailable", "25%"), desired, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1  # validation forbids both being zero; keep the rollout moving
    create = max(0, min(desired - len(current), desired + surge - len(current) - len(outdated)))
    unready_old = [p for p in outdated if not is_ready(p)]
    ready_old = _least_useful_first([p for p in outdated if is_ready(p)])
    available = sum(1 for p in current if is_ready(p)) + len(ready_old)
    removable = max(0, available - (desired - unavailable))
    return RolloutStep(create, tuple(unready_old + ready_old[:removable]))
