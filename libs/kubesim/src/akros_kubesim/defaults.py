"""Field defaults the API server fills in on create and update, as pure functions on a copy."""

from typing import Any


def _container_defaults(container: dict[str, Any]) -> None:
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    untagged_or_latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if untagged_or_latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    limits = container["resources"].get("limits")
    if limits:
        # Requests default to limits, which is what makes a pod with only limits Guaranteed.
        requests = container["resources"].setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)


def pod_spec_defaults(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    for container in spec.get("containers") or []:
        _container_defaults(container)
    for container in spec.get("initContainers") or []:
        _container_defaults(container)


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {}) if kind not in _SPECLESS else None
    if kind == "Pod" and spec is not None:
        pod_spec_defaults(spec)
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        obj["status"].setdefault("qosClass", qos_class(spec))
    elif kind == "Deployment" and spec is not None:
        obj.setdefault("status", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        pod_spec_defaults(template.setdefault("spec", {}))
    elif kind == "ReplicaSet" and spec is not None:
        obj.setdefault("status", {}).setdefault("replicas", 0)
        spec.setdefault("replicas", 1)
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        pod_spec_defaults(template.setdefault("spec", {}))
    elif kind == "DaemonSet" and spec is not None:
        status = obj.setdefault("status", {})
        for counter in _DAEMONSET_STATUS_COUNTERS:
            status.setdefault(counter, 0)
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {"maxUnavailable": 1, "maxSurge": 0})
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        pod_spec_defaults(template.setdefault("spec", {}))
    elif kind == "Service" and spec is not None:
        obj.setdefault("status", {"loadBalancer": {}})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "PersistentVolumeClaim" and spec is not None:
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "PersistentVolume" and spec is not None:
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "StorageClass":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif kind == "Namespace" and spec is not None:
        spec.setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "PriorityClass":
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    if spec == {} and kind in _SPEC_OPTIONAL:
        del obj["spec"]


# The status fields the schema requires of a DaemonSet; the server starts them at zero.
_DAEMONSET_STATUS_COUNTERS = (
    "currentNumberScheduled",
    "numberMisscheduled",
    "desiredNumberScheduled",
    "numberReady",
)

# Kinds without a spec, and kinds whose empty spec is left out rather than served as {}.
_SPECLESS = {"ConfigMap", "Secret", "Event", "PriorityClass", "StorageClass"}
_SPEC_OPTIONAL = {"Node", "ResourceQuota", "NetworkPolicy", "Ingress"}


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed when every container's cpu and memory requests equal its limits."""
    containers = spec.get("containers") or []
    requests_seen = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        if requests or limits:
            requests_seen = True
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if not requests_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
