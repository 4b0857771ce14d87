"""Pod Security Admission: the namespaces the worker writes to enforce the restricted profile
(privileged only for akros-services where host paths are enabled), and every pod the
worker's builders produce, for every catalog profile and service spec shape, passes it.

The admission controller runs only in a real API server; tests.pod_security is the same
rules as a pure function, itself checked first on pods that break each rule."""

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from akros_k8s_worker.objects import environment_objects
from akros_k8s_worker.service_objects import ServicePlatform, service_objects
from akros_k8s_worker.settings import WorkerSettings
from akros_msgs import Actor, CreateEnvironment, Role, Source
from akros_msgs.services import ServiceSpec
from akros_policy import DEFAULT_CATALOG, Catalog
from tests.deploy.rendering import KUSTOMIZATIONS, ROOT, render
from tests.pod_security import violations

PSA = "pod-security.kubernetes.io/"
RESTRICTED_AT_V1_31 = {
    f"{PSA}enforce": "restricted",
    f"{PSA}enforce-version": "v1.31",
    f"{PSA}warn": "restricted",
    f"{PSA}warn-version": "v1.31",
    f"{PSA}audit": "restricted",
    f"{PSA}audit-version": "v1.31",
}
WORKLOAD_NAMESPACES = ("akros-envs", "akros-services", "akros-inference")


def _namespace_labels(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        o["metadata"]["name"]: o["metadata"].get("labels") or {}
        for o in objects
        if o["kind"] == "Namespace"
    }


def _env(deployment: dict[str, Any], name: str) -> str | None:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return next((e.get("value") for e in container.get("env") or [] if e["name"] == name), None)


def test_the_base_enforces_warns_and_audits_restricted_where_workloads_run(
    tmp_path: Path,
) -> None:
    labels = _namespace_labels(render("base", tmp_path))
    for namespace in WORKLOAD_NAMESPACES:
        pod_security = {k: v for k, v in labels[namespace].items() if k.startswith(PSA)}
        assert pod_security == RESTRICTED_AT_V1_31, namespace


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_akros_services_is_restricted_unless_the_rendering_enables_host_paths(
    kustomization: str, tmp_path: Path
) -> None:
    """Pod Security's baseline forbids hostPath volumes as restricted does: a namespace
    whose services may mount host paths can only enforce privileged, and only there."""
    objects = render(kustomization, tmp_path)
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    enabled = {
        service: _env(deployments[service], "AKROS_ALLOW_HOST_PATH") == "true"
        for service in ("api-gateway", "k8s-worker")
    }
    assert len(set(enabled.values())) == 1, f"the gateway and worker disagree: {enabled}"
    labels = _namespace_labels(objects)
    expected = "privileged" if enabled["k8s-worker"] else "restricted"
    assert labels["akros-services"][f"{PSA}enforce"] == expected
    assert labels["akros-services"][f"{PSA}warn"] == "restricted"
    assert labels["akros-envs"][f"{PSA}enforce"] == "restricted"
    assert labels["akros-inference"][f"{PSA}enforce"] == "restricted"


def test_only_the_host_paths_overlay_enables_host_paths(tmp_path: Path) -> None:
    enabling = [
        kustomization
        for kustomization in KUSTOMIZATIONS
        if any(
            _env(o, "AKROS_ALLOW_HOST_PATH") == "true"
            for o in render(kustomization, tmp_path)
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "k8s-worker"
        )
    ]
    assert enabling == ["overlays/host-paths"]


# -- the checker can fail ---------------------------------------------------------------------

COMPLIANT: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "main",
            "image": "registry.akros.local/x:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def _with_container(**security_context: Any) -> dict[str, Any]:
    [container] = COMPLIANT["containers"]
    merged = {**container["securityContext"], **security_context}
    return {**COMPLIANT, "containers": [{**container, "securityContext": merged}]}


def test_the_checker_admits_a_minimal_restricted_pod() -> None:
    assert violations(COMPLIANT, "restricted") == []


@pytest.mark.parametrize(
    ("pod", "level", "found"),
    [
        ({**COMPLIANT, "hostNetwork": True}, "baseline", "hostNetwork is true"),
        ({**COMPLIANT, "hostPID": True}, "baseline", "hostPID is true"),
        (
            {**COMPLIANT, "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
            "baseline",
            "volume root is a hostPath",
        ),
        (_with_container(privileged=True), "baseline", "is privileged"),
        (_with_container(capabilities={"add": ["SYS_ADMIN"]}), "baseline", "SYS_ADMIN"),
        (_with_container(seccompProfile={"type": "Unconfined"}), "baseline", "Unconfined"),
        (
            {
                **COMPLIANT,
                "containers": [{**COMPLIANT["containers"][0], "ports": [{"hostPort": 80}]}],
            },
            "baseline",
            "hostPort 80",
        ),
        (_with_container(allowPrivilegeEscalation=True), "restricted", "allowPrivilegeEscalation"),
        (_with_container(runAsNonRoot=False), "restricted", "non-root"),
        (_with_container(runAsUser=0), "restricted", "runAsUser is 0"),
        (_with_container(capabilities={"drop": ["NET_RAW"]}), "restricted", "drop ALL"),
        (
            {**COMPLIANT, "securityContext": {"runAsNonRoot": True}},
            "restricted",
            "seccompProfile is None",
        ),
        (
            {**COMPLIANT, "volumes": [{"name": "disk", "nfs": {"server": "n", "path": "/"}}]},
            "restricted",
            "volume disk is of type ['nfs']",
        ),
    ],
)
def test_the_checker_names_what_breaks_the_profile(
    pod: dict[str, Any], level: Any, found: str
) -> None:
    assert any(found in violation for violation in violations(pod, level)), violations(pod, level)


def test_a_baseline_pod_may_still_break_restricted() -> None:
    root_allowed = {**COMPLIANT, "securityContext": {}}
    assert violations(root_allowed, "baseline") == []
    assert violations(root_allowed, "restricted")


# -- what the worker builds --------------------------------------------------------------------

WORKER = WorkerSettings(storage_class="local-path")
ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)


