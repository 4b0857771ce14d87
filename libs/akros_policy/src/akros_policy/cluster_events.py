"""What the cluster said about an environment, in words a researcher understands.

Kubernetes reports in Events (reason, message) written for cluster operators: "0/3 nodes are
available: 3 Insufficient nvidia.com/gpu." Here they become "waiting for a GPU: no node has
one free". Pure functions over the Events' fields; the gateway reads the Events.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class ClusterEvent:
    """One Event about one of an environment's objects, as the API server reported it."""

    at: str
    """When it last happened (RFC 3339): lastTimestamp, else eventTime, else creation."""
    object_kind: str
    object_name: str
    reason: str
    message: str
    warning: bool
    count: int = 1

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> "ClusterEvent":
        """From a core/v1 Event (either reporter: the legacy one with timestamps and a count,
        or events.k8s.io/v1's with an eventTime and a series)."""
        involved = event.get("involvedObject") or {}
        metadata = event.get("metadata") or {}
        series = event.get("series") or {}
        return cls(
            at=str(
                event.get("lastTimestamp")
                or series.get("lastObservedTime")
                or event.get("eventTime")
                or metadata.get("creationTimestamp")
                or ""
            ),
            object_kind=str(involved.get("kind") or ""),
            object_name=str(involved.get("name") or ""),
            reason=str(event.get("reason") or ""),
            message=str(event.get("message") or ""),
            warning=event.get("type") == "Warning",
            count=int(event.get("count") or series.get("count") or 1),
        )


def oldest_first(events: Sequence[ClusterEvent]) -> list[ClusterEvent]:
    """By the second they happened in, and within one second in the API server's order.

    The legacy reporter (the kubelet's) writes whole seconds ("...:05Z"), events.k8s.io (the
    scheduler's) microseconds ("...:05.250000Z"): finer than a second cannot be compared. The
    API server lists Events by name, and each is named after its object and the time in
    nanoseconds, so its order is the order things happened in.
    """
    return sorted(events, key=lambda event: event.at[:19])


@dataclass(frozen=True)
class EnvironmentHistory:
    """What the cluster said about an environment, and which of its objects exist now."""

    events: list[ClusterEvent]
    """Oldest first."""
    current: frozenset[tuple[str, str]]
    """(kind, name) of its objects that exist now: its pods, claim and Deployment."""

    def why_pending(self) -> str:
        return why_pending(self.events, self.current)


# What a Deployment's ReplicaSet adds to its name ("-<pod-template-hash>"), and its pods to
# that ("-<5 random characters>"): names of another workload that merely begins with the same
# words ("alice-nb-2" after "alice-nb") have more parts and do not match.
_REPLICASET_SUFFIX = re.compile(r"^[a-z0-9]+$")
_POD_SUFFIX = re.compile(r"^[a-z0-9]+-[a-z0-9]{5}$")


def belongs_to_workload(
    event: Mapping[str, Any], objects: set[tuple[str, str]], workloads: Sequence[str]
) -> bool:
    """Whether an Event is about one of an environment's objects: one that exists now
    (``objects``: (kind, name)), or a ReplicaSet or pod of one of its workloads (Deployment
    names) that has gone since, such as a pod that was preempted."""
    involved = event.get("involvedObject") or {}
    kind, name = str(involved.get("kind") or ""), str(involved.get("name") or "")
    if (kind, name) in objects:
        return True
    suffix = {"Pod": _POD_SUFFIX, "ReplicaSet": _REPLICASET_SUFFIX}.get(kind)
    if suffix is None:
        return False
    return any(
        name.startswith(f"{workload}-") and suffix.match(name.removeprefix(f"{workload}-"))
        for workload in workloads
    )


# -- the scheduler's explanation ------------------------------------------------------------

_AVAILABLE = re.compile(r"^0/(?P<total>\d+) nodes are available: (?P<reasons>.*?)\.?$")
_COUNTED = re.compile(r"^(?P<count>\d+) (?P<reason>.+)$")


