"""Reducing pods, pod metrics and DCGM exposition to environment usage."""

from datetime import UTC, datetime
from typing import Any

import pytest

from akros_monitor.usage import (
    EnvironmentPod,
    GpuExporter,
    environment_pod,
    environment_uses,
    gpu_exporters,
    gpu_readings,
    gpu_utilisation,
    is_exempt,
    pod_usage,
    usage_samples,
)
from akros_policy import DEFAULT_CATALOG, Catalog, ResourceProfile

GI = 1024**3
CATALOG = Catalog(
    images=DEFAULT_CATALOG.images,
    profiles={
        "cpu-small": ResourceProfile(cpu="2", memory="8Gi"),
        "overnight": ResourceProfile(cpu="16", memory="64Gi", underuse_exempt=True),
    },
)
EXEMPT_PROFILES = CATALOG.underuse_exempt_profiles()


def _pod(name: str, *, owner: str = "ada", env: str = "lab", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "akros-ada",
            "labels": {
                "akros.io/kind": "environment",
                "akros.io/owner": owner,
                "akros.io/env": env,
                **labels,
            },
        },
        "spec": {
            "nodeName": "gpu-1",
            "containers": [
                {
                    "name": "work",
                    "resources": {"requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}},
                }
            ],
        },
        "status": {"phase": "Running", "startTime": "2026-11-02T09:00:00Z"},
    }


def _metrics(name: str, cpu: str, memory: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "akros-ada"},
        "containers": [{"name": "work", "usage": {"cpu": cpu, "memory": memory}}],
    }


DCGM = """\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0",Hostname="gpu-1",namespace="akros-ada",pod="lab-0"} 40
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-1",Hostname="gpu-1",namespace="akros-ada",pod="lab-0"} 20
DCGM_FI_DEV_GPU_UTIL{gpu="2",UUID="GPU-2",Hostname="gpu-1"} 0
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",namespace="akros-ada",pod="lab-0"} 1000
"""


def test_an_environment_pod_is_reduced_to_owner_name_requests_and_start() -> None:
    pod = environment_pod(_pod("lab-0"))
    assert pod is not None
    assert (pod.owner, pod.name, pod.requested) == ("ada", "lab", (2000, 8 * GI, 1))
    assert pod.started_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert not pod.exempt_by_label
    assert pod.profile is None
    assert not is_exempt(pod, EXEMPT_PROFILES)


def test_the_exemption_label_exempts_the_pod() -> None:
    pod = environment_pod(_pod("lab-0", **{"akros.io/underuse-exempt": "true"}))
    assert pod is not None
    assert pod.exempt_by_label
    assert is_exempt(pod, frozenset())


def _reduced(pod: dict[str, Any]) -> EnvironmentPod:
    reduced = environment_pod(pod)
    assert reduced is not None
    return reduced


def test_a_pod_of_a_profile_the_catalog_marks_exempt_is_exempt() -> None:
    pod = _reduced(_pod("lab-0", **{"akros.io/profile": "overnight"}))
    assert pod.profile == "overnight"
    assert is_exempt(pod, EXEMPT_PROFILES)


def test_a_pod_of_a_profile_not_marked_exempt_or_gone_from_the_catalog_is_not() -> None:
    assert not is_exempt(
        _reduced(_pod("lab-0", **{"akros.io/profile": "cpu-small"})), EXEMPT_PROFILES
    )
    overnight = _reduced(_pod("lab-0", **{"akros.io/profile": "overnight"}))
    changed = Catalog(images=CATALOG.images, profiles={"cpu-small": CATALOG.profiles["cpu-small"]})
    assert not is_exempt(overnight, changed.underuse_exempt_profiles()), "removed since"


def test_one_exempt_pod_exempts_its_environment_and_not_the_others() -> None:
    pods = {
        "akros-ada/lab-0": _reduced(_pod("lab-0", **{"akros.io/profile": "overnight"})),
        "akros-ada/lab-1": _reduced(_pod("lab-1")),
        "akros-ada/misc-0": _reduced(
            _pod("misc-0", env="misc", **{"akros.io/profile": "cpu-small"})
        ),
    }
    used = pod_usage([_metrics(name, "10m", "1Gi") for name in ("lab-0", "lab-1", "misc-0")])
    uses = environment_uses(pods, used, {}, EXEMPT_PROFILES)
    assert uses[("ada", "lab")].exempt
    assert not uses[("ada", "misc")].exempt
    assert not environment_uses(pods, used, {}, frozenset())[("ada", "lab")].exempt


def test_pods_that_are_no_running_environment_are_left_out() -> None:
    service = _pod("svc-0")
    service["metadata"]["labels"]["akros.io/kind"] = "service"
    pending = _pod("lab-1")
    pending["status"] = {"phase": "Pending"}
    assert environment_pod(service) is None
    assert environment_pod(pending) is None
    assert environment_pod(_pod("odd-0", owner="Not A User")) is None


def test_pod_metrics_add_up_the_containers() -> None:
    item = _metrics("lab-0", "250000000n", "1Gi")
    item["containers"].append({"name": "sidecar", "usage": {"cpu": "50m", "memory": "1Gi"}})
    assert pod_usage([item]) == {"akros-ada/lab-0": (300, 2 * GI)}


