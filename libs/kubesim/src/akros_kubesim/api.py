"""The API machinery: admission, validation, concurrency and deletion semantics over the store.

HTTP handlers call these methods and nothing else; controllers use the same store directly
for the writes a kubelet or controller-manager would make.
"""

import copy
import secrets
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from akros_kubesim import errors, patch, quota, storage, validation
from akros_kubesim.defaults import apply_defaults
from akros_kubesim.errors import ApiError, Cause
from akros_kubesim.replicasets import generated_name
from akros_kubesim.resources import (
    DEPLOYMENT,
    EVENT,
    NAMESPACE,
    PERSISTENT_VOLUME,
    POD,
    PRIORITY_CLASS,
    PVC,
    RESOURCE_QUOTA,
    RESOURCE_TYPES,
    SERVICE,
    STORAGE_CLASS,
    ResourceType,
)
from akros_kubesim.selectors import selector_to_string
from akros_kubesim.store import Key, Store, now_rfc3339, now_rfc3339_micro

_NAME_SUFFIX_ALPHABET = (
    "bcdfghjklmnpqrstvwxz2456789"  # the API server's, free of vowels and lookalikes
)


FOREGROUND_FINALIZER = "foregroundDeletion"
STORED_KEYS = tuple(r.key for r in RESOURCE_TYPES if not r.computed)


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(length))


def _forbidden(message: str) -> ApiError:
    return ApiError(403, message)


