"""ResourceQuota accounting, as the quota admission plugin and controller do it: pure functions."""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from akros_kubesim.quantity import QuantityError, millicores, whole_units

# Object counts a quota can limit by their short name, besides the generic count/<resource>.
_COUNTED = {
    "Pod": "pods",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ResourceQuota": "resourcequotas",
}


def _amount(name: str, value: object) -> int:
    """cpu in millicores, everything else in whole units (bytes, devices)."""
    resource = name.rsplit(".", 1)[-1] if name.startswith(("requests.", "limits.")) else name
    try:
        return millicores(value) if resource == "cpu" else whole_units(value)
    except QuantityError:
        return 0


def _is_cpu(name: str) -> bool:
    return name in ("cpu", "requests.cpu", "limits.cpu")


def is_active_pod(pod: Mapping[str, Any]) -> bool:
    """Finished and terminating pods no longer use quota."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get(
        "deletionTimestamp"
    )


def demand(kind: str, resource_key: str, obj: Mapping[str, Any]) -> Counter[str]:
    """What one object counts against quotas, in base units, under each name that can limit it."""
    usage: Counter[str] = Counter({f"count/{resource_key}": 1})
    if kind in _COUNTED:
        usage[_COUNTED[kind]] = 1
    spec = obj.get("spec") or {}
    if kind == "Pod":
        for container in spec.get("containers") or []:
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                for name, value in (resources.get(section) or {}).items():
                    usage[f"{section}.{name}"] += _amount(name, value)
        for name in ("cpu", "memory", "ephemeral-storage"):
            if usage.get(f"requests.{name}"):
                usage[name] = usage[f"requests.{name}"]
    elif kind == "PersistentVolumeClaim":
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if storage is not None:
            usage["requests.storage"] = _amount("storage", storage)
    return usage


def used_in(objects: Iterable[tuple[str, str, Mapping[str, Any]]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for kind, resource_key, obj in objects:
        if kind != "Pod" or is_active_pod(obj):
            total.update(demand(kind, resource_key, obj))
    return total


def hard_limits(quota: Mapping[str, Any]) -> dict[str, int]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    return {name: _amount(name, value) for name, value in hard.items()}


def format_amount(name: str, amount: int) -> str:
    if _is_cpu(name):
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount >= size and amount % size == 0:
            return f"{amount // size}{suffix}"
    return str(amount)


def quota_status(quota: Mapping[str, Any], used: Mapping[str, int]) -> dict[str, Any]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    return {
        "hard": dict(hard),
        "used": {name: format_amount(name, used.get(name, 0)) for name in hard},
    }


def admission_problem(
    quota: Mapping[str, Any],
    used: Mapping[str, int],
    wanted: Mapping[str, int],
    kind: str,
) -> str | None:
    """The quota plugin's refusal for a new object, or None when it fits."""
    hard = hard_limits(quota)
    quota_name = quota["metadata"]["name"]
    if kind == "Pod":
        unspecified = sorted(
            limit
            for limit in hard
            if limit.startswith(("requests.", "limits."))
            and limit.split(".", 1)[1] in ("cpu", "memory")
            and not wanted.get(limit)
        )
        if unspecified:
            return f"failed quota: {quota_name}: must specify {','.join(unspecified)}"
    exceeded = sorted(
        limit
        for limit, cap in hard.items()
        if wanted.get(limit) and used.get(limit, 0) + wanted[limit] > cap
    )
    if not exceeded:
        return None

    def listing(values: Mapping[str, int]) -> str:
        return ",".join(
            f"{limit}={format_amount(limit, values.get(limit, 0))}" for limit in exceeded
        )

    return (
        f"exceeded quota: {quota_name}, requested: {listing(wanted)}, used: {listing(used)}, "
        f"limited: {listing(hard)}"
    )
