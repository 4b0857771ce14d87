"""meta.k8s.io/v1 Table rows for `kubectl get`, with the columns the API server's printers use."""

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from akros_kubesim.selectors import selector_to_string
from akros_kubesim.storage import is_default_class

Column = tuple[str, str, str, int]  # name, type, format, priority (1 = only with -o wide)
Row = list[Any]


def human_age(created: str | None, now: datetime | None = None) -> str:
    """The age kubectl prints, e.g. 45s, 3m20s, 5h, 12d (apimachinery's HumanDuration)."""
    if not created:
        return "<unknown>"
    start = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(int(((now or datetime.now(UTC)) - start).total_seconds()), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _age(obj: Mapping[str, Any]) -> str:
    return human_age(_meta(obj).get("creationTimestamp"))


def _pod_row(pod: Mapping[str, Any]) -> Row:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for container_status in statuses:
        waiting = (container_status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
    if _meta(pod).get("deletionTimestamp"):
        reason = "Terminating"
    total = len(spec.get("containers") or [])
    return [
        _meta(pod).get("name"),
        f"{ready}/{total}",
        reason,
        restarts,
        _age(pod),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _node_row(node: Mapping[str, Any]) -> Row:
    status = node.get("status") or {}
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    state = "Ready" if ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    prefix = "node-role.kubernetes.io/"
    roles = sorted(
        k[len(prefix) :] for k in (_meta(node).get("labels") or {}) if k.startswith(prefix)
    )
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        _meta(node).get("name"),
        state,
        ",".join(roles) or "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _deployment_row(deployment: Mapping[str, Any]) -> Row:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = spec.get("selector") or {}
    return [
        _meta(deployment).get("name"),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(deployment),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()),
    ]


def _replicaset_row(replicaset: Mapping[str, Any]) -> Row:
    spec, status = replicaset.get("spec") or {}, replicaset.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [
        _meta(replicaset).get("name"),
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(replicaset),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        selector_to_string(spec.get("selector") or {}),
    ]


def _service_row(service: Mapping[str, Any]) -> Row:
    spec = service.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
    return [
        _meta(service).get("name"),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        "<none>",
        ports or "<none>",
        _age(service),
        selector or "<none>",
    ]


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _access_modes(modes: Sequence[str]) -> str:
    return ",".join(_ACCESS_MODES.get(m, m) for m in modes)


def _pvc_row(claim: Mapping[str, Any]) -> Row:
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    return [
        _meta(claim).get("name"),
        status.get("phase", "Pending"),
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", ""),
        _access_modes(status.get("accessModes") or []),
        spec.get("storageClassName", ""),
        "<unset>",
        _age(claim),
        spec.get("volumeMode", "Filesystem"),
    ]


def _pv_row(volume: Mapping[str, Any]) -> Row:
    spec, status = volume.get("spec") or {}, volume.get("status") or {}
    reference = spec.get("claimRef") or {}
    claim = f"{reference.get('namespace', '')}/{reference.get('name', '')}" if reference else ""
    return [
        _meta(volume).get("name"),
        (spec.get("capacity") or {}).get("storage", ""),
        _access_modes(spec.get("accessModes") or []),
        spec.get("persistentVolumeReclaimPolicy", "Retain"),
        "Terminating" if _meta(volume).get("deletionTimestamp") else status.get("phase", ""),
        claim,
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason", ""),
        _age(volume),
        spec.get("volumeMode", "Filesystem"),
    ]


def _storage_class_row(storage_class: Mapping[str, Any]) -> Row:
    name = str(_meta(storage_class).get("name"))
    return [
        f"{name} (default)" if is_default_class(storage_class) else name,
        storage_class.get("provisioner", ""),
        storage_class.get("reclaimPolicy", "Delete"),
        storage_class.get("volumeBindingMode", "Immediate"),
        bool(storage_class.get("allowVolumeExpansion")),
        _age(storage_class),
    ]


def _event_row(event: Mapping[str, Any]) -> Row:
    involved = event.get("involvedObject") or {}
    return [
        human_age(event.get("lastTimestamp") or _meta(event).get("creationTimestamp")),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        event.get("message", ""),
    ]


def _daemonset_row(daemonset: Mapping[str, Any]) -> Row:
    spec, status = daemonset.get("spec") or {}, daemonset.get("status") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or []
    selector = pod_spec.get("nodeSelector") or {}
    return [
        _meta(daemonset).get("name"),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>",
        _age(daemonset),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        ",".join(
            f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()
        ),
    ]


def _generic_row(obj: Mapping[str, Any]) -> Row:
    return [_meta(obj).get("name"), _age(obj)]


_NAME: Column = ("Name", "string", "name", 0)
_AGE: Column = ("Age", "string", "", 0)

TABLES: dict[str, tuple[Sequence[Column], Callable[[Mapping[str, Any]], Row]]] = {
    "Pod": (
        [
            _NAME,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            _AGE,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ],
        _pod_row,
    ),
    "Node": (
        [
            _NAME,
            ("Status", "string", "", 0),
            ("Roles", "string", "", 0),
            _AGE,
            ("Version", "string", "", 0),
            ("Internal-IP", "string", "", 1),
            ("External-IP", "string", "", 1),
            ("OS-Image", "string", "", 1),
            ("Kernel-Version", "string", "", 1),
            ("Container-Runtime", "string", "", 1),
        ],
        _node_row,
    ),
    "Deployment": (
        [
            _NAME,
            ("Ready", "string", "", 0),
            ("Up-to-date", "string", "", 0),
            ("Available", "string", "", 0),
            _AGE,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        _deployment_row,
    ),
    "ReplicaSet": (
        [
            _NAME,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            _AGE,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        _replicaset_row,
    ),
    "DaemonSet": (
        [
            _NAME,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            ("Node Selector", "string", "", 0),
            _AGE,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        _daemonset_row,
    ),
    "Service": (
        [
            _NAME,
            ("Type", "string", "", 0),
            ("Cluster-IP", "string", "", 0),
            ("External-IP", "string", "", 0),
            ("Port(s)", "string", "", 0),
            _AGE,
            ("Selector", "string", "", 1),
        ],
        _service_row,
    ),
    "PersistentVolumeClaim": (
        [
            _NAME,
            ("Status", "string", "", 0),
            ("Volume", "string", "", 0),
            ("Capacity", "string", "", 0),
            ("Access Modes", "string", "", 0),
            ("StorageClass", "string", "", 0),
            ("VolumeAttributesClass", "string", "", 0),
            _AGE,
            ("VolumeMode", "string", "", 1),
        ],
        _pvc_row,
    ),
    "PersistentVolume": (
        [
            _NAME,
            ("Capacity", "string", "", 0),
            ("Access Modes", "string", "", 0),
            ("Reclaim Policy", "string", "", 0),
            ("Status", "string", "", 0),
            ("Claim", "string", "", 0),
            ("StorageClass", "string", "", 0),
            ("VolumeAttributesClass", "string", "", 0),
            ("Reason", "string", "", 0),
            _AGE,
            ("VolumeMode", "string", "", 1),
        ],
        _pv_row,
    ),
    "StorageClass": (
        [
            _NAME,
            ("Provisioner", "string", "", 0),
            ("ReclaimPolicy", "string", "", 0),
            ("VolumeBindingMode", "string", "", 0),
            ("AllowVolumeExpansion", "string", "", 0),
            _AGE,
        ],
        _storage_class_row,
    ),
    "Namespace": (
        [_NAME, ("Status", "string", "", 0), _AGE],
        lambda ns: [
            _meta(ns).get("name"),
            (ns.get("status") or {}).get("phase", "Active"),
            _age(ns),
        ],
    ),
    "ConfigMap": (
        [_NAME, ("Data", "integer", "", 0), _AGE],
        lambda cm: [
            _meta(cm).get("name"),
            len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            _age(cm),
        ],
    ),
    "Secret": (
        [_NAME, ("Type", "string", "", 0), ("Data", "integer", "", 0), _AGE],
        lambda s: [
            _meta(s).get("name"),
            s.get("type", "Opaque"),
            len(s.get("data") or {}),
            _age(s),
        ],
    ),
    "PriorityClass": (
        [
            _NAME,
            ("Value", "integer", "", 0),
            ("Global-Default", "boolean", "", 0),
            _AGE,
            ("PreemptionPolicy", "string", "", 0),
        ],
        lambda pc: [
            _meta(pc).get("name"),
            pc.get("value", 0),
            bool(pc.get("globalDefault")),
            _age(pc),
            pc.get("preemptionPolicy", "PreemptLowerPriority"),
        ],
    ),
    "Event": (
        [
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
        ],
        _event_row,
    ),
}


def table(kind: str, items: Sequence[Mapping[str, Any]], include_object: str) -> dict[str, Any]:
    """A Table of the items; include_object is None, Metadata (the default) or Object."""
    columns, row_of = TABLES.get(kind, ([_NAME, _AGE], _generic_row))
    rows = []
    for item in items:
        row: dict[str, Any] = {"cells": row_of(item)}
        if include_object == "Object":
            row["object"] = item
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {"name": name, "type": kind_, "format": fmt, "description": name, "priority": priority}
            for name, kind_, fmt, priority in columns
        ],
        "rows": rows,
    }
