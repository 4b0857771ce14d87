"""Pure functions that build an in-house service's Kubernetes objects from its spec, and decide
whether a live object already matches.

Each built object carries a digest of itself in an annotation: an update compares digests and
leaves an object alone when they match, so an unchanged spec writes nothing and restarts no
pod, whatever defaults the API server filled in.
"""

import hashlib
import json
from dataclasses import dataclass

from akros_k8s_worker.objects import (
    GPU_RESOURCE,
    Manifest,
    hardened_pod,
    restricted_container,
)
from akros_msgs.services import EnvVar, Probe, ServiceSpec, Volume, VolumeSource
from akros_policy.naming import service_labels, service_pod_selector

ANNOTATION_SPEC_DIGEST = "akros.io/spec-digest"
CONTAINER_NAME = "service"


@dataclass(frozen=True)
class ServicePlatform:
    """How this cluster hosts in-house services (from the worker's settings)."""

    namespace: str
    run_as_user: int
    run_as_group: int


@dataclass(frozen=True)
class ServiceObjects:
    """A service's objects; no Service nor NetworkPolicy without ports, no HPA without
    autoscaling."""

    deployment: Manifest
    service: Manifest | None
    autoscaler: Manifest | None
    network_policy: Manifest | None


def port_name(port: int, name: str | None) -> str:
    """A Service with several ports needs every port named; unnamed ones get "port-<n>"."""
    return name or f"port-{port}"


def _probe(probe: Probe) -> Manifest:
    built: Manifest
    if probe.http_get is not None:
        built = {"httpGet": {"path": probe.http_get.path, "port": probe.http_get.port}}
    elif probe.tcp_port is not None:
        built = {"tcpSocket": {"port": probe.tcp_port}}
    else:
        built = {"exec": {"command": list(probe.command or [])}}
    built.update(
        initialDelaySeconds=probe.initial_delay_seconds,
        periodSeconds=probe.period_seconds,
        failureThreshold=probe.failure_threshold,
    )
    return built


def _volume(volume: Volume) -> Manifest:
    ref = volume.ref or ""
    if volume.source is VolumeSource.PVC:
        return {
            "name": volume.name,
            "persistentVolumeClaim": {"claimName": ref, "readOnly": volume.read_only},
        }
    if volume.source is VolumeSource.CONFIG_MAP:
        return {"name": volume.name, "configMap": {"name": ref}}
    if volume.source is VolumeSource.SECRET:
        return {"name": volume.name, "secret": {"secretName": ref}}
    if volume.source is VolumeSource.HOST_PATH:
        return {"name": volume.name, "hostPath": {"path": ref}}
    empty_dir: Manifest = {"sizeLimit": volume.size_limit} if volume.size_limit else {}
    return {"name": volume.name, "emptyDir": empty_dir}


def _resources(spec: ServiceSpec) -> Manifest:
    """Requests as asked. No CPU limit unless asked (a CFS quota throttles bursty work, the
    team's lesson); memory is always limited to protect the node."""
    wanted = spec.resources
    requests = {"cpu": wanted.cpu, "memory": wanted.memory}
    limits = {"memory": wanted.memory_limit or wanted.memory}
    if wanted.cpu_limit:
        limits["cpu"] = wanted.cpu_limit
    if wanted.gpus:
        requests[GPU_RESOURCE] = str(wanted.gpus)
        limits[GPU_RESOURCE] = str(wanted.gpus)
    return {"requests": requests, "limits": limits}


def _env_var(variable: EnvVar) -> Manifest:
    if variable.secret is None:
        return {"name": variable.name, "value": variable.value}
    reference = {"name": variable.secret.name, "key": variable.secret.key}
    return {"name": variable.name, "valueFrom": {"secretKeyRef": reference}}