@dataclass(frozen=True)
class _Unfit:
    """Why nodes refused a pod: what it waits for, and the words for all or some nodes."""

    waiting_for: str
    all_nodes: str
    some_nodes: str  # "{n} {verb} ...": n nodes of the total


def _unfit(reason: str) -> _Unfit:
    if reason.startswith("Insufficient "):
        resource = reason.removeprefix("Insufficient ")
        if resource == GPU_RESOURCE:
            return _Unfit("a GPU", "no node has one free", "{n} {have} no GPU free")
        if resource == "cpu":
            return _Unfit("CPU", "no node has enough free", "{n} {have} too little CPU free")
        if resource == "memory":
            return _Unfit("memory", "no node has enough free", "{n} {have} too little memory free")
        return _Unfit(resource, "no node has enough free", f"{{n}} {{have}} too little {resource}")
    if reason == "Too many pods":
        return _Unfit("a node", "every node runs as many pods as it can", "{n} {are} full")
    if "node affinity/selector" in reason:
        return _Unfit(
            "a node of the kind it asks for", "no node is of that kind", "{n} {are} of another kind"
        )
    if "untolerated taint" in reason:
        return _Unfit(
            "a node it may use",
            "every node is reserved for other work",
            "{n} {are} reserved for other work",
        )
    if "unschedulable" in reason:
        return _Unfit(
            "a node", "every node is closed for maintenance", "{n} {are} closed for maintenance"
        )
    if "volume node affinity conflict" in reason:
        return _Unfit(
            "room on the node its volume is stored on",
            "its volume is stored on a node that has no room",
            "{n} {are} not where its volume is stored",
        )
    return _Unfit("a node", f"the scheduler says: {reason}", f"{{n}}: {reason}")


# What a pod waits for most: a GPU before CPU before memory before anything else.
_PRIORITY = ("a GPU", "CPU", "memory")


def _scheduling_in_words(message: str) -> str:
    if "unbound immediate PersistentVolumeClaims" in message:
        return "waiting for its volume to be created"
    # A newer scheduler adds what preemption found: "... preemption: 0/3 nodes are ...".
    first = message.split(" preemption:", 1)[0].strip()
    matched = _AVAILABLE.match(first)
    if matched is None:
        return f"waiting for a node: {message}"
    total = int(matched["total"])
    # Reasons that read the same (two different taints) are counted together.
    counts: dict[_Unfit, int] = {}
    for part in matched["reasons"].split(", "):
        found = _COUNTED.match(part.strip())
        if found is not None:
            unfit = _unfit(found["reason"].rstrip("."))
            counts[unfit] = counts.get(unfit, 0) + int(found["count"])
    counted = [(count, unfit) for unfit, count in counts.items()]
    if not counted:
        return f"waiting for a node: {message}"
    needs = [unfit.waiting_for for _, unfit in counted]
    waiting_for = next((need for need in _PRIORITY if need in needs), needs[0])
    if len(counted) == 1 and counted[0][0] == total:
        return f"waiting for {waiting_for}: {counted[0][1].all_nodes}"
    details = []
    for count, unfit in counted:
        one = count == 1
        words = unfit.some_nodes.format(
            n=count, have="has" if one else "have", are="is" if one else "are"
        )
        details.append(words)
    nodes = "node" if total == 1 else "nodes"
    return f"waiting for {waiting_for}: of {total} {nodes}, " + ", ".join(details)


# -- the kubelet's and controllers' reports -------------------------------------------------

_QUOTED_IMAGE = re.compile(r'image "(?P<image>[^"]+)"')
_PULLED_IN = re.compile(r" in (?P<took>[0-9hms.]+)")
_ASSIGNED = re.compile(r" to (?P<node>\S+)$")
_PREEMPTED_ON = re.compile(r" on node (?P<node>\S+)")


def _image(message: str) -> str:
    matched = _QUOTED_IMAGE.search(message)
    return matched["image"] if matched else "its image"