def test_gpu_utilisation_is_the_mean_over_the_pods_gpus_as_a_ratio() -> None:
    assert gpu_utilisation(DCGM) == {"akros-ada/lab-0": pytest.approx(0.3)}


def test_environment_uses_join_pods_with_their_metrics() -> None:
    pod = environment_pod(_pod("lab-0"))
    assert pod is not None
    typed = {"akros-ada/lab-0": pod}
    used = pod_usage([_metrics("lab-0", "1", "2Gi")])
    uses = environment_uses(typed, used, gpu_utilisation(DCGM), EXEMPT_PROFILES)
    use = uses[("ada", "lab")]
    assert (use.cpu_used_millis, use.memory_used_bytes) == (1000, 2 * GI)
    assert use.cpu_fraction == 0.5
    assert use.gpu_utilisation == pytest.approx(0.3)
    [sample] = usage_samples(typed, used, {})
    assert (sample.owner, sample.environment, sample.workload) == ("ada", "lab", "lab-0")
    assert sample.gpu_utilisation is None


def test_an_unmeasured_pod_gives_no_sample() -> None:
    pod = environment_pod(_pod("lab-0"))
    assert pod is not None
    assert environment_uses({"akros-ada/lab-0": pod}, {}, {}, EXEMPT_PROFILES) == {}


def _exporter_pod(name: str, node: str | None, phase: str = "Running", **metadata: Any) -> Any:
    return {
        "metadata": {"name": name, "namespace": "gpu-operator", **metadata},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase},
    }


def test_the_exporters_to_scrape_are_the_running_ones_one_per_node() -> None:
    pods = [
        _exporter_pod("dcgm-a", "gpu-1"),
        _exporter_pod("dcgm-b", "gpu-2"),
        _exporter_pod("dcgm-b2", "gpu-2"),
        _exporter_pod("dcgm-pending", None, phase="Pending"),
        _exporter_pod("dcgm-old", "gpu-3", deletionTimestamp="2026-11-02T09:00:00Z"),
    ]
    assert gpu_exporters(pods) == [
        GpuExporter("gpu-1", "gpu-operator", "dcgm-a"),
        GpuExporter("gpu-2", "gpu-operator", "dcgm-b"),
    ]


def test_readings_join_every_answering_exporter_and_name_the_silent_nodes() -> None:
    other_node = DCGM.replace("gpu-1", "gpu-2").replace('pod="lab-0"', 'pod="big-0"')
    answers = {
        GpuExporter("gpu-1", "gpu-operator", "dcgm-a"): DCGM,
        GpuExporter("gpu-2", "gpu-operator", "dcgm-b"): other_node,
        GpuExporter("gpu-3", "gpu-operator", "dcgm-c"): None,
    }
    readings = gpu_readings(answers)
    assert readings.per_pod == {
        "akros-ada/lab-0": pytest.approx(0.3),
        "akros-ada/big-0": pytest.approx(0.3),
    }
    assert readings.silent_nodes == {"gpu-3"}
    assert readings.answering_nodes == {"gpu-1", "gpu-2"}


def test_an_answer_that_is_no_exposition_leaves_its_node_unknown() -> None:
    readings = gpu_readings({GpuExporter("gpu-1", "gpu-operator", "dcgm-a"): "{not prometheus"})
    assert readings.per_pod == {}
    assert readings.silent_nodes == {"gpu-1"}


def test_one_pod_of_unknown_gpu_use_makes_its_whole_environment_unknown() -> None:
    """Two pods of one environment on two GPU nodes, one node's exporter silent: the known
    pod's idle GPU must not speak for the unknown one, or an unknown GPU leads to a nudge."""
    pods = {}
    for name in ("lab-0", "lab-1"):
        pod = environment_pod(_pod(name))
        assert pod is not None
        pods[f"akros-ada/{name}"] = pod
    used = pod_usage([_metrics("lab-0", "10m", "1Gi"), _metrics("lab-1", "10m", "1Gi")])
    for only_known in ({"akros-ada/lab-0": 0.0}, {"akros-ada/lab-1": 0.0}):
        use = environment_uses(pods, used, only_known, EXEMPT_PROFILES)[("ada", "lab")]
        assert use.gpus == 2
        assert use.gpu_utilisation is None


def test_gpu_use_is_weighted_by_the_gpus_of_the_pods_that_hold_them() -> None:
    cpu_only = _pod("lab-0")
    cpu_only["spec"]["containers"][0]["resources"]["requests"].pop("nvidia.com/gpu")
    pods = {}
    for name, raw in (("lab-0", cpu_only), ("lab-1", _pod("lab-1")), ("lab-2", _pod("lab-2"))):
        pod = environment_pod(raw)
        assert pod is not None
        pods[f"akros-ada/{name}"] = pod
    used = pod_usage([_metrics(n, "10m", "1Gi") for n in ("lab-0", "lab-1", "lab-2")])
    gpu = {"akros-ada/lab-1": 0.2, "akros-ada/lab-2": 0.6}
    use = environment_uses(pods, used, gpu, EXEMPT_PROFILES)[("ada", "lab")]
    assert use.gpu_utilisation == pytest.approx(0.4)
