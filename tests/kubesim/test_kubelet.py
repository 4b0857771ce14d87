"""The simulated kubelet seen through the official client and kubectl: image pulls that take
time and are cached per node, pull and crash back-offs, containers that exit, readiness probes,
graceful termination, and namespaces that wait for their contents.

Durations in the cluster file are real-cluster seconds; the server runs at a time factor of
0.01, so 100 s of pulling take one second here.
"""

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from akros_kubesim.testing import RunningKubesim, run_kubesim
from tests.followed import followed
from tests.kubesim.conftest import KUBECTL_NEWEST, KUBECTL_OLDEST, kubectl_binary
from tests.kubesim.test_client_api import eventually

CLUSTER = {
    "nodes": [
        {"name": "node-a", "cpu": 8, "memory": "32Gi"},
        {"name": "node-b", "cpu": 8, "memory": "32Gi"},
    ],
    "images": [
        {"pattern": "cuda", "sizeGB": 10, "pullSecondsPerGB": 10},  # 100 s: 1 s here
        {"pattern": "flaky", "failTransiently": 2},
        {"pattern": "slowcrash", "crash": {"exitCode": 4, "message": "OOM", "afterSeconds": 300}},
        {"pattern": "crashy", "crash": {"exitCode": 3, "message": "CUDA error", "afterSeconds": 2}},
        {"pattern": "batch-ok", "exit": {"code": 0, "afterSeconds": 1}},
        {"pattern": "batch-bad", "exit": {"code": 2, "afterSeconds": 1}},
        {"pattern": "jupyter", "readinessSeconds": 200, "stopSeconds": 3},
    ],
    "objects": [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    ],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    path = Path(tmp_path_factory.mktemp("kubelet")) / "cluster.yaml"
    path.write_text(yaml.safe_dump(CLUSTER))
    with run_kubesim(path, pod_start_seconds=0.05, time_factor=0.01) as running:
        yield running


@pytest.fixture(scope="module")
def core(cluster: RunningKubesim) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture
def namespace(core: client.CoreV1Api) -> str:
    name = f"k-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def _pod(name: str, image: str, node: str = "node-a", **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    container.update(spec.pop("container", {}))
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [container],
            "nodeSelector": {"kubernetes.io/hostname": node},
            **spec,
        },
    }


def _events(core: client.CoreV1Api, namespace: str, pod: str) -> list[tuple[str, str]]:
    items = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}")
    ordered = sorted(items.items, key=lambda e: (e.metadata.creation_timestamp, e.metadata.name))
    return [(e.reason, e.message) for e in ordered]


def _container(core: client.CoreV1Api, namespace: str, pod: str) -> Any:
    statuses = core.read_namespaced_pod(pod, namespace).status.container_statuses
    return statuses[0] if statuses else None


def _condition(core: client.CoreV1Api, namespace: str, pod: str, kind: str) -> str | None:
    conditions = core.read_namespaced_pod(pod, namespace).status.conditions or []
    return next((c.status for c in conditions if c.type == kind), None)


def _gone(core: client.CoreV1Api, namespace: str, pod: str) -> bool:
    try:
        core.read_namespaced_pod(pod, namespace)
    except ApiException as error:
        return bool(error.status == 404)
    return False


