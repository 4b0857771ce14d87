"""Storage decisions as pure functions: default classes, claim binding, dynamic provisioning as
rancher's local-path provisioner does it, and the volume constraints a pod puts on scheduling.

RKE2 ships no provisioner; the team installs local-path (deploy/rke2/local-path-storage.yaml),
whose class binds on first consumer and whose volumes are directories pinned to one node. A
simulator that bound every claim at once on any node would hide the consequence the platform
has to live with: an environment's pod can only ever run where its volume was first made.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from akros_kubesim.quantity import QuantityError, whole_units
from akros_kubesim.selectors import node_selector_terms_match

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER_ANNOTATION = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bound-by-controller"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_ROOT = "/opt/local-path-provisioner"
HOSTNAME_LABEL = "kubernetes.io/hostname"

NO_CLASS_MESSAGE = "no persistent volumes available for this claim and no storage class is set"
WAITING_FOR_CONSUMER_MESSAGE = "waiting for first consumer to be created before binding"
UNBOUND_IMMEDIATE_MESSAGE = "pod has unbound immediate PersistentVolumeClaims"
VOLUME_NODE_CONFLICT = "node(s) had volume node affinity conflict"


def class_not_found(name: str) -> str:
    return f'storageclass.storage.k8s.io "{name}" not found'


def is_default_class(storage_class: Mapping[str, Any]) -> bool:
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return "true" in (
        annotations.get(DEFAULT_CLASS_ANNOTATION),
        annotations.get(BETA_DEFAULT_CLASS_ANNOTATION),
    )


def default_class_name(classes: Iterable[Mapping[str, Any]]) -> str | None:
    """The default class; with several, the newest (then the first by name), as the
    DefaultStorageClass admission plugin picks since Kubernetes 1.26."""
    defaults = [c["metadata"] for c in classes if is_default_class(c)]
    if not defaults:
        return None
    newest = max(m.get("creationTimestamp") or "" for m in defaults)
    return min(str(m["name"]) for m in defaults if (m.get("creationTimestamp") or "") == newest)


def admit_claim(claim: dict[str, Any], classes: Iterable[Mapping[str, Any]]) -> None:
    """What admission does to a new claim: DefaultStorageClass fills a missing class (an
    explicit "" means no class and stays), StorageObjectInUseProtection adds its finalizer."""
    spec = claim.setdefault("spec", {})
    if spec.get("storageClassName") is None:
        default = default_class_name(classes)
        if default is not None:
            spec["storageClassName"] = default
    _add_finalizer(claim, PVC_PROTECTION_FINALIZER)


def admit_volume(volume: dict[str, Any]) -> None:
    """StorageObjectInUseProtection: a volume is not removed while a claim is bound to it."""
    _add_finalizer(volume, PV_PROTECTION_FINALIZER)


def _add_finalizer(obj: dict[str, Any], finalizer: str) -> None:
    finalizers = obj.setdefault("metadata", {}).setdefault("finalizers", [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)


def waits_for_first_consumer(storage_class: Mapping[str, Any] | None) -> bool:
    return (storage_class or {}).get("volumeBindingMode") == "WaitForFirstConsumer"


def _storage_bytes(value: object) -> int:
    try:
        return whole_units(value)
    except QuantityError:
        return 0


def _requested_storage(claim: Mapping[str, Any]) -> object:
    return (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")


def _claim_ref_matches(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    reference = (volume.get("spec") or {}).get("claimRef") or {}
    if not reference:
        return True
    metadata = claim["metadata"]
    return bool(
        reference.get("namespace") == metadata.get("namespace")
        and reference.get("name") == metadata["name"]
        and reference.get("uid", metadata.get("uid")) == metadata.get("uid")
    )


def matching_volume(
    claim: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """An Available volume the claim may bind to, the smallest that is big enough, as the
    persistent volume controller matches: same class, enough capacity, the access modes
    asked for, spec.volumeName if the claim names one, a claimRef (pre-binding) for it or none."""
    spec = claim.get("spec") or {}
    wanted_class = spec.get("storageClassName") or ""
    wanted_bytes = _storage_bytes(_requested_storage(claim))
    wanted_modes = set(spec.get("accessModes") or [])
    named = spec.get("volumeName")
    candidates = []
    for volume in volumes:
        volume_spec = volume.get("spec") or {}
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if (volume.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if named and volume["metadata"]["name"] != named:
            continue
        if (volume_spec.get("storageClassName") or "") != wanted_class:
            continue
        size = _storage_bytes((volume_spec.get("capacity") or {}).get("storage"))
        if size < wanted_bytes or not wanted_modes <= set(volume_spec.get("accessModes") or []):
            continue
        if not _claim_ref_matches(volume, claim):
            continue
        candidates.append((size, volume["metadata"]["name"], volume))
    return min(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


@dataclass(frozen=True)
class ClaimBinding:
    """What the controllers do with an unbound claim.

    `bind_to` names an existing volume; `provision` asks for a new one (on `node`, for a class
    that waits for its first consumer); otherwise the claim stays Pending and `event` says why.
    """

    bind_to: str | None = None
    provision: bool = False
    node: str | None = None
    event: tuple[str, str, str] | None = None  # reason, message, type


def claim_binding(
    claim: Mapping[str, Any],
    classes: Mapping[str, Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
) -> ClaimBinding:
    """How a Pending claim gets a volume, or why it cannot yet."""
    spec = claim.get("spec") or {}
    class_name = spec.get("storageClassName") or ""
    storage_class = classes.get(class_name) if class_name else None
    node = ((claim.get("metadata") or {}).get("annotations") or {}).get(SELECTED_NODE_ANNOTATION)
    delayed = waits_for_first_consumer(storage_class)
    # A claim naming its volume binds at once, whatever the class's binding mode: the
    # persistent volume controller delays only claims that leave the choice to it
    # (pv_controller syncUnboundClaim, spec.volumeName set).
    if not (delayed and not node) or spec.get("volumeName"):
        existing = matching_volume(claim, volumes)
        if existing is not None:
            return ClaimBinding(bind_to=existing["metadata"]["name"])
    if not class_name:
        return ClaimBinding(event=("FailedBinding", NO_CLASS_MESSAGE, "Warning"))
    if storage_class is None:
        return ClaimBinding(event=("ProvisioningFailed", class_not_found(class_name), "Warning"))
    if delayed and not node:
        return ClaimBinding(event=("WaitForFirstConsumer", WAITING_FOR_CONSUMER_MESSAGE, "Normal"))
    if storage_class.get("provisioner") == LOCAL_PATH_PROVISIONER and not node:
        # local-path makes a directory on one node and cannot choose the node itself.
        message = "failed to provision volume with StorageClass "
        message += f'"{class_name}": configuration error, no node was specified'
        return ClaimBinding(event=("ProvisioningFailed", message, "Warning"))
    return ClaimBinding(provision=True, node=node)


def provisioned_volume(
    claim: Mapping[str, Any], storage_class: Mapping[str, Any], node: str | None
) -> dict[str, Any]:
    """The volume the class's provisioner creates for the claim: for local-path a hostPath
    directory under /opt/local-path-provisioner pinned to the node by node affinity."""
    metadata = claim["metadata"]
    spec = claim.get("spec") or {}
    name = f"pvc-{metadata['uid']}"
    provisioner = str(storage_class.get("provisioner", ""))
    volume_spec: dict[str, Any] = {
        "accessModes": list(spec.get("accessModes") or []),
        "capacity": {"storage": _requested_storage(claim)},
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": metadata["namespace"],
            "name": metadata["name"],
            "uid": metadata["uid"],
            "resourceVersion": metadata.get("resourceVersion", ""),
        },
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
        "storageClassName": storage_class["metadata"]["name"],
        "volumeMode": spec.get("volumeMode", "Filesystem"),
    }
    if storage_class.get("mountOptions"):
        volume_spec["mountOptions"] = list(storage_class["mountOptions"])
    if provisioner == LOCAL_PATH_PROVISIONER:
        path = f"{LOCAL_PATH_ROOT}/{name}_{metadata['namespace']}_{metadata['name']}"
        volume_spec["hostPath"] = {"path": path, "type": "DirectoryOrCreate"}
    else:
        volume_spec["csi"] = {"driver": provisioner, "volumeHandle": name}
    if node:
        expression = {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}
        volume_spec["nodeAffinity"] = {
            "required": {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY_ANNOTATION: provisioner}},
        "spec": volume_spec,
    }


def bound_volume(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> dict[str, Any]:
    """The volume's half of a binding: claimRef to the claim, phase Bound."""
    metadata = claim["metadata"]
    bound = {**volume, "spec": dict(volume.get("spec") or {})}
    bound["spec"]["claimRef"] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": metadata["namespace"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "resourceVersion": metadata.get("resourceVersion", ""),
    }
    bound["status"] = {"phase": "Bound"}
    return bound


def bound_claim(
    claim: Mapping[str, Any], volume: Mapping[str, Any], provisioner: str | None
) -> dict[str, Any]:
    """The claim's half: volumeName, the controller's annotations, phase Bound, the volume's
    capacity and access modes."""
    metadata = dict(claim["metadata"])
    annotations = dict(metadata.get("annotations") or {})
    annotations[BIND_COMPLETED_ANNOTATION] = "yes"
    annotations[BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
    if provisioner:
        annotations[STORAGE_PROVISIONER_ANNOTATION] = provisioner
        annotations[BETA_STORAGE_PROVISIONER_ANNOTATION] = provisioner
    metadata["annotations"] = annotations
    volume_spec = volume.get("spec") or {}
    spec = {**(claim.get("spec") or {}), "volumeName": volume["metadata"]["name"]}
    return {
        **claim,
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": "Bound",
            "accessModes": list(volume_spec.get("accessModes") or []),
            "capacity": dict(volume_spec.get("capacity") or {}),
        },
    }


def claim_in_use(claim: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a pod that has not finished mounts the claim (the pvc-protection controller
    keeps a deleted claim while one does)."""
    name = claim["metadata"]["name"]
    return any(
        name in claim_names(pod)
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        for pod in pods
    )


def claim_names(pod: Mapping[str, Any]) -> list[str]:
    return [
        str(volume["persistentVolumeClaim"]["claimName"])
        for volume in (pod.get("spec") or {}).get("volumes") or []
        if (volume.get("persistentVolumeClaim") or {}).get("claimName")
    ]


@dataclass(frozen=True)
class VolumeRelease:
    """What happens to a volume whose claim is gone: Released (Retain), removed (Delete)."""

    phase: str | None = None
    remove: bool = False


def volume_release(volume: Mapping[str, Any], claim_exists: bool) -> VolumeRelease:
    """A volume with no claim (or pre-bound to a claim not yet made) is Available; once its
    bound claim is gone it is Released and kept (Retain) or removed (Delete)."""
    status = volume.get("status") or {}
    spec = volume.get("spec") or {}
    deleting = bool((volume.get("metadata") or {}).get("deletionTimestamp"))
    if not ((spec.get("claimRef") or {}).get("uid")):
        if deleting:
            return VolumeRelease(remove=True)
        return VolumeRelease("Available") if status.get("phase") != "Available" else VolumeRelease()
    if claim_exists:
        return VolumeRelease()
    if spec.get("persistentVolumeReclaimPolicy") == "Delete" or deleting:
        return VolumeRelease(remove=True)
    return VolumeRelease("Released") if status.get("phase") != "Released" else VolumeRelease()


@dataclass(frozen=True)
class PodVolumes:
    """What a pod's claims mean for scheduling it.

    `blocked`: the pod cannot be placed anywhere yet (the VolumeBinding PreFilter's reason);
    `node_selectors`: the node affinity of its bound volumes, each must hold on the node;
    `to_provision`: its unbound claims whose class waits for the first consumer.
    """

    blocked: str | None = None
    node_selectors: tuple[Mapping[str, Any], ...] = ()
    to_provision: tuple[str, ...] = field(default_factory=tuple)


def pod_volumes(
    pod: Mapping[str, Any],
    claims: Mapping[str, Mapping[str, Any]],
    classes: Mapping[str, Mapping[str, Any]],
    volumes: Mapping[str, Mapping[str, Any]],
) -> PodVolumes:
    """The VolumeBinding plugin's view of a pod: its claims must exist and not be deleted,
    claims of Immediate classes must be bound already, bound volumes restrict the nodes."""
    selectors: list[Mapping[str, Any]] = []
    delayed: list[str] = []
    for name in claim_names(pod):
        claim = claims.get(name)
        if claim is None:
            return PodVolumes(blocked=f'persistentvolumeclaim "{name}" not found')
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            return PodVolumes(blocked=f'persistentvolumeclaim "{name}" is being deleted')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if (claim.get("status") or {}).get("phase") == "Bound" and volume_name:
            affinity = ((volumes.get(volume_name) or {}).get("spec") or {}).get("nodeAffinity")
            required = (affinity or {}).get("required")
            if required:
                selectors.append(required)
            continue
        class_name = (claim.get("spec") or {}).get("storageClassName") or ""
        storage_class = classes.get(class_name)
        if class_name and storage_class is None:
            return PodVolumes(blocked=class_not_found(class_name))
        if not waits_for_first_consumer(storage_class):
            return PodVolumes(blocked=UNBOUND_IMMEDIATE_MESSAGE)
        delayed.append(name)
    return PodVolumes(node_selectors=tuple(selectors), to_provision=tuple(delayed))


def volume_conflict(selectors: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> bool:
    return any(
        not node_selector_terms_match(s.get("nodeSelectorTerms") or [], node) for s in selectors
    )
