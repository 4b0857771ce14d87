"""The DaemonSet controller's decisions, as pure functions: which nodes should run a daemon pod,
what that pod looks like, and the status the controller reports.

Like the upstream controller (since 1.12), a daemon pod is not bound by the controller: it
carries a required node affinity on its node's name and the default scheduler places it, so
the daemon's requests are counted like anyone else's.
"""

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from akros_kubesim import scheduler
from akros_kubesim.ownership import controller_reference

# The tolerations the DaemonSet controller adds to every daemon pod, so a daemon keeps running
# on a node under pressure or briefly unreachable (pkg/controller/daemon/util).
_DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def daemon_pod_template(daemonset: Mapping[str, Any]) -> dict[str, Any]:
    """The daemonset's pod template with the controller's tolerations added."""
    template = copy.deepcopy(dict(daemonset["spec"]["template"]))
    spec = template.setdefault("spec", {})
    tolerations = list(spec.get("tolerations") or [])
    for toleration in _DAEMON_TOLERATIONS:
        if toleration not in tolerations:
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations
    return template


def nodes_to_run_on(daemonset: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The nodes a daemon pod belongs on: selector and affinity match, every taint tolerated."""
    probe = {"spec": daemon_pod_template(daemonset)["spec"]}
    names = []
    for node in nodes:
        failure = scheduler.placement_failure(probe, node)
        # An unschedulable (cordoned) node still runs its daemons, as upstream's does.
        if failure is None or failure == "node(s) were unschedulable":
            names.append(str(node["metadata"]["name"]))
    return names


def daemon_pod(daemonset: Mapping[str, Any], node_name: str, template_hash: str) -> dict[str, Any]:
    """The pod the controller creates for a node (named by the server from generateName)."""
    metadata = daemonset["metadata"]
    template = daemon_pod_template(daemonset)
    template_metadata = template.get("metadata") or {}
    spec = template["spec"]
    affinity = spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
            ]
        }
    }
    pod_metadata: dict[str, Any] = {
        "generateName": f"{metadata['name']}-",
        "namespace": metadata["namespace"],
        "labels": dict(template_metadata.get("labels") or {})
        | {
            "controller-revision-hash": template_hash,
            "pod-template-generation": str(metadata.get("generation", 1)),
        },
        "ownerReferences": [controller_reference(daemonset, "apps/v1", "DaemonSet")],
    }
    if template_metadata.get("annotations"):
        pod_metadata["annotations"] = dict(template_metadata["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": spec}


def pod_target_node(pod: Mapping[str, Any]) -> str | None:
    """The node a daemon pod was made for: its binding, else its node-name affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    terms = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for requirement in term.get("matchFields") or []:
            if requirement.get("key") == "metadata.name" and requirement.get("values"):
                return str(requirement["values"][0])
    return None


def _is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def daemonset_status(
    daemonset: Mapping[str, Any],
    wanted_nodes: Sequence[str],
    pods: Sequence[Mapping[str, Any]],
    template_hash: str,
) -> dict[str, Any]:
    """The status fields the controller writes, from the pods that are not terminating."""
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    scheduled = {
        n for p in live if (n := pod_target_node(p)) is not None and p["spec"].get("nodeName")
    }
    wanted = set(wanted_nodes)
    ready = [p for p in live if _is_ready(p) and pod_target_node(p) in wanted]
    updated = [
        p
        for p in live
        if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == template_hash
        and pod_target_node(p) in wanted
    ]
    status = {
        "currentNumberScheduled": len(scheduled & wanted),
        "numberMisscheduled": len(scheduled - wanted),
        "desiredNumberScheduled": len(wanted),
        "numberReady": len(ready),
    }
    # These four are `omitempty` in DaemonSetStatus: the API server's JSON has no zeros of them
    # (and its protobuf cannot tell a zero from unset).
    optional = {
        "observedGeneration": int(daemonset["metadata"].get("generation", 1)),
        "updatedNumberScheduled": len(updated),
        "numberAvailable": len(ready),
        "numberUnavailable": len(wanted) - len(ready),
    }
    return status | {key: value for key, value in optional.items() if value}
