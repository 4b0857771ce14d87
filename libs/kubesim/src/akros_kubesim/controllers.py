"""The simulated control plane: scheduler, kubelet, deployment and PVC controllers, garbage
collector and namespace cleanup. One asyncio task reacts to store changes.

Decisions come from the pure functions in scheduler.py; this module keeps the indexes that make
them cheap (requests per node, dependents per owner) and writes the outcomes to the store.
"""

import asyncio
import contextlib
import copy
import hashlib
import heapq
import re
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import orjson

from akros_kubesim import daemonsets, hpa, kubelet, quota, replicasets, rollout, scheduler, storage
from akros_kubesim.api import FOREGROUND_FINALIZER, Api, bind_pod, set_condition
from akros_kubesim.cluster import GPU_RESOURCE, ClusterConfig
from akros_kubesim.errors import ApiError
from akros_kubesim.resources import (
    BY_KIND,
    DAEMONSET,
    DEPLOYMENT,
    EVENT,
    HPA,
    NAMESPACE,
    NODE,
    PERSISTENT_VOLUME,
    POD,
    PVC,
    REPLICASET,
    RESOURCE_QUOTA,
    RESOURCE_TYPES,
    SERVICE_ACCOUNT,
    STORAGE_CLASS,
    ResourceType,
)
from akros_kubesim.store import Change, Key, Store, now_rfc3339, object_key
from akros_kubesim.usage import GpuAssignment, gpus_requested

_RESOURCES_BY_KEY = {r.key: r for r in RESOURCE_TYPES}


_DEPLOYMENT_CONTROLLER = "deployment-controller"
# Names tried before the controller gives up on creating a new ReplicaSet in one pass.
_MAX_HASH_COLLISIONS = 5


def template_hash(template: dict[str, Any]) -> str:
    """A stable short hash of a pod template, as the DaemonSet controller labels its pods."""
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    number = int(digest[:16], 16)
    text = ""
    for _ in range(10):
        number, index = divmod(number, len(alphabet))
        text += alphabet[index]
    return text