def _container(spec: ServiceSpec) -> Manifest:
    container: Manifest = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "resources": _resources(spec),
        "securityContext": restricted_container(),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if spec.env:
        container["env"] = [_env_var(e) for e in spec.env]
    if spec.ports:
        container["ports"] = [
            {
                "name": port_name(p.port, p.name),
                "containerPort": p.target_port or p.port,
                "protocol": p.protocol.value,
            }
            for p in spec.ports
        ]
    if spec.volumes:
        container["volumeMounts"] = [
            {"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only}
            for v in spec.volumes
        ]
    if spec.readiness_probe:
        container["readinessProbe"] = _probe(spec.readiness_probe)
    if spec.liveness_probe:
        container["livenessProbe"] = _probe(spec.liveness_probe)
    return container


def _pod_spec(spec: ServiceSpec, platform: ServicePlatform) -> Manifest:
    pod: Manifest = {
        "containers": [_container(spec)],
        **hardened_pod(platform.run_as_user, platform.run_as_group),
    }
    if spec.volumes:
        pod["volumes"] = [_volume(v) for v in spec.volumes]
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    tolerations = [t.model_dump(exclude_none=True) for t in spec.tolerations]
    if spec.resources.gpus:
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        pod["tolerations"] = tolerations
    return pod


def digest(manifest: Manifest) -> str:
    """A digest of what we would write (the digest annotation itself left out)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _stamped(manifest: Manifest) -> Manifest:
    manifest["metadata"]["annotations"] = {ANNOTATION_SPEC_DIGEST: digest(manifest)}
    return manifest


def _metadata(spec: ServiceSpec, platform: ServicePlatform) -> Manifest:
    return {"name": spec.name, "namespace": platform.namespace, "labels": service_labels(spec.name)}


def service_objects(spec: ServiceSpec, platform: ServicePlatform) -> ServiceObjects:
    """The Deployment, Service and HorizontalPodAutoscaler (autoscaling/v2) of ``spec``."""
    labels = service_labels(spec.name)
    replicas = spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, platform),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": service_pod_selector(spec.name)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": _pod_spec(spec, platform),
            },
        },
    }
    service: Manifest | None = None
    if spec.ports:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(spec, platform),
            "spec": {
                "type": spec.service_type.value,
                "selector": service_pod_selector(spec.name),
                "ports": [
                    {
                        "name": port_name(p.port, p.name),
                        "port": p.port,
                        "targetPort": p.target_port or p.port,
                        "protocol": p.protocol.value,
                    }
                    for p in spec.ports
                ],
            },
        }
    # akros-services denies all ingress (deploy/base/networkpolicies.yaml): the ports the spec
    # declares are the service's to serve, to anyone, as its Service (a NodePort or
    # LoadBalancer one too) exposes them; its other ports stay closed.
    network_policy: Manifest | None = None
    if spec.ports:
        network_policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _metadata(spec, platform),
            "spec": {
                "podSelector": {"matchLabels": service_pod_selector(spec.name)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "ports": [
                            {"protocol": p.protocol.value, "port": p.target_port or p.port}
                            for p in spec.ports
                        ]
                    }
                ],
            },
        }
    autoscaler: Manifest | None = None
    if spec.autoscaling:
        scaling = spec.autoscaling
        targets = (("cpu", scaling.cpu_utilisation), ("memory", scaling.memory_utilisation))
        autoscaler = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _metadata(spec, platform),
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": spec.name,
                },
                "minReplicas": scaling.min_replicas,
                "maxReplicas": scaling.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": resource,
                            "target": {"type": "Utilization", "averageUtilization": percent},
                        },
                    }
                    for resource, percent in targets
                    if percent is not None
                ],
            },
        }
    return ServiceObjects(
        deployment=_stamped(deployment),
        service=_stamped(service) if service else None,
        autoscaler=_stamped(autoscaler) if autoscaler else None,
        network_policy=_stamped(network_policy) if network_policy else None,
    )


def is_current(desired: Manifest, live: Manifest) -> bool:
    """Does the live object already carry what ``desired`` would write?"""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return bool(
        annotations.get(ANNOTATION_SPEC_DIGEST)
        == desired["metadata"]["annotations"][ANNOTATION_SPEC_DIGEST]
    )


def replacement(desired: Manifest, live: Manifest, *, autoscaled: bool) -> Manifest:
    """``desired`` as a full replacement of ``live``: with its resourceVersion (so a lost race
    is a conflict, not a lost write) and what the cluster owns kept: a Service's cluster IP
    and node ports, and an autoscaled Deployment's replica count (the HPA's to set)."""
    replaced: Manifest = json.loads(json.dumps(desired))
    live_metadata = live.get("metadata") or {}
    replaced["metadata"]["resourceVersion"] = live_metadata.get("resourceVersion")
    live_spec = live.get("spec") or {}
    if desired["kind"] == "Service":
        for key in ("clusterIP", "clusterIPs"):
            if key in live_spec:
                replaced["spec"][key] = live_spec[key]
        node_ports = {p.get("port"): p.get("nodePort") for p in live_spec.get("ports") or []}
        for port in replaced["spec"]["ports"]:
            if node_ports.get(port["port"]) and desired["spec"]["type"] != "ClusterIP":
                port["nodePort"] = node_ports[port["port"]]
    elif desired["kind"] == "Deployment" and autoscaled and "replicas" in live_spec:
        replaced["spec"]["replicas"] = live_spec["replicas"]
    return replaced