def _pulled(message: str) -> str:
    if "already present on machine" in message:
        return f"the image {_image(message)} is already on its node"
    took = _PULLED_IN.search(message)
    return f"downloaded the image {_image(message)}" + (f" in {took['took']}" if took else "")


def _failed(message: str) -> str:
    if message.startswith("Failed to pull image"):
        detail = message.split(": ", 1)[1] if ": " in message else ""
        if "not found" in detail:
            return f"the image {_image(message)} does not exist: check its name"
        return f"the image {_image(message)} could not be downloaded ({detail})"
    if message in ("Error: ErrImagePull", "Error: ImagePullBackOff"):
        return "its image could not be downloaded"
    return f"something failed: {message}"


def _back_off(message: str) -> str:
    if "pulling image" in message:
        return f"waiting a while before trying to download the image {_image(message)} again"
    if "restarting failed container" in message:
        return "its program stopped with an error; it is restarted after a pause (see its logs)"
    return f"waiting a while before trying again: {message}"


def _scheduled(message: str) -> str:
    node = _ASSIGNED.search(message)
    return f"placed on node {node['node']}" if node else "placed on a node"


def _preempted(message: str) -> str:
    node = _PREEMPTED_ON.search(message)
    where = f" on node {node['node']}" if node else ""
    return f"stopped{where} to make room for higher-priority work; it is placed again"


def in_words(reason: str, message: str) -> str:
    """One Event (its reason and message) as a researcher would say it."""
    explained: dict[str, Callable[[], str]] = {
        "Scheduled": lambda: _scheduled(message),
        "FailedScheduling": lambda: _scheduling_in_words(message),
        "Pulling": lambda: f"downloading the image {_image(message)}",
        "Pulled": lambda: _pulled(message),
        "Failed": lambda: _failed(message),
        "BackOff": lambda: _back_off(message),
        "Created": lambda: "its container was created",
        "Started": lambda: "its program started",
        "Killing": lambda: "being stopped",
        "Preempted": lambda: _preempted(message),
        "Unhealthy": lambda: f"not answering its health check yet ({message})",
        "OOMKilling": lambda: "its program ran out of memory and was stopped",
        "Evicted": lambda: f"moved off its node: {message}",
        "FailedMount": lambda: f"its volume could not be mounted: {message}",
        "FailedAttachVolume": lambda: f"its volume could not be attached: {message}",
        "WaitForFirstConsumer": lambda: "its volume is made once it has a node",
        "ProvisioningFailed": lambda: f"its volume could not be created: {message}",
        "ProvisioningSucceeded": lambda: "its volume was created",
    }
    words = explained.get(reason)
    return words() if words is not None else f"{reason}: {message}"


# Reports that say nothing about why an environment is not ready yet. A claim that waits for
# its first consumer says so again and again while its pod cannot be placed: the pod's own
# report says why.
_UNTELLING = frozenset(
    {
        "Created",
        "SuccessfulCreate",
        "ScalingReplicaSet",
        "ProvisioningSucceeded",
        "Provisioning",
        "WaitForFirstConsumer",
        "ExternalProvisioning",
    }
)
NOTHING_YET = (
    "the cluster has said nothing about it yet: its request may still be on its way "
    "(see the request's status)"
)


def why_pending(
    events: Sequence[ClusterEvent], current: frozenset[tuple[str, str]] | None = None
) -> str:
    """Why an environment that is not ready is not: the newest thing the cluster said about
    it that explains a wait (scheduling, pulls, crashes), in words. With ``current`` (the
    objects that exist now), only what was said about those: a preempted pod's last words
    ("being stopped") are history once a new pod waits for a node."""
    for event in reversed(oldest_first(events)):
        if event.reason in _UNTELLING:
            continue
        if current is not None and (event.object_kind, event.object_name) not in current:
            continue
        if event.reason == "Started":
            return "its program started; it is not answering yet"
        return in_words(event.reason, event.message)
    return NOTHING_YET