def test_a_first_pull_takes_the_images_time_and_the_node_keeps_it(
    core: client.CoreV1Api, namespace: str
) -> None:
    started = time.monotonic()
    core.create_namespaced_pod(namespace, _pod("first", "registry.example/cuda:12"))
    eventually(lambda: core.read_namespaced_pod("first", namespace).status.phase == "Running")
    assert time.monotonic() - started >= 0.9, "10 GB at 10 s/GB is 100 s, 1 s at factor 0.01"
    reasons = [reason for reason, _ in _events(core, namespace, "first")]
    assert reasons[reasons.index("Pulling") :] == ["Pulling", "Pulled", "Created", "Started"]
    pulled = dict(_events(core, namespace, "first"))["Pulled"]
    assert pulled.startswith('Successfully pulled image "registry.example/cuda:12" in 1m')
    assert "Image size: 10000000000 bytes." in pulled

    core.create_namespaced_pod(namespace, _pod("second", "registry.example/cuda:12"))
    eventually(lambda: core.read_namespaced_pod("second", namespace).status.phase == "Running")
    assert (
        "Pulled",
        'Container image "registry.example/cuda:12" already present on machine',
    ) in _events(core, namespace, "second")

    elsewhere = _pod("elsewhere", "registry.example/cuda:12", node="node-b")
    core.create_namespaced_pod(namespace, elsewhere)
    eventually(lambda: _container(core, namespace, "elsewhere"))
    assert _container(core, namespace, "elsewhere").state.waiting.reason == "ContainerCreating"
    assert ("Pulling", 'Pulling image "registry.example/cuda:12"') in _events(
        core, namespace, "elsewhere"
    ), "the cache is per node"


def test_a_transient_pull_error_backs_off_and_then_pulls(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("flaky", "registry.example/flaky:1"))
    eventually(lambda: core.read_namespaced_pod("flaky", namespace).status.phase == "Running")
    messages = [message for _, message in _events(core, namespace, "flaky")]
    assert messages.count("Error: ErrImagePull") == 2
    assert messages.count("Error: ImagePullBackOff") == 2
    assert 'Back-off pulling image "registry.example/flaky:1"' in messages
    assert _container(core, namespace, "flaky").restart_count == 0


def test_an_image_that_cannot_be_pulled_stays_in_image_pull_back_off(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("broken", "registry.invalid/missing:1"))

    def reason() -> str | None:
        container = _container(core, namespace, "broken")
        waiting = container.state.waiting if container else None
        return waiting.reason if waiting and waiting.reason != "ContainerCreating" else None

    assert eventually(reason) in ("ErrImagePull", "ImagePullBackOff")
    assert eventually(lambda: reason() == "ImagePullBackOff")
    assert core.read_namespaced_pod("broken", namespace).status.phase == "Pending"
    failures = [m for r, m in _events(core, namespace, "broken") if r == "Failed"]
    assert any(m.startswith('Failed to pull image "registry.invalid/missing:1"') for m in failures)
    assert "Error: ErrImagePull" in failures


def test_a_crashing_container_loops_with_its_exit_code_and_message(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("crashy", "registry.example/crashy:1"))

    def looping() -> Any:
        container = _container(core, namespace, "crashy")
        waiting = container.state.waiting if container else None
        return container if waiting and waiting.reason == "CrashLoopBackOff" else None

    container = eventually(looping)
    assert container.restart_count >= 1
    assert container.last_state.terminated.exit_code == 3
    assert container.last_state.terminated.message == "CUDA error"
    assert core.read_namespaced_pod("crashy", namespace).status.phase == "Running"
    assert _condition(core, namespace, "crashy", "Ready") == "False"
    assert any(
        reason == "BackOff" and message.startswith("Back-off restarting failed container main")
        for reason, message in _events(core, namespace, "crashy")
    )
    previous = core.read_namespaced_pod_log("crashy", namespace, previous=True)
    assert "container main exited with code 3: CUDA error" in previous


@pytest.mark.parametrize(("image", "phase"), [("batch-ok", "Succeeded"), ("batch-bad", "Failed")])
def test_a_container_that_exits_ends_the_pod_by_its_restart_policy(
    core: client.CoreV1Api, namespace: str, image: str, phase: str
) -> None:
    core.create_namespaced_pod(
        namespace, _pod("job", f"registry.example/{image}:1", restartPolicy="Never")
    )
    assert (
        eventually(
            lambda: (
                (p := core.read_namespaced_pod("job", namespace).status.phase)
                in ("Succeeded", "Failed")
                and p
            )
        )
        == phase
    )
    terminated = _container(core, namespace, "job").state.terminated
    assert terminated.exit_code == (0 if phase == "Succeeded" else 2)