def _owner_uids(obj: dict[str, Any]) -> list[str]:
    return [r["uid"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid")]


def _controller_of_kind(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for reference in obj["metadata"].get("ownerReferences") or []:
        if reference.get("kind") == kind and reference.get("controller"):
            return dict(reference)
    return None


class Simulation:
    def __init__(
        self,
        api: Api,
        config: ClusterConfig,
        event_ttl_seconds: float = 3600.0,
        hpa_sync_seconds: float = 15.0,
        time_factor: float = 1.0,
    ) -> None:
        self.api = api
        self.store: Store = api.store
        self.pod_start_seconds = config.pod_start_seconds
        self.event_ttl_seconds = event_ttl_seconds
        self.hpa_sync_seconds = hpa_sync_seconds
        self.time_factor = time_factor
        self._next_hpa_sync = time.monotonic() + hpa_sync_seconds
        self._hpa_recommendations: dict[str, list[tuple[float, int]]] = {}
        self.failing_images = re.compile(config.failing_image_pattern)
        self.image_defaults = config.image_defaults
        self.images = config.images
        # The simulated kubelets: each running pod's containers, and the images on each node.
        self.container_runs: dict[str, list[kubelet.ContainerRun]] = {}
        self._node_images: dict[str, set[str]] = {}
        self.gpu_assignments: dict[str, GpuAssignment] = {}
        # When (monotonic) each pod's containers began running: metrics-server has no sample of
        # a pod until one of its scrapes came after that.
        self.running_since: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._pending: set[Key] = set()
        self._new_pending: set[Key] = set()
        self._room_appeared = True
        self._starts: list[tuple[float, Key, str]] = []
        self._stops: list[tuple[float, Key, str]] = []
        self._dirty_deployments: set[Key] = set()
        self._dirty_daemonsets: set[Key] = set()
        self._dirty_replicasets: set[Key] = set()
        # When (monotonic) each pod last became Ready, for minReadySeconds; when each
        # deployment last made progress, for progressDeadlineSeconds; and when to look again.
        self.ready_since: dict[str, float] = {}
        self._progress_marks: dict[str, float] = {}
        self._timers: list[tuple[float, str, Key]] = []
        self._dirty_claims: set[Key] = set()
        self._dirty_volumes: set[str] = set()
        self._claim_events: dict[Key, tuple[str, str, str]] = {}
        self._dirty_quota_namespaces: set[str] = set()
        self._foreground: set[tuple[str, Key]] = set()
        self._events: deque[tuple[float, Key, str]] = deque()
        self._terminating_namespaces: set[str] = set()
        self._namespaces_to_check: set[str] = set()
        self._default_account_checks: set[str] = set()
        self._deleted_uids: list[str] = []
        self._dependents: dict[str, set[tuple[str, Key]]] = {}
        self._used: dict[str, Counter[str]] = {}
        self._pods_on_node: dict[str, dict[Key, dict[str, Any]]] = {}
        self._allocatable: dict[str, tuple[str, scheduler.Resources]] = {}
        self._unschedulable_messages: dict[Key, str] = {}
        self._next_ip = 1
        self._next_start = 0
        self.store.add_listener(self.observe)
        api.on_graceful_pod_delete = self._schedule_stop

    # --- indexes, kept up to date by every committed change ------------------------------

    def observe(self, change: Change) -> None:
        obj, previous = change.obj, change.previous
        key = object_key(obj)
        deleted = change.type == "DELETED"
        for uid in _owner_uids(previous) if previous else []:
            self._dependents.get(uid, set()).discard((change.resource_key, key))
        if not deleted:
            for uid in _owner_uids(obj):
                self._dependents.setdefault(uid, set()).add((change.resource_key, key))
        else:
            self._deleted_uids.append(obj["metadata"]["uid"])
        if key[0]:
            self._dirty_quota_namespaces.add(key[0])
        if not deleted and FOREGROUND_FINALIZER in (obj["metadata"].get("finalizers") or []):
            self._foreground.add((change.resource_key, key))
        if change.resource_key == EVENT.key and change.type == "ADDED":
            self._events.append((time.monotonic(), key, obj["metadata"]["uid"]))
        if change.resource_key == POD.key:
            self._observe_pod(key, obj, previous, deleted)
        elif change.resource_key == DEPLOYMENT.key:
            self._observe_deployment(key, obj, deleted)
        elif change.resource_key == REPLICASET.key:
            self._observe_replicaset(key, obj, deleted)
        elif change.resource_key in (PVC.key, PERSISTENT_VOLUME.key, STORAGE_CLASS.key):
            self._observe_storage(change.resource_key, key, obj, deleted)
        elif change.resource_key == DAEMONSET.key and not deleted:
            self._dirty_daemonsets.add(key)
        elif change.resource_key == NODE.key:
            self._room_appeared = True
            # Daemons follow the nodes: a new, relabelled or retainted node may gain or lose one.
            self._dirty_daemonsets.update(object_key(d) for d in self.store.all(DAEMONSET.key))
        elif (
            change.resource_key == NAMESPACE.key
            and not deleted
            and obj["metadata"].get("deletionTimestamp")
        ):
            self._terminating_namespaces.add(obj["metadata"]["name"])
            self._namespaces_to_check.add(obj["metadata"]["name"])
        if deleted and key[0] in self._terminating_namespaces:
            self._namespaces_to_check.add(key[0])  # what held the namespace may be gone now
        if change.resource_key == NAMESPACE.key and change.type == "ADDED":
            self._default_account_checks.add(key[1])
        elif change.resource_key == SERVICE_ACCOUNT.key and deleted and key[1] == "default":
            self._default_account_checks.add(key[0])
        self._wake.set()

    def _observe_pod(
        self, key: Key, pod: dict[str, Any], previous: dict[str, Any] | None, deleted: bool
    ) -> None:
        if previous is not None and scheduler.occupies_node(previous):
            node = previous["spec"]["nodeName"]
            self._used[node].subtract(scheduler.pod_requests(previous))
            self._pods_on_node[node].pop(key, None)
            self._room_appeared = True
        if not deleted and scheduler.occupies_node(pod):
            node = pod["spec"]["nodeName"]
            self._used.setdefault(node, Counter()).update(scheduler.pod_requests(pod))
            self._pods_on_node.setdefault(node, {})[key] = pod
            if previous is None or not previous["spec"].get("nodeName"):
                due = time.monotonic() + self.pod_start_seconds
                heapq.heappush(self._starts, (due, key, pod["metadata"]["uid"]))
                self._assign_gpus(pod, node)
        waiting = (
            not deleted
            and not pod["spec"].get("nodeName")
            and not pod["metadata"].get("deletionTimestamp")
        )
        if waiting:
            if key not in self._pending:
                self._new_pending.add(key)
            self._pending.add(key)
        else:
            self._pending.discard(key)
            self._new_pending.discard(key)
            self._unschedulable_messages.pop(key, None)
        uid = pod["metadata"]["uid"]
        running = not deleted and (pod.get("status") or {}).get("phase") == "Running"
        if running and uid not in self.running_since:
            self.running_since[uid] = time.monotonic()
        elif not running:
            self.running_since.pop(uid, None)
        if deleted:
            self.gpu_assignments.pop(uid, None)
            self.container_runs.pop(uid, None)
        self._observe_replicaset_pod(key, pod, deleted)
        daemon_owner = _controller_of_kind(pod, "DaemonSet")
        if daemon_owner is not None:
            self._dirty_daemonsets.add((key[0], daemon_owner["name"]))
        if deleted or not scheduler.occupies_node(pod):
            # A claim deleted while this pod used it may now go (pvc-protection).
            self._dirty_claims.update((key[0], name) for name in storage.claim_names(pod))

    def _observe_deployment(self, key: Key, deployment: dict[str, Any], deleted: bool) -> None:
        if deleted:
            self._progress_marks.pop(deployment["metadata"]["uid"], None)
        else:
            self._dirty_deployments.add(key)

    def _observe_replicaset(self, key: Key, replicaset: dict[str, Any], deleted: bool) -> None:
        if not deleted:
            self._dirty_replicasets.add(key)
        owner = _controller_of_kind(replicaset, "Deployment")
        if owner is not None:
            self._dirty_deployments.add((key[0], owner["name"]))

    def _observe_replicaset_pod(self, key: Key, pod: dict[str, Any], deleted: bool) -> None:
        uid = pod["metadata"]["uid"]
        if not deleted and replicasets.is_ready(pod):
            self.ready_since.setdefault(uid, time.monotonic())
        else:
            self.ready_since.pop(uid, None)
        owner = _controller_of_kind(pod, "ReplicaSet")
        if owner is not None:
            self._dirty_replicasets.add((key[0], owner["name"]))

    def _schedule_stop(self, key: Key) -> None:
        """A bound pod was deleted with a grace period: its kubelet sends SIGTERM and the pod
        stays Terminating until its containers have ended, at most the grace period later."""
        pod = self.store.get(POD.key, *key)
        if pod is None:
            return
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds", 0))
        runs = self.container_runs.get(pod["metadata"]["uid"], [])
        takes, events = 0.0, list[kubelet.Event]()
        for run in runs:
            seconds, stopping = run.stop(grace)
            takes, events = max(takes, seconds), events + stopping
        if not runs:
            takes = min(grace, kubelet.SYNC_SECONDS)  # no sandbox yet: torn down at once
        for reason, message, event_type in events:
            self.api.record_event(pod, "Pod", reason, message, event_type, "kubelet")
        due = time.monotonic() + takes * self.time_factor
        heapq.heappush(self._stops, (due, key, pod["metadata"]["uid"]))
        self._wake.set()

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            timeout = None
            due = [q[0][0] for q in (self._starts, self._stops) if q]
            if self._events:
                due.append(self._events[0][0] + self.event_ttl_seconds)
            due.append(self._next_hpa_sync)
            if self._timers:
                due.append(self._timers[0][0])
            if due:
                timeout = max(min(due) - time.monotonic(), 0.0)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the task's
            # cancellation when the wait ends at the same moment, and the server's shutdown
            # then waits for this loop forever (seen as a kubesim that ignored SIGTERM).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            # Let a burst of writes land before reacting to all of them at once.
            await asyncio.sleep(0.005)
            self.reconcile()

    def reconcile(self) -> None:
        self._clean_terminating_namespaces()
        self._ensure_default_service_accounts()
        self._collect_garbage()
        self._finish_foreground_deletions()
        self._fire_due_timers()
        self._reconcile_workloads()
        for key in sorted(self._dirty_daemonsets):
            self._dirty_daemonsets.discard(key)
            self._reconcile_daemonset(key)
        self._bind_claims()
        self._update_quota_status()
        self._schedule_pending()
        self._start_due_pods()
        self._finish_due_terminations()
        self._expire_events()
        if time.monotonic() >= self._next_hpa_sync:
            self._next_hpa_sync = time.monotonic() + self.hpa_sync_seconds
            self._sync_autoscalers()
        # Pod changes above may have touched deployments again: refresh their status now.
        self._reconcile_workloads()

    def _reconcile_workloads(self) -> None:
        """Deployments scale their ReplicaSets, which make or remove pods and report back."""
        for key in sorted(self._dirty_deployments):
            self._dirty_deployments.discard(key)
            self._reconcile_deployment(key)
        for key in sorted(self._dirty_replicasets):
            self._dirty_replicasets.discard(key)
            self._reconcile_replicaset(key)

    # --- namespaces and garbage collection ----------------------------------------------

    def _clean_terminating_namespaces(self) -> None:
        """The namespace controller: everything in a Terminating namespace is deleted through
        the API, so grace periods and finalizers hold as they do anywhere; once nothing is
        left, the namespace's `kubernetes` finalizer goes, and with it the namespace."""
        for namespace in sorted(self._namespaces_to_check):
            self._namespaces_to_check.discard(namespace)
            current = self.store.get(NAMESPACE.key, "", namespace)
            if current is None or not current["metadata"].get("deletionTimestamp"):
                self._terminating_namespaces.discard(namespace)
                continue
            remaining = self._delete_namespace_contents(namespace)
            if remaining:
                self._report_namespace_contents(current, remaining)
                continue
            self._terminating_namespaces.discard(namespace)
            finalized = copy.deepcopy(current)
            spec_finalizers = [
                f for f in (current.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"
            ]
            finalized.setdefault("spec", {})["finalizers"] = spec_finalizers
            if spec_finalizers or current["metadata"].get("finalizers"):
                self.store.replace(NAMESPACE.key, finalized)  # someone else's finalizer holds it
            else:
                self.store.remove(NAMESPACE.key, ("", namespace))

    def _delete_namespace_contents(self, namespace: str) -> list[dict[str, Any]]:
        """Deletes what is in the namespace (once each) and returns what is still there."""
        remaining = []
        for resource in RESOURCE_TYPES:
            if not resource.namespaced or resource.computed:
                continue
            for obj in list(self.store.all(resource.key)):
                if obj["metadata"].get("namespace") != namespace:
                    continue
                if not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self.api.delete(
                            resource,
                            namespace,
                            obj["metadata"]["name"],
                            {"propagationPolicy": "Background"},
                        )
                left = self.store.get(resource.key, namespace, obj["metadata"]["name"])
                if left is not None:
                    remaining.append(left)
        return remaining

    def _report_namespace_contents(
        self, namespace: dict[str, Any], remaining: list[dict[str, Any]]
    ) -> None:
        """The conditions the namespace controller writes while it waits, which `kubectl
        describe namespace` shows."""
        reported = copy.deepcopy(namespace)
        status = reported.setdefault("status", {})
        content, finalizers = namespace_conditions(remaining)
        set_condition(status, "NamespaceContentRemaining", "True", "SomeResourcesRemain", content)
        if finalizers:
            set_condition(
                status, "NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain", finalizers
            )
        if _without_times(status) != _without_times(namespace.get("status") or {}):
            self.store.replace(NAMESPACE.key, reported)

    def _ensure_default_service_accounts(self) -> None:
        """kube-controller-manager's ServiceAccount controller: every active namespace has a
        `default` account (pods name it unless they say otherwise), made again if deleted."""
        namespaces, self._default_account_checks = self._default_account_checks, set()
        for name in sorted(namespaces):
            namespace = self.store.get(NAMESPACE.key, "", name)
            if namespace is None or namespace["metadata"].get("deletionTimestamp"):
                continue
            if self.store.get(SERVICE_ACCOUNT.key, name, "default") is None:
                account = {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default"},
                }
                # A quota on count/serviceaccounts can refuse it, as it can the real controller.
                with contextlib.suppress(ApiError):
                    self.api.create(SERVICE_ACCOUNT, name, account)

    def _owner_alive(self, dependent: dict[str, Any], reference: dict[str, Any]) -> bool:
        resource = BY_KIND.get((reference.get("apiVersion", ""), reference.get("kind", "")))
        if resource is None:
            return False
        namespace = dependent["metadata"].get("namespace", "") if resource.namespaced else ""
        owner = self.store.get(resource.key, namespace, reference.get("name", ""))
        return owner is not None and owner["metadata"]["uid"] == reference.get("uid")

    def _collect_garbage(self) -> None:
        while self._deleted_uids:
            uid = self._deleted_uids.pop()
            for resource_key, key in sorted(self._dependents.pop(uid, set())):
                dependent = self.store.get(resource_key, *key)
                if dependent is None or dependent["metadata"].get("deletionTimestamp"):
                    continue
                references = dependent["metadata"].get("ownerReferences") or []
                if any(self._owner_alive(dependent, r) for r in references if r.get("uid") != uid):
                    continue
                try:
                    self.api.delete(
                        _RESOURCES_BY_KEY[resource_key],
                        key[0],
                        key[1],
                        {"propagationPolicy": "Background"},
                    )
                except ApiError:
                    continue

    def _finish_foreground_deletions(self) -> None:
        """Deletes the dependents of owners deleted in the foreground, then the owners."""
        for resource_key, key in sorted(self._foreground):
            owner = self.store.get(resource_key, *key)
            if owner is None or FOREGROUND_FINALIZER not in (
                owner["metadata"].get("finalizers") or []
            ):
                self._foreground.discard((resource_key, key))
                continue
            remaining = [
                (dependent_key, dependent)
                for dependent_key, k in sorted(
                    self._dependents.get(owner["metadata"]["uid"], set())
                )
                if (dependent := self.store.get(dependent_key, *k)) is not None
            ]
            for dependent_key, dependent in remaining:
                if not dependent["metadata"].get("deletionTimestamp"):
                    metadata = dependent["metadata"]
                    # A dependent with dependents of its own goes in the foreground too, so
                    # the owner waits for the whole chain (a Deployment for its pods).
                    chained = bool(self._dependents.get(metadata["uid"]))
                    options = {"propagationPolicy": "Foreground"} if chained else {}
                    with contextlib.suppress(ApiError):
                        self.api.delete(
                            _RESOURCES_BY_KEY[dependent_key],
                            metadata.get("namespace", ""),
                            metadata["name"],
                            options,
                        )
            if remaining:
                continue
            self._foreground.discard((resource_key, key))
            finished = copy.deepcopy(owner)
            finalizers = [f for f in owner["metadata"]["finalizers"] if f != FOREGROUND_FINALIZER]
            finished["metadata"]["finalizers"] = finalizers
            if finalizers:
                self.store.replace(resource_key, finished)
            else:
                self.store.remove(resource_key, key)

    # --- deployments and replica sets --------------------------------------------------

    def _controlled(self, owner: dict[str, Any], resource: ResourceType) -> list[dict[str, Any]]:
        """The objects of a kind whose controller reference names `owner`."""
        uid = owner["metadata"]["uid"]
        found = []
        for resource_key, key in sorted(self._dependents.get(uid, set())):
            if resource_key != resource.key:
                continue
            obj = self.store.get(resource_key, *key)
            reference = None if obj is None else _controller_of_kind(obj, owner["kind"])
            if obj is not None and reference is not None and reference["uid"] == uid:
                found.append(obj)
        return found

    def _deployment_replicasets(
        self, deployment: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The deployment's new ReplicaSet (None until made) and its old ones."""
        owned = [
            r
            for r in self._controlled(deployment, REPLICASET)
            if not r["metadata"].get("deletionTimestamp")
        ]
        new = rollout.find_new(deployment, owned)
        return (dict(new) if new is not None else None), [r for r in owned if r is not new]

    def _deployment_pods(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            pod
            for replicaset in self._controlled(deployment, REPLICASET)
            for pod in self._controlled(replicaset, POD)
        ]

    def _reconcile_deployment(self, key: Key) -> None:
        """One pass of the deployment controller: make or find the new ReplicaSet, scale the
        ReplicaSets one step of the strategy, prune old revisions, report status."""
        deployment = self.store.get(DEPLOYMENT.key, *key)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        new, old = self._deployment_replicasets(deployment)
        note = None
        if new is not None:
            new = self._sync_revision(deployment, new, old)
            note = ("FoundNewReplicaSet", f'Found new replica set "{new["metadata"]["name"]}"')
        old_pods_running = any(
            (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            for replicaset in old
            for pod in self._controlled(replicaset, POD)
        )
        step = rollout.plan(deployment, new, old, old_pods_running)
        if step.create_replicas is not None:
            created = self._create_replicaset(deployment, old, step.create_replicas)
            if created is not None:
                name = created["metadata"]["name"]
                note = ("NewReplicaSetCreated", f'Created new replica set "{name}"')
        for name, replicas in sorted(step.scales.items()):
            self._scale_replicaset(deployment, name, replicas)
        for name in step.prune:
            with contextlib.suppress(ApiError):
                self.api.delete(REPLICASET, key[0], name, {})
        self._sync_deployment_status(key, note)

    def _sync_revision(
        self, deployment: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """SetNewReplicaSetAnnotations: the new ReplicaSet carries the highest revision (an
        undo moves an old revision to the top, remembered in revision-history), the
        deployment's annotations (change-cause) and its minReadySeconds."""
        updated = copy.deepcopy(new)
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations.update(replicasets.copied_annotations(deployment))
        current, wanted = replicasets.revision_of(new), rollout.next_revision(old)
        if current < wanted:
            if current:
                history = [
                    h for h in annotations.get(replicasets.REVISION_HISTORY, "").split(",") if h
                ]
                annotations[replicasets.REVISION_HISTORY] = ",".join([*history, str(current)])
            annotations[replicasets.REVISION] = str(wanted)
        min_ready_seconds = deployment["spec"].get("minReadySeconds", 0)
        if min_ready_seconds:
            updated["spec"]["minReadySeconds"] = min_ready_seconds
        else:
            updated["spec"].pop("minReadySeconds", None)  # omitempty, as the API server writes it
        if updated == new:
            return new
        try:
            written, _ = self.api.update(
                REPLICASET, new["metadata"]["namespace"], new["metadata"]["name"], updated
            )
        except ApiError:
            return new
        return written

    def _create_replicaset(
        self, deployment: dict[str, Any], old: list[dict[str, Any]], replicas: int
    ) -> dict[str, Any] | None:
        """The new ReplicaSet `<deployment>-<pod-template-hash>`; a name taken by another
        template bumps status.collisionCount, which changes the hash (as upstream)."""
        metadata, spec = deployment["metadata"], deployment["spec"]
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        for _ in range(_MAX_HASH_COLLISIONS):
            pod_hash = replicasets.pod_template_hash(spec["template"], collisions)
            body = replicasets.new_replicaset(
                deployment,
                pod_hash,
                rollout.next_revision(old),
                replicas,
                rollout.max_replicas(spec),
            )
            try:
                created, _ = self.api.create(REPLICASET, metadata["namespace"], body)
            except ApiError as error:
                if error.code != 409:
                    name = body["metadata"]["name"]
                    message = f'Failed to create new replica set "{name}": {error.message}'
                    self.api.record_event(
                        deployment,
                        "Deployment",
                        "ReplicaSetCreateError",
                        message,
                        "Warning",
                        _DEPLOYMENT_CONTROLLER,
                    )
                    return None
                collisions += 1
                self._write_deployment(deployment, {"collisionCount": collisions})
                continue
            if replicas > 0:
                self.api.record_event(
                    deployment,
                    "Deployment",
                    "ScalingReplicaSet",
                    f"Scaled up replica set {created['metadata']['name']} to {replicas} from 0",
                    "Normal",
                    _DEPLOYMENT_CONTROLLER,
                )
            return created
        return None

    def _write_deployment(self, deployment: dict[str, Any], status_fields: dict[str, Any]) -> None:
        current = self.store.get(
            DEPLOYMENT.key, deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        )
        if current is None:
            return
        updated = copy.deepcopy(current)
        updated.setdefault("status", {}).update(status_fields)
        self.store.replace(DEPLOYMENT.key, updated)

    def _scale_replicaset(self, deployment: dict[str, Any], name: str, replicas: int) -> None:
        """scaleReplicaSetAndRecordEvent: the new size, the desired/max-replicas annotations
        for proportional scaling, and a ScalingReplicaSet event on the deployment."""
        namespace = deployment["metadata"]["namespace"]
        replicaset = self.store.get(REPLICASET.key, namespace, name)
        if replicaset is None:
            return
        before = int(replicaset["spec"].get("replicas", 1))
        updated = copy.deepcopy(replicaset)
        updated["spec"]["replicas"] = replicas
        updated["metadata"].setdefault("annotations", {}).update(
            {
                replicasets.DESIRED_REPLICAS: str(deployment["spec"].get("replicas", 1)),
                replicasets.MAX_REPLICAS: str(rollout.max_replicas(deployment["spec"])),
            }
        )
        try:
            self.api.update(REPLICASET, namespace, name, updated)
        except ApiError:
            return
        if before != replicas:
            direction = "up" if replicas > before else "down"
            self.api.record_event(
                deployment,
                "Deployment",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {name} to {replicas} from {before}",
                "Normal",
                _DEPLOYMENT_CONTROLLER,
            )

    def _sync_deployment_status(self, key: Key, note: tuple[str, str] | None) -> None:
        deployment = self.store.get(DEPLOYMENT.key, *key)
        if deployment is None:
            return
        new, old = self._deployment_replicasets(deployment)
        uid = deployment["metadata"]["uid"]
        now = time.monotonic()
        deadline = float(deployment["spec"].get("progressDeadlineSeconds", 600)) * self.time_factor
        mark = self._progress_marks.get(uid)
        view = deployment
        conditions = (deployment.get("status") or {}).get("conditions") or []
        has_progressing = any(c["type"] == "Progressing" for c in conditions)
        if note is not None and (note[0] == "NewReplicaSetCreated" or not has_progressing):
            view = copy.deepcopy(deployment)
            status = view.setdefault("status", {})
            status["conditions"] = [dict(c) for c in conditions]
            rollout.progressing_on_new_replicaset(status["conditions"], *note, now_rfc3339())
            mark = None
        update = rollout.deployment_status(
            view, new, old, mark is not None and now - mark >= deadline, now_rfc3339()
        )
        if update.progressed or mark is None:
            self._progress_marks[uid] = now
            self._add_timer(now + deadline, DEPLOYMENT.key, key)
        updated = copy.deepcopy(deployment)
        if new is not None:
            annotations = updated["metadata"].setdefault("annotations", {})
            annotations[replicasets.REVISION] = (new["metadata"].get("annotations") or {}).get(
                replicasets.REVISION, "1"
            )
        updated["status"] = update.status
        changed_metadata = updated["metadata"] != deployment["metadata"]
        if (
            changed_metadata
            or _without_times(update.status) != _without_times(deployment.get("status") or {})
            or view is not deployment
        ):
            self.store.replace(DEPLOYMENT.key, updated)

    def _add_timer(self, due: float, resource_key: str, key: Key) -> None:
        heapq.heappush(self._timers, (due, resource_key, key))
        self._wake.set()

    def _fire_due_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, resource_key, key = heapq.heappop(self._timers)
            if resource_key == DEPLOYMENT.key:
                self._dirty_deployments.add(key)
            else:
                self._dirty_replicasets.add(key)

    def _reconcile_replicaset(self, key: Key) -> None:
        """The ReplicaSet controller: spec.replicas active pods, and their counts in status
        (a pod is available once ready for minReadySeconds, scaled by the time factor)."""
        replicaset = self.store.get(REPLICASET.key, *key)
        if replicaset is None or replicaset["metadata"].get("deletionTimestamp"):
            return
        active = [p for p in self._controlled(replicaset, POD) if replicasets.is_active(p)]
        create, delete = replicasets.pods_to_create_and_delete(
            int(replicaset["spec"].get("replicas", 1)), active
        )
        for victim in delete:
            self._delete_pod(victim)
            self._replicaset_event(
                replicaset, "SuccessfulDelete", f"Deleted pod: {victim['metadata']['name']}"
            )
        for _ in range(create):
            try:
                created, _ = self.api.create(POD, key[0], replicasets.controlled_pod(replicaset))
            except ApiError as error:
                self._replicaset_event(
                    replicaset, "FailedCreate", f"Error creating: {error.message}", "Warning"
                )
                break
            self._replicaset_event(
                replicaset, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}"
            )
        owned = self._controlled(replicaset, POD)
        min_ready = float(replicaset["spec"].get("minReadySeconds", 0)) * self.time_factor
        now = time.monotonic()
        available = 0
        for pod in owned:
            since = self.ready_since.get(pod["metadata"]["uid"])
            if not replicasets.is_active(pod) or since is None:
                continue
            if replicasets.is_available(now - since, min_ready):
                available += 1
            else:
                self._add_timer(since + min_ready, REPLICASET.key, key)
        status = replicasets.replicaset_status(replicaset, owned, available)
        if (replicaset.get("status") or {}) != status:
            updated = copy.deepcopy(replicaset)
            updated["status"] = status
            self.store.replace(REPLICASET.key, updated)

    def _replicaset_event(
        self, replicaset: dict[str, Any], reason: str, message: str, kind: str = "Normal"
    ) -> None:
        self.api.record_event(
            replicaset, "ReplicaSet", reason, message, kind, "replicaset-controller"
        )

    def _delete_pod(self, pod: Mapping[str, Any]) -> None:
        try:
            self.api.delete(POD, pod["metadata"]["namespace"], pod["metadata"]["name"], {})
        except ApiError:
            return

    # --- horizontal pod autoscalers ----------------------------------------------------

    def _sync_autoscalers(self) -> None:
        now = time.monotonic()
        live = set()
        for autoscaler in list(self.store.all(HPA.key)):
            live.add(autoscaler["metadata"]["uid"])
            self._sync_autoscaler(autoscaler, now)
        for uid in set(self._hpa_recommendations) - live:
            del self._hpa_recommendations[uid]

    def _sync_autoscaler(self, autoscaler: dict[str, Any], now: float) -> None:
        spec = autoscaler["spec"]
        namespace = autoscaler["metadata"]["namespace"]
        reference = spec.get("scaleTargetRef") or {}
        target = None
        if reference.get("kind") == "Deployment":
            target = self.store.get(DEPLOYMENT.key, namespace, reference.get("name", ""))
        status: dict[str, Any] = {"currentReplicas": 0, "desiredReplicas": 0}
        previous = autoscaler.get("status") or {}
        if target is None:
            holder = {"conditions": copy.deepcopy(previous.get("conditions") or [])}
            message = (
                f"the HPA controller was unable to get the target's current scale: {reference}"
            )
            set_condition(holder, "AbleToScale", "False", "FailedGetScale", message)
            status["conditions"] = holder["conditions"]
            self._write_autoscaler_status(autoscaler, status)
            return
        current = int(target["spec"].get("replicas", 1))
        pods = [
            pod
            for pod in self._deployment_pods(target)
            if replicasets.is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        ]
        recommendation = hpa.recommend(spec, current, pods)
        window = hpa.scale_down_window(spec)
        history = [
            (when, n)
            for when, n in self._hpa_recommendations.get(autoscaler["metadata"]["uid"], [])
            if now - when <= window
        ]
        history.append((now, recommendation.replicas))
        self._hpa_recommendations[autoscaler["metadata"]["uid"]] = history
        wanted = hpa.stabilised(history, now, window, recommendation.replicas, current)
        desired = hpa.bounded(spec, wanted) if current else 0
        status = {"currentReplicas": current, "desiredReplicas": desired}
        if recommendation.readings:
            status["currentMetrics"] = hpa.current_metrics(recommendation.readings)
        if previous.get("lastScaleTime"):
            status["lastScaleTime"] = previous["lastScaleTime"]
        if desired != current and current:
            scaled = copy.deepcopy(target)
            scaled["spec"]["replicas"] = desired
            scaled["metadata"]["generation"] = int(target["metadata"].get("generation", 1)) + 1
            self.store.replace(DEPLOYMENT.key, scaled)
            status["lastScaleTime"] = now_rfc3339()
            reason = "above" if desired > current else "below"
            message = f"New size: {desired}; reason: resource utilization {reason} target"
            self.api.record_event(
                autoscaler,
                "HorizontalPodAutoscaler",
                "SuccessfulRescale",
                message,
                "Normal",
                "horizontal-pod-autoscaler",
            )
        holder = {"conditions": copy.deepcopy(previous.get("conditions") or [])}
        set_condition(
            holder,
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size",
        )
        if current == 0:
            set_condition(
                holder,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        else:
            set_condition(
                holder,
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count",
            )
        if wanted != desired and current:
            reason = "TooManyReplicas" if wanted > desired else "TooFewReplicas"
            set_condition(
                holder,
                "ScalingLimited",
                "True",
                reason,
                "the desired replica count is outside the allowed range",
            )
        else:
            set_condition(
                holder,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        status["conditions"] = holder["conditions"]
        self._write_autoscaler_status(autoscaler, status)

    def _write_autoscaler_status(self, autoscaler: dict[str, Any], status: dict[str, Any]) -> None:
        for condition in status.get("conditions") or []:
            condition.pop("lastProbeTime", None)
        if _without_times(status) != _without_times(autoscaler.get("status") or {}):
            updated = copy.deepcopy(autoscaler)
            updated["status"] = status
            self.store.replace(HPA.key, updated)

    # --- daemon sets --------------------------------------------------------------------

    def _reconcile_daemonset(self, key: Key) -> None:
        """One pod per wanted node; pods of an old template replaced one node at a time."""
        daemonset = self.store.get(DAEMONSET.key, *key)
        if daemonset is None or daemonset["metadata"].get("deletionTimestamp"):
            return
        nodes, _ = self._nodes()
        wanted = daemonsets.nodes_to_run_on(daemonset, nodes)
        current_hash = template_hash(daemonset["spec"]["template"])
        owned = [
            pod
            for resource_key, pod_key in sorted(
                self._dependents.get(daemonset["metadata"]["uid"], set())
            )
            if resource_key == POD.key and (pod := self.store.get(POD.key, *pod_key)) is not None
        ]
        live: dict[str, list[dict[str, Any]]] = {}
        for pod in owned:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            finished = (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")
            node = daemonsets.pod_target_node(pod)
            if finished or node not in wanted:
                self._delete_pod(pod)  # a daemon that ended, or whose node no longer wants it
            else:
                live.setdefault(str(node), []).append(pod)
        replacing = False
        for node in wanted:
            pods = live.get(node, [])
            for extra in pods[1:]:
                self._delete_pod(extra)
            if not pods:
                self._create_daemon_pod(daemonset, node, current_hash)
                continue
            outdated = (pods[0]["metadata"].get("labels") or {}).get(
                "controller-revision-hash"
            ) != current_hash
            if outdated and not replacing:
                # RollingUpdate with maxUnavailable 1: the next node waits for this one.
                replacing = True
                self._delete_pod(pods[0])
        status = daemonsets.daemonset_status(daemonset, wanted, owned, current_hash)
        if daemonset.get("status") != status:
            updated = copy.deepcopy(daemonset)
            updated["status"] = status
            self.store.replace(DAEMONSET.key, updated)

    def _create_daemon_pod(self, daemonset: dict[str, Any], node: str, pod_hash: str) -> None:
        pod = daemonsets.daemon_pod(daemonset, node, pod_hash)
        try:
            created, _ = self.api.create(POD, daemonset["metadata"]["namespace"], pod)
        except ApiError as error:
            self.api.record_event(
                daemonset,
                "DaemonSet",
                "FailedCreate",
                error.message,
                "Warning",
                "daemonset-controller",
            )
            return
        self.api.record_event(
            daemonset,
            "DaemonSet",
            "SuccessfulCreate",
            f"Created pod: {created['metadata']['name']}",
            "Normal",
            "daemonset-controller",
        )

    # --- resource quotas ----------------------------------------------------------------

    def _update_quota_status(self) -> None:
        namespaces, self._dirty_quota_namespaces = self._dirty_quota_namespaces, set()
        for namespace in sorted(namespaces):
            quotas = self.api.quotas_in(namespace)
            if not quotas:
                continue
            used = self.api.namespace_usage(namespace)
            for current in quotas:
                status = quota.quota_status(current, used)
                if current.get("status") != status:
                    updated = copy.deepcopy(current)
                    updated["status"] = status
                    self.store.replace(RESOURCE_QUOTA.key, updated)

    # --- persistent volume claims -------------------------------------------------------

    def _observe_storage(
        self, resource_key: str, key: Key, obj: dict[str, Any], deleted: bool
    ) -> None:
        if resource_key == PVC.key:
            if deleted:
                self._claim_events.pop(key, None)
                if obj["spec"].get("volumeName"):
                    self._dirty_volumes.add(obj["spec"]["volumeName"])
            else:
                self._dirty_claims.add(key)
        else:
            if resource_key == PERSISTENT_VOLUME.key:
                self._dirty_volumes.add(key[1])
            # A new class or a freed volume may be what a Pending claim waits for.
            self._dirty_claims.update(
                object_key(c)
                for c in self.store.all(PVC.key)
                if (c.get("status") or {}).get("phase") != "Bound"
            )
        # Pods wait for their claims to exist and bind, and for classes.
        self._room_appeared = True

    def _storage_classes(self) -> dict[str, dict[str, Any]]:
        return {c["metadata"]["name"]: c for c in self.store.all(STORAGE_CLASS.key)}

    def _bind_claims(self) -> None:
        """The persistent volume controller, the provisioners and the protection controllers."""
        classes = self._storage_classes()
        for key in sorted(self._dirty_claims):
            self._dirty_claims.discard(key)
            self._settle_claim(key, classes)
        for name in sorted(self._dirty_volumes):
            self._dirty_volumes.discard(name)
            self._settle_volume(name)

    def _settle_claim(self, key: Key, classes: Mapping[str, dict[str, Any]]) -> None:
        claim = self.store.get(PVC.key, *key)
        if claim is None:
            return
        if claim["metadata"].get("deletionTimestamp"):
            self._release_claim_when_unused(claim)
            return
        if (claim.get("status") or {}).get("phase") == "Bound":
            return
        binding = storage.claim_binding(claim, classes, self.store.all(PERSISTENT_VOLUME.key))
        if binding.bind_to is not None:
            volume = self.store.get(PERSISTENT_VOLUME.key, "", binding.bind_to)
            if volume is not None:
                self.store.replace(PERSISTENT_VOLUME.key, storage.bound_volume(volume, claim))
                self.store.replace(PVC.key, storage.bound_claim(claim, volume, None))
        elif binding.provision:
            self._provision(claim, classes[claim["spec"]["storageClassName"]], binding.node)
        elif binding.event is not None and self._claim_events.get(key) != binding.event:
            self._claim_events[key] = binding.event
            reason, message, event_type = binding.event
            self.api.record_event(
                claim,
                "PersistentVolumeClaim",
                reason,
                message,
                event_type,
                "persistentvolume-controller",
            )

    def _provision(
        self, claim: dict[str, Any], storage_class: dict[str, Any], node: str | None
    ) -> None:
        provisioner = str(storage_class.get("provisioner", ""))
        metadata = claim["metadata"]
        self.api.record_event(
            claim,
            "PersistentVolumeClaim",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{metadata["namespace"]}/'
            f'{metadata["name"]}"',
            "Normal",
            provisioner,
        )
        wanted = storage.provisioned_volume(claim, storage_class, node)
        try:
            volume, _ = self.api.create(PERSISTENT_VOLUME, "", wanted)
        except ApiError as error:
            message = "failed to provision volume with StorageClass "
            message += f'"{storage_class["metadata"]["name"]}": {error.message}'
            self.api.record_event(
                claim,
                "PersistentVolumeClaim",
                "ProvisioningFailed",
                message,
                "Warning",
                provisioner,
            )
            return
        volume = self.store.replace(PERSISTENT_VOLUME.key, storage.bound_volume(volume, claim))
        bound = self.store.replace(PVC.key, storage.bound_claim(claim, volume, provisioner))
        self.api.record_event(
            bound,
            "PersistentVolumeClaim",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume['metadata']['name']}",
            "Normal",
            provisioner,
        )

    def _release_claim_when_unused(self, claim: dict[str, Any]) -> None:
        namespace = claim["metadata"]["namespace"]
        pods, _, _ = self.store.list_page(POD.key, namespace, None, 0, None)
        finalizers = claim["metadata"].get("finalizers") or []
        if storage.PVC_PROTECTION_FINALIZER not in finalizers or storage.claim_in_use(claim, pods):
            return
        released = copy.deepcopy(claim)
        released["metadata"]["finalizers"] = [
            f for f in finalizers if f != storage.PVC_PROTECTION_FINALIZER
        ]
        if released["metadata"]["finalizers"]:
            self.store.replace(PVC.key, released)
        else:
            self.store.remove(PVC.key, object_key(claim))

    def _settle_volume(self, name: str) -> None:
        volume = self.store.get(PERSISTENT_VOLUME.key, "", name)
        if volume is None:
            return
        reference = volume["spec"].get("claimRef") or {}
        claim = self.store.get(PVC.key, reference.get("namespace", ""), reference.get("name", ""))
        claim_exists = claim is not None and claim["metadata"]["uid"] == reference.get("uid")
        release = storage.volume_release(volume, claim_exists)
        if release.remove:
            self.store.remove(PERSISTENT_VOLUME.key, ("", name))
        elif release.phase is not None:
            updated = copy.deepcopy(volume)
            updated["status"] = {"phase": release.phase}
            self.store.replace(PERSISTENT_VOLUME.key, updated)

    def _pod_volumes(self, pod: dict[str, Any]) -> storage.PodVolumes:
        names = storage.claim_names(pod)
        if not names:
            return storage.PodVolumes()
        namespace = pod["metadata"]["namespace"]
        claims = {n: c for n in names if (c := self.store.get(PVC.key, namespace, n)) is not None}
        volumes = {
            v: volume
            for c in claims.values()
            if (v := c["spec"].get("volumeName"))
            and (volume := self.store.get(PERSISTENT_VOLUME.key, "", v)) is not None
        }
        return storage.pod_volumes(pod, claims, self._storage_classes(), volumes)

    def _provision_for_pod(self, pod: dict[str, Any], claims: tuple[str, ...], node: str) -> bool:
        """Selects the node for the pod's claims that waited for it and binds them, as the
        scheduler's VolumeBinding PreBind does before the pod is bound; False if one failed."""
        namespace = pod["metadata"]["namespace"]
        classes = self._storage_classes()
        for name in claims:
            claim = self.store.get(PVC.key, namespace, name)
            if claim is None:
                return False
            annotations = claim["metadata"].get("annotations") or {}
            if annotations.get(storage.SELECTED_NODE_ANNOTATION) != node:
                selected = copy.deepcopy(claim)
                selected["metadata"].setdefault("annotations", {})[
                    storage.SELECTED_NODE_ANNOTATION
                ] = node
                self.store.replace(PVC.key, selected)
            self._settle_claim((namespace, name), classes)
            settled = self.store.get(PVC.key, namespace, name)
            if settled is None or (settled.get("status") or {}).get("phase") != "Bound":
                return False
        return True

    # --- scheduling ---------------------------------------------------------------------

    def _nodes(self) -> tuple[list[dict[str, Any]], dict[str, scheduler.Resources]]:
        nodes = sorted(self.store.all(NODE.key), key=lambda n: n["metadata"]["name"])
        allocatable = {}
        for node in nodes:
            name, version = node["metadata"]["name"], node["metadata"]["resourceVersion"]
            cached = self._allocatable.get(name)
            if cached is None or cached[0] != version:
                cached = (version, scheduler.node_allocatable(node))
                self._allocatable[name] = cached
            allocatable[name] = cached[1]
        return nodes, allocatable

    def _schedule_pending(self) -> None:
        candidates = self._pending if self._room_appeared else self._new_pending
        if not candidates:
            return
        self._room_appeared = False
        pods = [p for key in candidates if (p := self.store.get(POD.key, *key)) is not None]
        self._new_pending.clear()
        pods.sort(
            key=lambda p: (
                -scheduler.pod_priority(p),
                p["metadata"]["creationTimestamp"],
                p["metadata"]["name"],
            )
        )
        nodes, allocatable = self._nodes()
        for pod in pods:
            volumes = self._pod_volumes(pod)
            if volumes.blocked is not None:
                message = f"0/{len(nodes)} nodes are available: {volumes.blocked}."
                self._mark_unschedulable(pod, message)
                continue
            selectors = volumes.node_selectors
            decision = scheduler.choose_node(
                pod, nodes, allocatable, self._used, self._next_start, selectors
            )
            self._next_start = decision.next_start
            if decision.node is None and self._preempt_for(pod, nodes, allocatable, selectors):
                pod = self.store.get(POD.key, *object_key(pod)) or pod  # now nominated
                decision = scheduler.choose_node(pod, nodes, allocatable, self._used, 0, selectors)
            if decision.node is not None and self._provision_for_pod(
                pod, volumes.to_provision, decision.node
            ):
                self._bind(pod, decision.node)
            elif decision.node is None:
                self._mark_unschedulable(pod, decision.message)

    def _assign_gpus(self, pod: dict[str, Any], node_name: str) -> None:
        """Gives a newly bound pod fixed GPU indices of its node, as the device plugin does."""
        wanted = gpus_requested(pod)
        if not wanted:
            return
        node = self.store.get(NODE.key, "", node_name)
        capacity = scheduler.node_allocatable(node).get(GPU_RESOURCE, 0) if node else 0
        taken = {d for a in self.gpu_assignments.values() if a.node == node_name for d in a.devices}
        free = [d for d in range(capacity) if d not in taken]
        self.gpu_assignments[pod["metadata"]["uid"]] = GpuAssignment(
            node_name, tuple(free[:wanted])
        )

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        bound = self.store.replace(POD.key, bind_pod(pod, node))
        metadata = bound["metadata"]
        message = f"Successfully assigned {metadata['namespace']}/{metadata['name']} to {node}"
        self.api.record_event(bound, "Pod", "Scheduled", message)

    def _mark_unschedulable(self, pod: dict[str, Any], message: str) -> None:
        key = object_key(pod)
        if self._unschedulable_messages.get(key) == message:
            return
        self._unschedulable_messages[key] = message
        marked = copy.deepcopy(pod)
        set_condition(
            marked.setdefault("status", {}), "PodScheduled", "False", "Unschedulable", message
        )
        stored = self.store.replace(POD.key, marked)
        self.api.record_event(stored, "Pod", "FailedScheduling", message, "Warning")

    def _preempt_for(
        self,
        pod: dict[str, Any],
        nodes: list[dict[str, Any]],
        allocatable: dict[str, scheduler.Resources],
        volume_selectors: tuple[Mapping[str, Any], ...] = (),
    ) -> bool:
        residents = {name: list(pods.values()) for name, pods in self._pods_on_node.items()}
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and scheduler.victims_still_terminating(pod, residents.get(nominated, ())):
            return False  # the room it preempted for is coming: wait, evict nobody else
        choice = scheduler.choose_preemption(pod, nodes, allocatable, residents, volume_selectors)
        if choice is None:
            return False
        preemptor = pod["metadata"]
        for victim in choice.victims:
            if victim["metadata"].get("deletionTimestamp"):
                continue  # already on its way out
            message = f"Preempted by pod {preemptor['uid']} on node {choice.node}"
            self.api.record_event(dict(victim), "Pod", "Preempted", message, related=pod)
            # Victims get their graceful termination, as the scheduler deletes them through
            # the API; the preemptor waits, nominated to the node, until they are gone.
            with contextlib.suppress(ApiError):
                self.api.delete(
                    POD, victim["metadata"]["namespace"], victim["metadata"]["name"], {}
                )
        current = self.store.get(POD.key, preemptor.get("namespace", ""), preemptor["name"])
        if current is not None:
            nominated = copy.deepcopy(current)
            nominated.setdefault("status", {})["nominatedNodeName"] = choice.node
            self.store.replace(POD.key, nominated)
        return True

    # --- the simulated kubelet ----------------------------------------------------------

    def _start_due_pods(self) -> None:
        """Starts pods whose sandbox is due, and advances the containers of started ones."""
        now = time.monotonic()
        while self._starts and self._starts[0][0] <= now:
            _, key, uid = heapq.heappop(self._starts)
            pod = self.store.get(POD.key, *key)
            if (
                pod is None
                or pod["metadata"]["uid"] != uid
                or pod["metadata"].get("deletionTimestamp")
            ):
                continue
            if uid in self.container_runs:
                self._advance_containers(pod, now)
            elif (pod.get("status") or {}).get("phase") == "Pending":
                self._start_pod(pod)

    def _pod_ip(self) -> str:
        number = self._next_ip
        self._next_ip += 1
        return f"10.{42 + (number >> 16)}.{(number >> 8) & 255}.{number & 255}"

    def _host_ip(self, node_name: str) -> str:
        node = self.store.get(NODE.key, "", node_name) or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "10.0.0.1"

    def _start_pod(self, pod: dict[str, Any]) -> None:
        """The sandbox is up (IPs, startTime): each container now pulls its image and starts."""
        started = copy.deepcopy(pod)
        status = started.setdefault("status", {})
        pod_ip, host_ip = self._pod_ip(), self._host_ip(started["spec"]["nodeName"])
        status.update(
            {
                "hostIP": host_ip,
                "hostIPs": [{"ip": host_ip}],
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "startTime": now_rfc3339(),
            }
        )
        set_condition(status, "PodReadyToStartContainers", "True", "", "")
        set_condition(status, "Initialized", "True", "", "")
        node_images = self._node_images.setdefault(started["spec"]["nodeName"], set())
        now, wall = time.monotonic(), now_rfc3339()
        runs, events = [], []
        metadata = started["metadata"]
        for container in started["spec"]["containers"]:
            image = container.get("image", "")
            behaviour = kubelet.behaviour_for(
                image, self.images, self.image_defaults, self.failing_images
            )
            run = kubelet.ContainerRun(
                name=container["name"],
                image=image,
                behaviour=behaviour,
                restart_policy=started["spec"].get("restartPolicy", "Always"),
                factor=self.time_factor,
                ready_after=kubelet.ready_after_seconds(container, behaviour),
                pod=f"{metadata['name']}_{metadata['namespace']}({metadata['uid']})",
            )
            policy = container.get("imagePullPolicy", "IfNotPresent")
            pull = kubelet.pull_seconds(behaviour, image in node_images, policy)
            events += run.begin(now, wall, pull)
            runs.append(run)
        self.container_runs[started["metadata"]["uid"]] = runs
        self._write_container_status(started, now, events)

    def _advance_containers(self, pod: dict[str, Any], now: float) -> None:
        runs = self.container_runs[pod["metadata"]["uid"]]
        node_images = self._node_images.setdefault(pod["spec"]["nodeName"], set())
        wall, events = now_rfc3339(), []
        for run in runs:
            stepped, pulled = run.advance(now, wall, run.behaviour.full_pull_seconds())
            events += stepped
            if pulled:
                node_images.add(run.image)
        self._write_container_status(copy.deepcopy(pod), now, events)

    def _write_container_status(
        self, pod: dict[str, Any], now: float, events: list[kubelet.Event]
    ) -> None:
        """Writes the containers' state, the pod's phase and readiness, the kubelet's events,
        and schedules the next step (a pull ending, a back-off, a probe passing)."""
        runs = self.container_runs[pod["metadata"]["uid"]]
        status = pod["status"]
        status["containerStatuses"] = [run.status(now) for run in runs]
        phase = kubelet.pod_phase(runs)
        status["phase"] = phase
        unready = [run.name for run in runs if not run.ready(now)]
        if unready:
            reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
            message = (
                ""
                if reason == "PodCompleted"
                else (f"containers with unready status: [{' '.join(unready)}]")
            )
            set_condition(status, "Ready", "False", reason, message)
            set_condition(status, "ContainersReady", "False", reason, message)
        else:
            set_condition(status, "Ready", "True", "", "")
            set_condition(status, "ContainersReady", "True", "", "")
        stored = self.store.replace(POD.key, pod)
        for reason, message, event_type in events:
            self.api.record_event(stored, "Pod", reason, message, event_type, "kubelet")
        due = [at for run in runs for at in (run.next_at, run.next_ready_at(now)) if at is not None]
        if due:
            heapq.heappush(self._starts, (min(due), object_key(pod), pod["metadata"]["uid"]))

    def _expire_events(self) -> None:
        """Events expire, by default after an hour as with the API server's --event-ttl."""
        horizon = time.monotonic() - self.event_ttl_seconds
        while self._events and self._events[0][0] <= horizon:
            _, key, uid = self._events.popleft()
            event = self.store.get(EVENT.key, *key)
            if event is not None and event["metadata"]["uid"] == uid:
                self.store.remove(EVENT.key, key)

    def _finish_due_terminations(self) -> None:
        """Containers of deleted pods have ended: the kubelet reports the terminal phase
        (Failed or Succeeded, as kubelets do since 1.27) and then removes the pod."""
        now = time.monotonic()
        while self._stops and self._stops[0][0] <= now:
            _, key, uid = heapq.heappop(self._stops)
            pod = self.store.get(POD.key, *key)
            if pod is None or pod["metadata"]["uid"] != uid:
                continue
            runs = self.container_runs.get(uid, [])
            wall = now_rfc3339()
            for run in runs:
                run.end(wall)
            ended = copy.deepcopy(pod)
            status = ended.setdefault("status", {})
            if runs:
                status["containerStatuses"] = [run.status(now) for run in runs]
            status["phase"] = kubelet.pod_phase(runs) if runs else "Failed"
            for condition in ("Ready", "ContainersReady"):
                set_condition(status, condition, "False", "PodCompleted", "")
            self.store.replace(POD.key, ended)
            self.store.remove(POD.key, key)


def namespace_conditions(remaining: list[dict[str, Any]]) -> tuple[str, str]:
    """The messages of NamespaceContentRemaining and NamespaceFinalizersRemaining, worded as
    the namespace controller words them."""
    kinds = Counter(_group_resource(obj) for obj in remaining)
    content = "Some resources are remaining: " + ", ".join(
        f"{kind} has {count} resource instances" for kind, count in sorted(kinds.items())
    )
    held = Counter(f for obj in remaining for f in obj["metadata"].get("finalizers") or [])
    finalizers = ""
    if held:
        finalizers = "Some content in the namespace has finalizers remaining: " + ", ".join(
            f"{name} in {count} resource instances" for name, count in sorted(held.items())
        )
    return content, finalizers


def _group_resource(obj: Mapping[str, Any]) -> str:
    """`pods.` or `deployments.apps`: a resource as the API server names it in messages."""
    resource = BY_KIND.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if resource is None:
        return f"{str(obj.get('kind', '')).lower()}."
    return f"{resource.plural}.{resource.group}"


def _without_times(status: dict[str, Any]) -> Any:
    stripped = copy.deepcopy(status)
    for condition in stripped.get("conditions") or []:
        for field in ("lastTransitionTime", "lastUpdateTime", "lastProbeTime"):
            condition.pop(field, None)
    return stripped