class Api:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Called with (namespace, name) when a pod is deleted gracefully, so the simulated
        # kubelet can finish the termination later.
        self.on_graceful_pod_delete: Callable[[Key], None] = lambda key: None
        self._last_event_ns = 0
        self._next_service_ip = 1
        # The node kube-scheduler runs on, named in its events' reportingInstance.
        self.control_plane_node = "control-plane"

    # --- helpers -------------------------------------------------------------------------

    def get(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(resource.key, namespace, name)
        if obj is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return obj

    def _check_namespace(self, resource: ResourceType, namespace: str) -> None:
        if not resource.namespaced:
            return
        ns = self.store.get(NAMESPACE.key, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise _forbidden(
                f"unable to create new content in namespace {namespace} "
                "because it is being terminated"
            )

    @staticmethod
    def _typed(resource: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        for field, expected in (("apiVersion", resource.api_version), ("kind", resource.kind)):
            given = obj.get(field)
            if given and given != expected:
                raise errors.bad_request(
                    f"the {field} in the data ({given}) does not match "
                    f"the expected {field} ({expected})"
                )
            obj[field] = expected
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _validate(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        strict_fields: bool,
    ) -> list[str]:
        invalid, unknown, warnings = validation.schema_problems(obj, strict_fields)
        if unknown:
            fields = ", ".join(c.message for c in unknown)
            raise errors.bad_request(f"strict decoding error: {fields}")
        problems = invalid + validation.semantic_problems(resource, obj)
        if old is not None:
            problems += validation.update_problems(resource, old, obj)
        if problems:
            name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
            raise errors.invalid(resource.kind, resource.group, name, problems)
        return warnings

    def quotas_in(self, namespace: str) -> list[dict[str, Any]]:
        quotas, _, _ = self.store.list_page(RESOURCE_QUOTA.key, namespace, None, 0, None)
        return quotas

    def namespace_usage(self, namespace: str) -> Counter[str]:
        """Everything in the namespace that quotas count, in base units."""
        objects = (
            (resource.kind, resource.key, obj)
            for resource in RESOURCE_TYPES
            if resource.namespaced and not resource.computed
            for obj in self.store.list_page(resource.key, namespace, None, 0, None)[0]
        )
        return quota.used_in(objects)

    def _admit_quota(self, resource: ResourceType, namespace: str, obj: dict[str, Any]) -> None:
        quotas = self.quotas_in(namespace)
        if not quotas:
            return
        wanted = quota.demand(resource.kind, resource.key, obj)
        used = self.namespace_usage(namespace)
        for candidate in quotas:
            problem = quota.admission_problem(candidate, used, wanted, resource.kind)
            if problem:
                name = obj["metadata"].get("name", "")
                raise _forbidden(f'{resource.plural} "{name}" is forbidden: {problem}')

    def _allocate_cluster_ip(self, service: dict[str, Any]) -> None:
        spec = service["spec"]
        if spec.get("type") == "ExternalName" or spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]] if spec.get("clusterIP") else [])
            return
        self._next_service_ip += 1
        number = self._next_service_ip
        address = f"10.96.{(number >> 8) & 255}.{number & 255}"
        spec["clusterIP"] = address
        spec["clusterIPs"] = [address]

    def _admit_pod(self, pod: dict[str, Any]) -> None:
        """Resolves priorityClassName into spec.priority, as the Priority admission plugin does."""
        spec = pod.setdefault("spec", {})
        class_name = spec.get("priorityClassName")
        if class_name:
            priority_class = self.store.get(PRIORITY_CLASS.key, "", class_name)
            if priority_class is None:
                name = pod["metadata"].get("name", "")
                raise _forbidden(
                    f'pods "{name}" is forbidden: no PriorityClass with name {class_name} was found'
                )
        else:
            priority_class = next(
                (pc for pc in self.store.all(PRIORITY_CLASS.key) if pc.get("globalDefault")), None
            )
            if priority_class is not None:
                spec["priorityClassName"] = priority_class["metadata"]["name"]
        spec["priority"] = int(priority_class["value"]) if priority_class else 0
        if priority_class and priority_class.get("preemptionPolicy"):
            spec["preemptionPolicy"] = priority_class["preemptionPolicy"]

    # --- create --------------------------------------------------------------------------

    def create(
        self,
        resource: ResourceType,
        namespace: str,
        body: Any,
        *,
        dry_run: bool = False,
        strict_fields: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        obj = self._typed(resource, body)
        metadata = obj["metadata"]
        if resource.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match "
                    "the namespace sent on the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        for server_field in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "selfLink",
        ):
            metadata.pop(server_field, None)
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = generated_name(metadata["generateName"], random_suffix())
        apply_defaults(resource.kind, obj)
        warnings = self._validate(resource, obj, None, strict_fields)
        self._check_namespace(resource, namespace)
        if resource is POD:
            self._admit_pod(obj)
        if resource is SERVICE:
            self._allocate_cluster_ip(obj)
        if resource is PVC:
            storage.admit_claim(obj, self.store.all(STORAGE_CLASS.key))
        if resource is PERSISTENT_VOLUME:
            storage.admit_volume(obj)
        if resource.namespaced:
            self._admit_quota(resource, namespace, obj)
        if (
            self.store.get(resource.key, metadata.get("namespace", ""), metadata["name"])
            is not None
        ):
            raise errors.already_exists(resource.plural, resource.group, metadata["name"])
        metadata["generation"] = 1
        if dry_run:
            return obj, warnings
        return self.store.insert(resource.key, obj), warnings

    # --- update and patch ----------------------------------------------------------------

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        strict_fields: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        old = self.get(resource, namespace, name)
        obj = self._typed(resource, body)
        metadata = obj["metadata"]
        if metadata.get("name", name) != name:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        given_version = metadata.get("resourceVersion")
        if given_version and given_version != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name)
        new = self._merge_update(resource, old, obj, subresource)
        apply_defaults(resource.kind, new)
        warnings = self._validate(resource, new, old, strict_fields)
        return self._commit_update(resource, old, new, dry_run), warnings

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        strict_fields: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        old = self.get(resource, namespace, name)
        patched = patch.apply_patch(content_type, copy.deepcopy(old), body)
        patched_metadata = patched.get("metadata") or {}
        given_version = patched_metadata.get("resourceVersion")
        if given_version and given_version != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name)
        obj = self._typed(resource, patched)
        new = self._merge_update(resource, old, obj, subresource)
        apply_defaults(resource.kind, new)
        warnings = self._validate(resource, new, old, strict_fields)
        return self._commit_update(resource, old, new, dry_run), warnings

    def _merge_update(
        self, resource: ResourceType, old: dict[str, Any], obj: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """The stored object after a write: status and spec each only through their endpoint."""
        has_status = "status" in resource.subresources
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            return new
        new = obj
        metadata = new["metadata"]
        for server_field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if server_field in old["metadata"]:
                metadata[server_field] = old["metadata"][server_field]
            else:
                metadata.pop(server_field, None)
        metadata["name"] = old["metadata"]["name"]
        if resource.namespaced:
            metadata["namespace"] = old["metadata"]["namespace"]
        if has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        return new

    def _commit_update(
        self, resource: ResourceType, old: dict[str, Any], new: dict[str, Any], dry_run: bool
    ) -> dict[str, Any]:
        if resource is POD:
            new["spec"]["priority"] = old["spec"].get("priority", 0)
        if _desired_state(old) != _desired_state(new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return old  # a no-op write keeps the resourceVersion, as the API server does
        if dry_run:
            return new
        finalized = new["metadata"].get("deletionTimestamp") and not new["metadata"].get(
            "finalizers"
        )
        if finalized and resource is not POD and resource is not NAMESPACE:
            return self.store.remove(
                resource.key, (new["metadata"].get("namespace", ""), new["metadata"]["name"])
            )
        return self.store.replace(resource.key, new)

    # --- scale and binding ---------------------------------------------------------------

    def scale(
        self, namespace: str, name: str, resource: ResourceType = DEPLOYMENT
    ) -> dict[str, Any]:
        return scale_of(self.get(resource, namespace, name))

    def update_scale(
        self,
        namespace: str,
        name: str,
        body: Any,
        content_type: str | None,
        resource: ResourceType = DEPLOYMENT,
    ) -> dict[str, Any]:
        deployment = self.get(resource, namespace, name)
        current = scale_of(deployment)
        requested = patch.apply_patch(content_type, current, body) if content_type else body
        if not isinstance(requested, dict):
            raise errors.bad_request("the request body must be a Scale object")
        given_version = (requested.get("metadata") or {}).get("resourceVersion")
        if given_version and given_version != deployment["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, "apps", name)
        # Go leaves a zero replica count out of a Scale's JSON (omitempty) and protobuf cannot
        # tell it from unset: a Scale without spec.replicas asks for 0, as the API server reads it.
        replicas = (requested.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            cause = Cause(
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
                "spec.replicas",
            )
            raise errors.invalid("Scale", "autoscaling", name, [cause])
        if replicas != deployment["spec"].get("replicas"):
            updated = copy.deepcopy(deployment)
            updated["spec"]["replicas"] = replicas
            updated["metadata"]["generation"] = int(deployment["metadata"].get("generation", 1)) + 1
            deployment = self.store.replace(resource.key, updated)
        return scale_of(deployment)

    def bind(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        pod = self.get(POD, namespace, name)
        target = (body or {}).get("target") or {}
        node_name = target.get("name")
        if not node_name:
            cause = Cause("FieldValueRequired", "Required value", "target.name")
            raise errors.invalid("Binding", "", name, [cause])
        if pod["spec"].get("nodeName"):
            raise ApiError(
                409, f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"'
            )
        bound = bind_pod(pod, node_name)
        self.store.replace(POD.key, bound)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    # --- delete --------------------------------------------------------------------------

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        options: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = self.get(resource, namespace, name)
        preconditions = options.get("preconditions") or {}
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            expected = preconditions.get(field)
            if expected and expected != obj["metadata"].get(field):
                raise ApiError(
                    409,
                    f"Precondition failed: {label} in precondition: {expected}, "
                    f"{label} in object meta: "
                    f"{obj['metadata'].get(field)}",
                )
        if dry_run:
            return obj
        if options.get("propagationPolicy") == "Orphan":
            self._orphan_dependents(obj["metadata"]["uid"])
        key = (obj["metadata"].get("namespace", ""), name)
        if resource is NAMESPACE:
            return self._mark_deleting(resource, obj, None)
        if resource is POD:
            grace = options.get("gracePeriodSeconds")
            if grace is None:
                grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
            running_somewhere = obj["spec"].get("nodeName") and obj["status"].get("phase") not in (
                "Succeeded",
                "Failed",
            )
            if grace > 0 and running_somewhere:
                if obj["metadata"].get("deletionTimestamp"):
                    return obj
                marked = self._mark_deleting(resource, obj, int(grace))
                self.on_graceful_pod_delete(key)
                return marked
        if options.get("propagationPolicy") == "Foreground" and resource is not POD:
            # The owner stays, marked, until the garbage collector has removed its dependents.
            return self._mark_deleting(resource, obj, 0, FOREGROUND_FINALIZER)
        if obj["metadata"].get("finalizers"):
            return (
                obj
                if obj["metadata"].get("deletionTimestamp")
                else self._mark_deleting(resource, obj, 0)
            )
        return self.store.remove(resource.key, key)

    def _mark_deleting(
        self, resource: ResourceType, obj: dict[str, Any], grace: int | None, finalizer: str = ""
    ) -> dict[str, Any]:
        if obj["metadata"].get("deletionTimestamp"):
            return obj
        marked = copy.deepcopy(obj)
        if finalizer:
            marked["metadata"]["finalizers"] = [
                *marked["metadata"].get("finalizers", []),
                finalizer,
            ]
        when = datetime.now(UTC) + timedelta(seconds=grace or 0)
        marked["metadata"]["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if grace is not None:
            marked["metadata"]["deletionGracePeriodSeconds"] = grace
        if resource is NAMESPACE:
            marked.setdefault("status", {})["phase"] = "Terminating"
        return self.store.replace(resource.key, marked)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for resource_key in STORED_KEYS:
            for dependent in self.store.all(resource_key):
                references = dependent["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in references):
                    freed = copy.deepcopy(dependent)
                    freed["metadata"]["ownerReferences"] = [
                        r for r in references if r.get("uid") != owner_uid
                    ]
                    if not freed["metadata"]["ownerReferences"]:
                        del freed["metadata"]["ownerReferences"]
                    self.store.replace(resource_key, freed)

    # --- events --------------------------------------------------------------------------

    def _event_clock(self) -> int:
        """Wall-clock nanoseconds, strictly increasing so two events never share a name."""
        self._last_event_ns = max(time.time_ns(), self._last_event_ns + 1)
        return self._last_event_ns

    def record_event(
        self,
        involved: dict[str, Any],
        kind: str,
        reason: str,
        message: str,
        event_type: str = "Normal",
        component: str = "default-scheduler",
        related: dict[str, Any] | None = None,
    ) -> None:
        """Records an event as its reporter does: kube-scheduler through events.k8s.io/v1
        (eventTime, action, no legacy timestamps), the kubelet and controllers through the
        legacy core/v1 recorder (first/last timestamps and a count, no eventTime)."""
        metadata = involved["metadata"]
        namespace = metadata.get("namespace") or "default"
        if self.store.get(NAMESPACE.key, "", namespace) is None:
            return
        now = now_rfc3339()
        api_version = involved.get("apiVersion", "v1")
        event: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                # As client-go's recorder names them: the object, then the time in hex
                # nanoseconds, so names sort in the order things happened.
                "name": f"{metadata['name']}.{self._event_clock():x}",
                "namespace": namespace,
            },
            "involvedObject": {
                "kind": kind,
                "namespace": metadata.get("namespace", ""),
                "name": metadata["name"],
                "uid": metadata.get("uid", ""),
                "apiVersion": api_version,
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "reportingComponent": component,
        }
        action = _EVENTS_API_ACTIONS.get((component, reason))
        if action is not None:
            event |= {
                "eventTime": now_rfc3339_micro(),
                "action": action,
                "source": {},
                "firstTimestamp": None,
                "lastTimestamp": None,
                "reportingInstance": f"{component}-{self.control_plane_node}",
            }
            if related is not None:
                related_metadata = related["metadata"]
                event["related"] = {
                    "kind": related.get("kind", "Pod"),
                    "apiVersion": related.get("apiVersion", "v1"),
                    "namespace": related_metadata.get("namespace", ""),
                    "name": related_metadata["name"],
                    "uid": related_metadata.get("uid", ""),
                }
        else:
            event |= {
                "source": {"component": component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "eventTime": None,
                "count": 1,
                "reportingInstance": "",
            }
        self.store.insert(EVENT.key, event)


# Reporters that write through events.k8s.io/v1, with the action each of their reasons names
# (kube-scheduler's: it binds, fails to schedule, preempts).
_EVENTS_API_ACTIONS = {
    ("default-scheduler", "Scheduled"): "Binding",
    ("default-scheduler", "FailedScheduling"): "Scheduling",
    ("default-scheduler", "Preempted"): "Preempting",
}


def _desired_state(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    metadata = deployment["metadata"]
    replicas = deployment["spec"].get("replicas", 1)
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        # ScaleSpec.replicas is omitempty (ScaleStatus.replicas is not): no zero in the spec.
        "spec": {"replicas": replicas} if replicas else {},
        "status": {
            "replicas": (deployment.get("status") or {}).get("replicas", 0),
            "selector": selector_to_string(deployment["spec"].get("selector") or {}),
        },
    }


def bind_pod(pod: dict[str, Any], node_name: str) -> dict[str, Any]:
    """The pod assigned to a node, with the PodScheduled condition the scheduler sets."""
    bound = copy.deepcopy(pod)
    bound["spec"]["nodeName"] = node_name
    status = bound.setdefault("status", {})
    status.pop("nominatedNodeName", None)
    set_condition(status, "PodScheduled", "True", "", "")
    return bound


def set_condition(status: dict[str, Any], kind: str, value: str, reason: str, message: str) -> None:
    conditions = status.setdefault("conditions", [])
    now = now_rfc3339()
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != value:
                condition["lastTransitionTime"] = now
            condition["status"] = value
            _set_or_drop(condition, "reason", reason)
            _set_or_drop(condition, "message", message)
            return
    condition = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": now}
    _set_or_drop(condition, "reason", reason)
    _set_or_drop(condition, "message", message)
    conditions.append(condition)


def _set_or_drop(mapping: dict[str, Any], key: str, value: str) -> None:
    if value:
        mapping[key] = value
    else:
        mapping.pop(key, None)