def test_readiness_waits_for_the_probe_and_a_pod_without_one_is_ready_when_started(
    core: client.CoreV1Api, namespace: str
) -> None:
    probe = {"httpGet": {"path": "/api", "port": 8888}, "periodSeconds": 10}
    core.create_namespaced_pod(
        namespace, _pod("lab", "registry.example/jupyter:1", container={"readinessProbe": probe})
    )
    core.create_namespaced_pod(namespace, _pod("plain", "registry.example/jupyter:1"))
    eventually(lambda: core.read_namespaced_pod("lab", namespace).status.phase == "Running")
    assert _condition(core, namespace, "lab", "Ready") == "False"
    assert _condition(core, namespace, "lab", "ContainersReady") == "False"
    assert not _container(core, namespace, "lab").ready
    eventually(lambda: _condition(core, namespace, "lab", "Ready") == "True", timeout=15)
    assert _container(core, namespace, "lab").ready
    eventually(lambda: _condition(core, namespace, "plain", "Ready") == "True")


def test_a_deleted_pod_is_terminating_for_its_grace_period_and_ends_failed(
    core: client.CoreV1Api, namespace: str
) -> None:
    """Grace 300 s (3 s here) for a container that ignores SIGTERM: it is Terminating all that
    time, is killed (137), reported Failed, and only then removed."""
    core.create_namespaced_pod(
        namespace, _pod("bye", "busybox:1.36", terminationGracePeriodSeconds=300)
    )
    eventually(lambda: core.read_namespaced_pod("bye", namespace).status.phase == "Running")
    phases: list[str] = []
    stream = watch.Watch()

    def follow() -> None:
        for event in stream.stream(
            core.list_namespaced_pod,
            namespace,
            field_selector="metadata.name=bye",
            timeout_seconds=20,
        ):
            phases.append(f"{event['type']} {event['object'].status.phase}")
            if event["type"] == "DELETED":
                stream.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    deleted_at = time.monotonic()
    core.delete_namespaced_pod("bye", namespace)
    terminating = core.read_namespaced_pod("bye", namespace)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 300
    assert ("Killing", "Stopping container main") in _events(core, namespace, "bye")
    eventually(lambda: _gone(core, namespace, "bye"), timeout=15)
    assert time.monotonic() - deleted_at >= 2.5
    follower.join(timeout=20)
    assert phases[-2:] == ["MODIFIED Failed", "DELETED Failed"]


def test_a_container_that_handles_sigterm_ends_succeeded_before_the_grace_period(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace, _pod("polite", "registry.example/jupyter:1", terminationGracePeriodSeconds=3000)
    )
    eventually(lambda: core.read_namespaced_pod("polite", namespace).status.phase == "Running")
    deleted_at = time.monotonic()
    core.delete_namespaced_pod("polite", namespace)
    eventually(lambda: _gone(core, namespace, "polite"), timeout=10)
    assert time.monotonic() - deleted_at < 10, "3 s of shutdown (0.03 s here), not 3000 s"


def test_a_delete_with_grace_period_zero_is_immediate(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("now", "busybox:1.36"))
    eventually(lambda: core.read_namespaced_pod("now", namespace).status.phase == "Running")
    core.delete_namespaced_pod("now", namespace, grace_period_seconds=0)
    assert _gone(core, namespace, "now")


def _follow_log(
    cluster: RunningKubesim, release: str, namespace: str, pod: str, *, while_following: Any
) -> tuple[str, str]:
    """`kubectl logs -f --tail=1` of ``pod``: its first line, then ``while_following(process)``,
    then the rest of what it printed once it ended by itself."""
    kubectl = [str(kubectl_binary(release)), "--kubeconfig", str(cluster.kubeconfig)]
    with followed([*kubectl, "logs", "-f", "--tail=1", "-n", namespace, pod]) as following:
        assert following.stdout is not None
        first = following.stdout.readline()
        while_following(following)
        rest, errors = following.communicate(timeout=30)
    assert following.returncode == 0, errors
    return first, rest


