"""The resource types kubesim serves and the discovery documents that describe them."""

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # subresource name -> (kind it takes and returns, verbs)
    subresources: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    # Resources whose objects live in memory only, computed on every read (metrics).
    computed: bool = False
    # A second version of another resource's objects (events.k8s.io/v1 Events are core/v1
    # Events): the store key they live under, converted on every read and write.
    stored_as: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """A name unique across groups, used to index the store."""
        if self.stored_as:
            return self.stored_as
        return f"{self.plural}.{self.group}" if self.group else self.plural


_STATUS = ("get", "patch", "update")
RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources={"status": ("Namespace", _STATUS), "finalize": ("Namespace", ("update",))},
    ),
    ResourceType(
        "", "v1", "Node", "nodes", False, ("no",), subresources={"status": ("Node", _STATUS)}
    ),
    ResourceType(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        ("po",),
        categories=("all",),
        subresources={
            "status": ("Pod", _STATUS),
            "binding": ("Binding", ("create",)),
            "log": ("Pod", ("get",)),
        },
    ),
    ResourceType(
        "",
        "v1",
        "Service",
        "services",
        True,
        ("svc",),
        categories=("all",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources={"status": ("Service", _STATUS)},
    ),
    ResourceType(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        True,
        ("pvc",),
        subresources={"status": ("PersistentVolumeClaim", _STATUS)},
    ),
    ResourceType(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        False,
        ("pv",),
        subresources={"status": ("PersistentVolume", _STATUS)},
    ),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "Event", "events", True, ("ev",)),
    ResourceType(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        True,
        ("quota",),
        subresources={"status": ("ResourceQuota", _STATUS)},
    ),
    ResourceType(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        ("deploy",),
        categories=("all",),
        subresources={"status": ("Deployment", _STATUS), "scale": ("Scale", _STATUS)},
    ),
    ResourceType(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        True,
        ("rs",),
        categories=("all",),
        subresources={"status": ("ReplicaSet", _STATUS), "scale": ("Scale", _STATUS)},
    ),
    ResourceType(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        True,
        ("ds",),
        categories=("all",),
        subresources={"status": ("DaemonSet", _STATUS)},
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ("hpa",),
        categories=("all",),
        subresources={"status": ("HorizontalPodAutoscaler", _STATUS)},
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        True,
        ("ing",),
        subresources={"status": ("Ingress", _STATUS)},
    ),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    ResourceType("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    # Stored and validated, with no behaviour: kubesim does no authorization and no evictions,
    # but the platform's manifests (service accounts, RBAC, disruption budgets) apply to it.
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False
    ),
    # Stored and validated only: kubesim evaluates no CEL, so these admit every request (the
    # platform's manifests apply; a real API server enforces them).
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
    ),
    ResourceType(
        "metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=READ_VERBS, computed=True
    ),
    ResourceType(
        "metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=READ_VERBS, computed=True
    ),
)

# Served, but not stored on their own: the controllers and the store know only RESOURCE_TYPES.
VIEWS: tuple[ResourceType, ...] = (
    ResourceType("events.k8s.io", "v1", "Event", "events", True, ("ev",), stored_as="events"),
)
SERVED = RESOURCE_TYPES + VIEWS

BY_PATH = {(r.group, r.version, r.plural): r for r in SERVED}
BY_KIND = {(r.api_version, r.kind): r for r in SERVED}
POD = BY_PATH[("", "v1", "pods")]
NODE = BY_PATH[("", "v1", "nodes")]
NAMESPACE = BY_PATH[("", "v1", "namespaces")]
EVENT = BY_PATH[("", "v1", "events")]
EVENTS_V1 = BY_PATH[("events.k8s.io", "v1", "events")]
DEPLOYMENT = BY_PATH[("apps", "v1", "deployments")]
DAEMONSET = BY_PATH[("apps", "v1", "daemonsets")]
REPLICASET = BY_PATH[("apps", "v1", "replicasets")]
PVC = BY_PATH[("", "v1", "persistentvolumeclaims")]
PERSISTENT_VOLUME = BY_PATH[("", "v1", "persistentvolumes")]
STORAGE_CLASS = BY_PATH[("storage.k8s.io", "v1", "storageclasses")]
PRIORITY_CLASS = BY_PATH[("scheduling.k8s.io", "v1", "priorityclasses")]
SERVICE = BY_PATH[("", "v1", "services")]
SERVICE_ACCOUNT = BY_PATH[("", "v1", "serviceaccounts")]
RESOURCE_QUOTA = BY_PATH[("", "v1", "resourcequotas")]
HPA = BY_PATH[("autoscaling", "v2", "horizontalpodautoscalers")]


def group_versions() -> dict[str, list[str]]:
    """Every API group and its versions, the legacy core group under the empty name."""
    groups: dict[str, list[str]] = {}
    for resource in SERVED:
        versions = groups.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)
    return groups


def api_versions_document() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def api_group_list_document() -> dict[str, Any]:
    groups = []
    for name, versions in group_versions().items():
        if not name:
            continue
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        groups.append({"name": name, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_document(group: str) -> dict[str, Any] | None:
    versions = group_versions().get(group)
    if not group or versions is None:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_resource_list_document(group: str, version: str) -> dict[str, Any] | None:
    members = [r for r in SERVED if r.group == group and r.version == version]
    if not members:
        return None
    entries: list[dict[str, Any]] = []
    for resource in members:
        entry: dict[str, Any] = {
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": list(resource.verbs),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        entries.append(entry)
        for sub, (kind, verbs) in resource.subresources.items():
            sub_entry: dict[str, Any] = {
                "name": f"{resource.plural}/{sub}",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if sub == "scale":
                sub_entry |= {"group": "autoscaling", "version": "v1"}
            entries.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }
