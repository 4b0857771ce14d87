"""The storage decisions as pure functions: default class, admission, binding, provisioning,
release and the volume constraints on scheduling."""

from typing import Any

from akros_kubesim import storage
from akros_kubesim.selectors import node_selector_terms_match


def _class(
    name: str, mode: str = "Immediate", default: bool = False, **fields: Any
) -> dict[str, Any]:
    annotations = {storage.DEFAULT_CLASS_ANNOTATION: "true"} if default else {}
    return {
        "metadata": {
            "name": name,
            "annotations": annotations,
            "creationTimestamp": fields.pop("created", "2026-01-01T00:00:00Z"),
        },
        "provisioner": fields.pop("provisioner", storage.LOCAL_PATH_PROVISIONER),
        "volumeBindingMode": mode,
        "reclaimPolicy": "Delete",
    } | fields


def _claim(
    class_name: str | None = None, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
    } | spec
    if class_name is not None:
        claim_spec["storageClassName"] = class_name
    return {
        "metadata": {
            "name": "work",
            "namespace": "team",
            "uid": "u-1",
            "annotations": annotations or {},
        },
        "spec": claim_spec,
    }


def _volume(name: str, size: str, phase: str = "Available", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]} | spec,
        "status": {"phase": phase},
    }


def test_the_newest_default_class_wins_and_none_is_chosen_without_one() -> None:
    classes = [
        _class("old", default=True, created="2026-01-01T00:00:00Z"),
        _class("new", default=True, created="2026-02-01T00:00:00Z"),
        _class("plain", created="2026-03-01T00:00:00Z"),
    ]
    assert storage.default_class_name(classes) == "new"
    assert storage.default_class_name([_class("plain")]) is None


def test_admission_fills_a_missing_class_keeps_an_explicit_empty_one_and_adds_the_finalizer() -> (
    None
):
    missing, empty = _claim(), _claim("")
    storage.admit_claim(missing, [_class("local-path", default=True)])
    storage.admit_claim(empty, [_class("local-path", default=True)])
    assert missing["spec"]["storageClassName"] == "local-path"
    assert empty["spec"]["storageClassName"] == ""
    assert missing["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    without_default = _claim()
    storage.admit_claim(without_default, [])
    assert "storageClassName" not in without_default["spec"]


def test_binding_decisions_follow_the_class_and_its_binding_mode() -> None:
    classes = {
        "local-path": _class("local-path", "WaitForFirstConsumer"),
        "nfs": _class("nfs", provisioner="nfs.csi.k8s.io"),
        "local-now": _class("local-now"),
    }
    assert storage.claim_binding(_claim(""), classes, []) == storage.ClaimBinding(
        event=("FailedBinding", storage.NO_CLASS_MESSAGE, "Warning")
    )
    assert storage.claim_binding(_claim("gold"), classes, []) == storage.ClaimBinding(
        event=("ProvisioningFailed", 'storageclass.storage.k8s.io "gold" not found', "Warning")
    )
    assert storage.claim_binding(_claim("local-path"), classes, []) == storage.ClaimBinding(
        event=("WaitForFirstConsumer", storage.WAITING_FOR_CONSUMER_MESSAGE, "Normal")
    )
    selected = _claim("local-path", {storage.SELECTED_NODE_ANNOTATION: "node-a"})
    assert storage.claim_binding(selected, classes, []) == storage.ClaimBinding(
        provision=True, node="node-a"
    )
    assert storage.claim_binding(_claim("nfs"), classes, []) == storage.ClaimBinding(provision=True)
    failed = storage.claim_binding(_claim("local-now"), classes, [])
    assert failed.event is not None
    assert failed.event[1].endswith("configuration error, no node was specified")


def test_an_existing_volume_is_matched_by_class_size_access_modes_and_claim_reference() -> None:
    volumes = [
        _volume("too-small", "1Gi"),
        _volume("bigger", "10Gi"),
        _volume("just-right", "3Gi"),
        _volume("bound", "2Gi", phase="Bound"),
        _volume("other-class", "2Gi", storageClassName="nfs"),
        _volume("reserved", "2Gi", claimRef={"namespace": "team", "name": "other"}),
    ]
    assert storage.claim_binding(_claim(""), {}, volumes) == storage.ClaimBinding(
        bind_to="just-right"
    )
    named = _claim("", volumeName="bigger")
    assert storage.claim_binding(named, {}, volumes) == storage.ClaimBinding(bind_to="bigger")
    many = _claim("", accessModes=["ReadWriteMany"])
    assert storage.matching_volume(many, volumes) is None


def test_a_local_path_volume_is_a_host_directory_pinned_to_the_selected_node() -> None:
    claim = _claim("local-path")
    volume = storage.provisioned_volume(
        claim, _class("local-path", "WaitForFirstConsumer"), "node-a"
    )
    assert volume == {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": "pvc-u-1",
            "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"},
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "2Gi"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": "team",
                "name": "work",
                "uid": "u-1",
                "resourceVersion": "",
            },
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "local-path",
            "volumeMode": "Filesystem",
            "hostPath": {
                "path": "/opt/local-path-provisioner/pvc-u-1_team_work",
                "type": "DirectoryOrCreate",
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": ["node-a"],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def test_a_volume_without_its_claim_is_released_kept_or_removed_by_its_reclaim_policy() -> None:
    bound = {"uid": "u-1", "namespace": "team", "name": "work"}
    retain = _volume("v", "1Gi", "Bound", claimRef=bound, persistentVolumeReclaimPolicy="Retain")
    delete = _volume("v", "1Gi", "Bound", claimRef=bound, persistentVolumeReclaimPolicy="Delete")
    assert storage.volume_release(retain, claim_exists=True) == storage.VolumeRelease()
    assert storage.volume_release(retain, claim_exists=False) == storage.VolumeRelease("Released")
    assert storage.volume_release(delete, claim_exists=False) == storage.VolumeRelease(remove=True)
    assert storage.volume_release(_volume("v", "1Gi", "Pending"), False) == storage.VolumeRelease(
        "Available"
    )


def test_node_selector_terms_are_ored_and_their_expressions_anded() -> None:
    node = {"metadata": {"name": "node-a", "labels": {"zone": "x", "disk": "ssd", "cores": "64"}}}
    selector: dict[str, list[dict[str, Any]]] = {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["y"]}]},
            {
                "matchExpressions": [
                    {"key": "disk", "operator": "Exists"},
                    {"key": "gpu", "operator": "DoesNotExist"},
                    {"key": "cores", "operator": "Gt", "values": ["32"]},
                ],
                "matchFields": [
                    {"key": "metadata.name", "operator": "NotIn", "values": ["node-b"]}
                ],
            },
        ]
    }
    assert node_selector_terms_match(selector["nodeSelectorTerms"], node)
    assert not node_selector_terms_match(selector["nodeSelectorTerms"][:1], node)


def test_a_pods_claims_block_it_constrain_its_nodes_or_wait_for_its_node() -> None:
    affinity = {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}
                ]
            }
        ]
    }
    classes = {"local-path": _class("local-path", "WaitForFirstConsumer")}
    bound = _claim("local-path", volumeName="pv-1") | {"status": {"phase": "Bound"}}
    waiting = _claim("local-path") | {"metadata": {"name": "scratch"}}
    pod = {
        "spec": {
            "volumes": [
                {"name": "w", "persistentVolumeClaim": {"claimName": "work"}},
                {"name": "s", "persistentVolumeClaim": {"claimName": "scratch"}},
            ]
        }
    }
    volumes = {"pv-1": {"spec": {"nodeAffinity": {"required": affinity}}}}
    assert storage.pod_volumes(
        pod, {"work": bound, "scratch": waiting}, classes, volumes
    ) == storage.PodVolumes(node_selectors=(affinity,), to_provision=("scratch",))
    assert storage.pod_volumes(pod, {"work": bound}, classes, volumes) == storage.PodVolumes(
        blocked='persistentvolumeclaim "scratch" not found'
    )
    immediate = _claim("") | {"metadata": {"name": "scratch"}}
    assert storage.pod_volumes(
        pod, {"work": bound, "scratch": immediate}, classes, volumes
    ) == storage.PodVolumes(blocked=storage.UNBOUND_IMMEDIATE_MESSAGE)
    assert storage.volume_conflict(
        [affinity], {"metadata": {"name": "node-b", "labels": {"kubernetes.io/hostname": "node-b"}}}
    )