@pytest.mark.parametrize("release", [KUBECTL_OLDEST, KUBECTL_NEWEST])
def test_kubectl_logs_follow_writes_new_lines_until_the_container_ends(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str, release: str
) -> None:
    # The container crashes 300 s (3 s here) after it starts: the follow must stay open until
    # then, print the crash as the container writes it, and end by itself.
    core.create_namespaced_pod(namespace, _pod("follow", "registry.example/slowcrash:1"))
    eventually(lambda: core.read_namespaced_pod("follow", namespace).status.phase == "Running")

    def still_open(following: subprocess.Popen[str]) -> None:
        time.sleep(0.5)
        assert following.poll() is None, "the follow ended before the container did"

    first, rest = _follow_log(cluster, release, namespace, "follow", while_following=still_open)
    assert "container main (registry.example/slowcrash:1) started" in first
    assert len(rest.splitlines()) == 1, "one line more: the crash"
    assert rest.rstrip().endswith("kubesim: container main exited with code 4: OOM")


def test_kubectl_logs_follow_of_a_deleted_pod_ends_with_its_last_words(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("leaving", "registry.example/jupyter:1"))
    eventually(lambda: core.read_namespaced_pod("leaving", namespace).status.phase == "Running")
    first, rest = _follow_log(
        cluster,
        KUBECTL_NEWEST,
        namespace,
        "leaving",
        while_following=lambda _: core.delete_namespaced_pod("leaving", namespace),
    )
    assert "started" in first
    assert rest.rstrip().endswith("kubesim: container main exited on SIGTERM")


def test_kubectl_logs_tells_what_happened(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("talk", "registry.example/flaky:2"))
    eventually(lambda: core.read_namespaced_pod("talk", namespace).status.phase == "Running")
    for release in (KUBECTL_OLDEST, KUBECTL_NEWEST):
        log = subprocess.run(
            [
                str(kubectl_binary(release)),
                "--kubeconfig",
                str(cluster.kubeconfig),
                "logs",
                "-n",
                namespace,
                "talk",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert "pulling image registry.example/flaky:2" in log
        assert "pull of registry.example/flaky:2 failed" in log
        assert "container main (registry.example/flaky:2) started" in log


@pytest.mark.parametrize("release", [KUBECTL_OLDEST, KUBECTL_NEWEST])
def test_kubectl_delete_namespace_returns_once_its_pods_and_claims_are_gone(
    cluster: RunningKubesim, core: client.CoreV1Api, release: str
) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_persistent_volume_claim(
        name,
        {
            "metadata": {"name": "work"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    volume = {"name": "work", "persistentVolumeClaim": {"claimName": "work"}}
    core.create_namespaced_pod(
        name,
        _pod(
            "user",
            "busybox:1.36",
            volumes=[volume],
            terminationGracePeriodSeconds=200,
            container={"volumeMounts": [{"name": "work", "mountPath": "/work"}]},
        ),
    )
    eventually(lambda: core.read_namespaced_pod("user", name).status.phase == "Running")
    kubectl = [str(kubectl_binary(release)), "--kubeconfig", str(cluster.kubeconfig)]
    deleting = subprocess.Popen(
        [*kubectl, "delete", "namespace", name, "--timeout=60s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    namespace = eventually(
        lambda: (n := core.read_namespace(name)).status.phase == "Terminating" and n
    )
    assert "kubernetes" in namespace.spec.finalizers
    remaining = eventually(
        lambda: next(
            (
                c
                for c in core.read_namespace(name).status.conditions or []
                if c.type == "NamespaceContentRemaining"
            ),
            None,
        )
    )
    assert remaining.reason == "SomeResourcesRemain"
    assert "pods. has 1 resource instances" in remaining.message
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_config_map(name, {"metadata": {"name": "late"}})
    assert refused.value.status == 403
    out, err = deleting.communicate(timeout=60)
    assert deleting.returncode == 0, err
    assert f'namespace "{name}" deleted' in out
    with pytest.raises(ApiException) as raised:
        core.read_namespace(name)
    assert raised.value.status == 404