def _catalogs() -> dict[str, Catalog]:
    """The built-in catalog and the one deploy/base ships in its ConfigMap."""
    [config_map] = yaml.safe_load_all((ROOT / "deploy/base/config.yaml").read_text())
    deployed = Catalog.model_validate(yaml.safe_load(config_map["data"]["catalog.yaml"]))
    return {"built-in": DEFAULT_CATALOG, "deploy/base": deployed}


def _environment_pods() -> list[tuple[str, dict[str, Any]]]:
    """One pod per catalog, image and profile, plus the shapes a request may add to a
    profile (a GPU model, dedicated cores, none at all)."""
    pods = []
    for catalog_name, catalog in _catalogs().items():
        for (image_key, image), (profile_key, profile) in itertools.product(
            catalog.images.items(), [*catalog.profiles.items(), (None, None)]
        ):
            shapes: list[dict[str, Any]] = [{}]
            if profile is None:
                shapes = [{"cpu": "2", "memory": "8Gi"}, {"cpu": "4", "memory": "8Gi", "gpus": 2}]
            elif profile.gpus:
                shapes.append({"gpu_model": "NVIDIA-A100-SXM4-80GB"})
            for extra in shapes:
                fields: dict[str, Any] = {
                    "request_id": "r",
                    "actor": ALICE,
                    "owner": "alice",
                    "name": "exp",
                    "image": image_key,
                    **({"profile": profile_key} if profile_key else {}),
                    **(
                        profile.model_dump(include={"cpu", "memory", "gpus", "dedicated_cores"})
                        if profile
                        else {}
                    ),
                    **extra,
                }
                command = CreateEnvironment.model_validate(fields)
                deployment = environment_objects(command, image, WORKER.platform()).deployment
                label = f"{catalog_name}:{image_key}:{profile_key}:{sorted(extra)}"
                pods.append((label, deployment["spec"]["template"]))
    return pods


def test_every_environment_the_catalogs_allow_passes_the_restricted_profile() -> None:
    pods = _environment_pods()
    assert len(pods) > 10
    for label, template in pods:
        assert (
            violations(template["spec"], "restricted", template["metadata"].get("annotations"))
            == []
        ), label


SERVICE_SHAPES: dict[str, dict[str, Any]] = {
    "minimal": {},
    "full": {
        "command": ["pricer"],
        "args": ["--workers", "4"],
        "env": [{"name": "MODE", "value": "live"}],
        "ports": [{"port": 80, "target_port": 8080, "name": "http"}, {"port": 9090}],
        "service_type": "NodePort",
        "resources": {"cpu": "2", "memory": "4Gi", "gpus": 1, "memory_limit": "6Gi"},
        "node_selector": {"nvidia.com/gpu.product": "A100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "readiness_probe": {"http_get": {"path": "/ready", "port": 8080}},
        "liveness_probe": {"command": ["pricer", "check"]},
        "volumes": [
            {"name": "models", "mount_path": "/models", "source": "pvc", "ref": "models"},
            {"name": "conf", "mount_path": "/etc/pricer", "source": "config_map", "ref": "cfg"},
            {"name": "keys", "mount_path": "/keys", "source": "secret", "ref": "pricer-keys"},
            {
                "name": "scratch",
                "mount_path": "/scratch",
                "source": "empty_dir",
                "size_limit": "1Gi",
            },
        ],
        "autoscaling": {"min_replicas": 2, "max_replicas": 8, "cpu_utilisation": 70},
    },
    "udp-only": {"ports": [{"port": 514, "protocol": "UDP"}]},
    "read-only-claim": {
        "volumes": [
            {"name": "data", "mount_path": "/data", "source": "pvc", "ref": "d", "read_only": True}
        ]
    },
}


def _service_pod(shape: dict[str, Any]) -> dict[str, Any]:
    spec = ServiceSpec.model_validate(
        {"name": "pricer", "image": "registry.akros.local/team/pricer:3", **shape}
    )
    platform = ServicePlatform(
        namespace=WORKER.services_namespace,
        run_as_user=WORKER.run_as_user,
        run_as_group=WORKER.run_as_group,
    )
    template: dict[str, Any] = service_objects(spec, platform).deployment["spec"]["template"]
    return template


@pytest.mark.parametrize("shape", SERVICE_SHAPES, ids=list(SERVICE_SHAPES))
def test_every_service_spec_shape_passes_the_restricted_profile(shape: str) -> None:
    template = _service_pod(SERVICE_SHAPES[shape])
    assert violations(template["spec"], "restricted") == []


def test_a_host_path_service_breaks_baseline_too_so_its_namespace_must_be_privileged() -> None:
    template = _service_pod(
        {"volumes": [{"name": "ds", "mount_path": "/ds", "source": "host_path", "ref": "/srv"}]}
    )
    assert violations(template["spec"], "baseline") == ["volume ds is a hostPath"]


def test_the_auto_inference_pods_deploy_ships_pass_the_restricted_profile(tmp_path: Path) -> None:
    [inference] = [
        o
        for o in render("base", tmp_path)
        if o["kind"] == "Deployment" and o["metadata"]["namespace"] == "akros-inference"
    ]
    assert violations(inference["spec"]["template"]["spec"], "restricted") == []
