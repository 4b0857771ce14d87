"""An environment's start as a real cluster has it (kubesim's kubelet: pulls that fail and are
retried, crash loops, readiness probes, Terminating pods, claims without a provisioner), the
worker as a real process."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from akros_devtools import wait_until
from akros_msgs import (
    CommandFailed,
    CreateEnvironment,
    DeleteEnvironment,
    EnvironmentDeleted,
    EnvironmentExpiring,
    EnvironmentExtended,
    EnvironmentReady,
    EnvironmentStopped,
    ExtendEnvironment,
    FailureCode,
    ResizeEnvironment,
    StartEnvironment,
    StopEnvironment,
)
from tests.k8s_worker.conftest import ALICE, CATALOG, NAMESPACE, WorkerHarness, worker_harness

LIFECYCLE_CATALOG = (
    CATALOG
    + """
  crashy: {image: "registry.local/research/crashy:1"}
  flaky: {image: "registry.local/research/flaky:1"}
  jupyter: {image: "registry.local/research/jupyter:1"}
"""
)
IMAGES = [
    {"pattern": "flaky", "failTransiently": 2},
    # Crashes while initialising, before it answers on its port (as a CUDA error does).
    {
        "pattern": "crashy",
        "crash": {"exitCode": 3, "message": "CUDA error", "afterSeconds": 5},
        "readinessSeconds": 10,
    },
    {"pattern": "jupyter", "readinessSeconds": 3, "stopSeconds": 2},
]


def _cluster_file(directory: Path, *, storage_classes: bool = True) -> Path:
    cluster = yaml.safe_load(
        resources.files("akros_kubesim").joinpath("default_cluster.yaml").read_text()
    )
    cluster["images"] = IMAGES
    if not storage_classes:
        cluster["objects"] = [o for o in cluster["objects"] if o["kind"] != "StorageClass"]
    path = directory / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster))
    return path


@pytest.fixture
def lifecycle(tmp_path: Path, redis_url: str) -> Iterator[WorkerHarness]:
    with worker_harness(
        tmp_path, redis_url, catalog=LIFECYCLE_CATALOG, cluster_file=_cluster_file(tmp_path)
    ) as harness:
        yield harness


@pytest.fixture
def real_time(tmp_path: Path, redis_url: str) -> Iterator[WorkerHarness]:
    """The kubelet's durations as on a cluster (a pod takes 30 s to terminate, say)."""
    with worker_harness(
        tmp_path,
        redis_url,
        catalog=LIFECYCLE_CATALOG,
        cluster_file=_cluster_file(tmp_path),
        time_factor=1.0,
    ) as harness:
        yield harness


def _create(request_id: str, name: str, image: str = "pytorch") -> CreateEnvironment:
    return CreateEnvironment.model_validate(
        {
            "request_id": request_id,
            "actor": ALICE,
            "owner": "alice",
            "name": name,
            "image": image,
            "cpu": "2",
            "memory": "8Gi",
        }
    )


def _request(harness: WorkerHarness, request_id: str) -> dict[str, Any]:
    raw = harness.redis.get(f"akros:rm:req:{request_id}")
    return {} if raw is None else dict(json.loads(raw))


def _core(harness: WorkerHarness) -> client.CoreV1Api:
    configuration = client.Configuration()
    config.load_kube_config(str(harness.kubesim.kubeconfig), client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def test_a_crash_loop_fails_the_start_with_the_exit_code_and_message(
    lifecycle: WorkerHarness,
) -> None:
    lifecycle.start_worker()
    lifecycle.send(_create("req-crash", "crash", image="crashy"))
    failed = lifecycle.wait_for_result("req-crash")
    assert isinstance(failed, CommandFailed), lifecycle.logs()
    assert "exited with code 3: CUDA error" in failed.reason
    assert "crash loop" in failed.reason
    view = lifecycle.view("alice", "crash")
    assert view is not None
    assert view["status"] == "failed"


def test_a_transient_pull_error_is_retried_and_the_environment_becomes_ready(
    lifecycle: WorkerHarness,
) -> None:
    lifecycle.start_worker()
    lifecycle.send(_create("req-flaky", "flaky", image="flaky"))
    ready = lifecycle.wait_for_result("req-flaky")
    assert isinstance(ready, EnvironmentReady), lifecycle.logs()
    request = _request(lifecycle, "req-flaky")
    assert (request["state"], request["stage"]) == ("applied", "ready")


def test_a_pull_that_keeps_failing_shows_its_stage_then_fails_naming_it(
    lifecycle: WorkerHarness,
) -> None:
    lifecycle.env["AKROS_PULL_TIMEOUT_S"] = "4"
    lifecycle.start_worker()
    lifecycle.send(_create("req-broken", "broken", image="broken"))
    wait_until(
        lambda: "retrying" in (_request(lifecycle, "req-broken").get("progress") or ""),
        timeout_s=10,
        what="the request to show the pull being retried",
    )
    request = _request(lifecycle, "req-broken")
    assert (request["state"], request["stage"]) == ("pending", "pulling image")
    assert "retrying the pull of registry.invalid/research/broken:1" in request["progress"]
    view = lifecycle.view("alice", "broken")
    assert view is not None
    assert view["stage"] == "pulling image"

    failed = lifecycle.wait_for_result("req-broken")
    assert isinstance(failed, CommandFailed)
    assert failed.code is FailureCode.IMAGE_PULL
    assert "did not get past pulling image within 4s" in failed.reason


def test_a_pod_is_ready_only_once_its_readiness_probe_passes(real_time: WorkerHarness) -> None:
    real_time.start_worker()
    real_time.send(_create("req-jupyter", "notebook", image="jupyter"))
    wait_until(
        lambda: _request(real_time, "req-jupyter").get("stage") == "starting",
        timeout_s=20,
        what="the request to show the starting stage",
    )
    assert _request(real_time, "req-jupyter")["state"] == "pending"
    ready = real_time.wait_for_result("req-jupyter", timeout_s=30)
    assert isinstance(ready, EnvironmentReady), real_time.logs()
    [pod] = (
        _core(real_time)
        .list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=notebook")
        .items
    )
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Ready"] == "True"


def test_a_terminating_pod_of_the_same_name_never_settles_a_new_request(
    real_time: WorkerHarness,
) -> None:
    real_time.start_worker()
    real_time.send(_create("req-old", "exp"))
    assert isinstance(real_time.wait_for_result("req-old", timeout_s=30), EnvironmentReady)
    real_time.send(DeleteEnvironment(request_id="req-del", actor=ALICE, owner="alice", name="exp"))
    assert isinstance(real_time.wait_for_result("req-del"), EnvironmentDeleted)
    core = _core(real_time)
    # The old pod ignores SIGTERM: it stays Terminating for its 30 s grace period.
    [old] = core.list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=exp").items
    assert old.metadata.deletion_timestamp is not None

    real_time.send(_create("req-new", "exp"))
    ready = real_time.wait_for_result("req-new", timeout_s=30)
    assert isinstance(ready, EnvironmentReady), real_time.logs()
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=exp").items
    new = [p for p in pods if p.metadata.annotations.get("akros.io/request-id") == "req-new"]
    assert len(new) == 1
    assert new[0].metadata.deletion_timestamp is None
    assert {c.type: c.status for c in new[0].status.conditions}["Ready"] == "True"


def test_a_purge_waits_for_the_claim_to_be_gone_and_a_re_create_gets_a_new_one(
    real_time: WorkerHarness,
) -> None:
    real_time.start_worker()
    real_time.send(_create("req-first", "nb", image="jupyter"))
    assert isinstance(real_time.wait_for_result("req-first", timeout_s=30), EnvironmentReady)
    core = _core(real_time)
    [first_claim] = core.list_namespaced_persistent_volume_claim(
        NAMESPACE, label_selector="akros.io/env=nb"
    ).items
    real_time.send(
        DeleteEnvironment(
            request_id="req-purge", actor=ALICE, owner="alice", name="nb", purge_volume=True
        )
    )
    assert isinstance(real_time.wait_for_result("req-purge", timeout_s=30), EnvironmentDeleted)
    claims = core.list_namespaced_persistent_volume_claim(
        NAMESPACE, label_selector="akros.io/env=nb"
    )
    assert claims.items == [], "reported deleted while its claim was still there"

    real_time.send(_create("req-again", "nb", image="jupyter"))
    assert isinstance(real_time.wait_for_result("req-again", timeout_s=30), EnvironmentReady)
    [claim] = core.list_namespaced_persistent_volume_claim(
        NAMESPACE, label_selector="akros.io/env=nb"
    ).items
    assert claim.metadata.uid != first_claim.metadata.uid
    assert claim.metadata.deletion_timestamp is None


def test_a_claim_whose_storage_class_is_missing_fails_the_start_naming_the_class(
    tmp_path: Path, redis_url: str
) -> None:
    with worker_harness(
        tmp_path,
        redis_url,
        cluster_file=_cluster_file(tmp_path, storage_classes=False),
    ) as harness:
        harness.env.update({"AKROS_STORAGE_CLASS": "local-path", "AKROS_START_TIMEOUT_S": "2"})
        harness.start_worker()
        harness.send(_create("req-nosc", "exp"))
        failed = harness.wait_for_result("req-nosc")
        assert isinstance(failed, CommandFailed), harness.logs()
        assert "storage class 'local-path' does not exist" in failed.reason
        assert "attaching volume" in failed.reason


def _stop(request_id: str, name: str) -> StopEnvironment:
    return StopEnvironment(request_id=request_id, actor=ALICE, owner="alice", name=name)


def test_a_deletion_during_a_stop_ends_the_stops_request_and_deletes_the_environment(
    real_time: WorkerHarness,
) -> None:
    """The notebook takes 2 s to exit on SIGTERM: the stop waits for it, and the deletion
    comes meanwhile."""
    real_time.start_worker()
    real_time.send(_create("req-nb", "nb", image="jupyter"))
    assert isinstance(real_time.wait_for_result("req-nb", timeout_s=30), EnvironmentReady)
    real_time.send(_stop("req-stop", "nb"))
    wait_until(
        lambda: any(
            p.metadata.deletion_timestamp
            for p in _core(real_time)
            .list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=nb")
            .items
        ),
        timeout_s=10,
        what="the stop to have the pod terminating",
    )
    real_time.send(DeleteEnvironment(request_id="req-del", actor=ALICE, owner="alice", name="nb"))

    assert isinstance(real_time.wait_for_result("req-del", timeout_s=30), EnvironmentDeleted)
    stop = real_time.wait_for_result("req-stop")
    assert isinstance(stop, CommandFailed), real_time.logs()
    assert stop.code is FailureCode.CONFLICT
    assert "deleted before this was done" in stop.reason
    assert _request(real_time, "req-stop")["state"] == "failed"


def test_a_start_that_cannot_be_scheduled_leaves_the_environment_stopped_saying_why(
    lifecycle: WorkerHarness,
) -> None:
    lifecycle.env["AKROS_START_TIMEOUT_S"] = "3"
    lifecycle.start_worker()
    lifecycle.send(_create("req-exp", "exp"))
    assert isinstance(lifecycle.wait_for_result("req-exp"), EnvironmentReady)
    lifecycle.send(_stop("req-stop", "exp"))
    assert isinstance(lifecycle.wait_for_result("req-stop"), EnvironmentStopped), lifecycle.logs()
    core = _core(lifecycle)
    for node in core.list_node().items:
        core.patch_node(node.metadata.name, {"spec": {"unschedulable": True}})

    lifecycle.send(StartEnvironment(request_id="req-start", actor=ALICE, owner="alice", name="exp"))
    failed = lifecycle.wait_for_result("req-start")
    assert isinstance(failed, CommandFailed), lifecycle.logs()
    assert (failed.code, failed.command_type) == (FailureCode.UNSCHEDULABLE, "start_environment")
    assert "did not get past scheduling within 3s" in failed.reason
    view = lifecycle.view("alice", "exp")
    assert view is not None
    assert view["status"] == "stopped"
    assert view["reason"].startswith("It could not start: ")
    apps = client.AppsV1Api(core.api_client)
    wait_until(
        lambda: apps.read_namespaced_deployment("alice-exp-5", NAMESPACE).spec.replicas == 0,
        timeout_s=5,
        what="the Deployment scaled back to zero",
    )


def test_an_environment_is_told_of_its_expiry_then_stopped_at_it_and_starts_with_a_new_one(
    lifecycle: WorkerHarness,
) -> None:
    """Warned 2 s ahead, stopped at its expiry with its volume kept; started again after it,
    it gets the platform's extension (an hour here) rather than being stopped again at once."""
    lifecycle.env.update({"AKROS_EXPIRY_WARNING_S": "2", "AKROS_EXTEND_BY_S": "3600"})
    lifecycle.start_worker()
    expires_at = datetime.now(UTC) + timedelta(seconds=4)
    create = _create("req-exp", "short").model_copy(update={"expires_at": expires_at})
    lifecycle.send(create)
    assert isinstance(lifecycle.wait_for_result("req-exp"), EnvironmentReady), lifecycle.logs()

    def stopped() -> list[EnvironmentStopped]:
        return [m for m in lifecycle.results() if isinstance(m, EnvironmentStopped)]

    wait_until(lambda: bool(stopped()), timeout_s=15, what="the environment stopped at its expiry")
    [warning] = [m for m in lifecycle.notifications() if isinstance(m, EnvironmentExpiring)]
    assert (warning.owner, warning.name, warning.extend_by_s) == ("alice", "short", 3600)
    assert abs((warning.expires_at - expires_at).total_seconds()) < 1
    assert warning.occurred_at < stopped()[0].occurred_at, "told before it was stopped"
    # On time it announces the expiry; told late (a loaded machine), a later stop, kept.
    assert warning.stops_at is not None
    assert warning.stops_at >= warning.expires_at
    slack = timedelta(seconds=0.05)
    assert stopped()[0].occurred_at >= warning.stops_at - slack, "not before the stop it said"
    [listed] = lifecycle.redis.lrange("akros:rm:notifications:alice", 0, -1)
    assert EnvironmentExpiring.model_validate_json(listed) == warning
    [stop] = stopped()
    assert "reached its expiry" in stop.reason
    assert "akros env start short" in stop.reason
    view = lifecycle.view("alice", "short")
    assert view is not None
    assert view["status"] == "stopped"
    core = _core(lifecycle)
    apps = client.AppsV1Api(core.api_client)
    assert apps.read_namespaced_deployment("alice-short-5", NAMESPACE).spec.replicas == 0
    assert core.read_namespaced_persistent_volume_claim("alice-short-5", NAMESPACE) is not None

    lifecycle.send(
        StartEnvironment(request_id="req-again", actor=ALICE, owner="alice", name="short")
    )
    assert isinstance(lifecycle.wait_for_result("req-again"), EnvironmentReady), lifecycle.logs()
    annotations = apps.read_namespaced_deployment("alice-short-5", NAMESPACE).metadata.annotations
    new_expiry = datetime.fromisoformat(annotations["akros.io/expires-at"])
    assert timedelta(minutes=59) < new_expiry - datetime.now(UTC) <= timedelta(hours=1)
    view = lifecycle.view("alice", "short")
    assert view is not None
    assert datetime.fromisoformat(view["expires_at"]) == new_expiry
    assert len(stopped()) == 1, "not stopped again"


def test_an_extension_moves_the_expiry_on_the_workload_without_restarting_its_pod(
    lifecycle: WorkerHarness,
) -> None:
    lifecycle.start_worker()
    create = _create("req-long", "long").model_copy(
        update={"expires_at": datetime.now(UTC) + timedelta(hours=5)}
    )
    lifecycle.send(create)
    assert isinstance(lifecycle.wait_for_result("req-long"), EnvironmentReady), lifecycle.logs()
    core = _core(lifecycle)
    [pod] = core.list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=long").items

    later = datetime.now(UTC) + timedelta(hours=20)
    lifecycle.send(
        ExtendEnvironment(
            request_id="req-extend", actor=ALICE, owner="alice", name="long", expires_at=later
        )
    )
    extended = lifecycle.wait_for_result("req-extend")
    assert isinstance(extended, EnvironmentExtended), lifecycle.logs()
    deployment = client.AppsV1Api(core.api_client).read_namespaced_deployment(
        "alice-long-5", NAMESPACE
    )
    assert datetime.fromisoformat(deployment.metadata.annotations["akros.io/expires-at"]) == later
    view = lifecycle.view("alice", "long")
    assert view is not None
    assert datetime.fromisoformat(view["expires_at"]) == later
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=long").items
    assert [p.metadata.uid for p in pods] == [pod.metadata.uid], "the pod was not rolled"
    assert [m for m in lifecycle.notifications() if isinstance(m, EnvironmentExpiring)] == []

    lifecycle.send(
        ExtendEnvironment(
            request_id="req-ghost", actor=ALICE, owner="alice", name="ghost", expires_at=later
        )
    )
    missing = lifecycle.wait_for_result("req-ghost")
    assert isinstance(missing, CommandFailed)
    assert missing.code is FailureCode.NOT_FOUND


def test_a_resize_that_cannot_start_leaves_the_environment_stopped_with_its_new_resources(
    lifecycle: WorkerHarness,
) -> None:
    lifecycle.env["AKROS_START_TIMEOUT_S"] = "3"
    lifecycle.start_worker()
    lifecycle.send(_create("req-exp", "exp"))
    assert isinstance(lifecycle.wait_for_result("req-exp"), EnvironmentReady)
    core = _core(lifecycle)
    for node in core.list_node().items:
        core.patch_node(node.metadata.name, {"spec": {"unschedulable": True}})

    resize = ResizeEnvironment(
        request_id="req-resize", actor=ALICE, owner="alice", name="exp", cpu="3", memory="6Gi"
    )
    lifecycle.send(resize)
    failed = lifecycle.wait_for_result("req-resize")
    assert isinstance(failed, CommandFailed), lifecycle.logs()
    assert (failed.code, failed.command_type) == (FailureCode.UNSCHEDULABLE, "resize_environment")
    view = lifecycle.view("alice", "exp")
    assert view is not None
    assert view["status"] == "stopped"
    assert view["reason"].startswith("It could not start: ")
    deployment = client.AppsV1Api(core.api_client).read_namespaced_deployment(
        "alice-exp-5", NAMESPACE
    )
    assert deployment.spec.replicas == 0
    assert deployment.spec.template.spec.containers[0].resources.requests["cpu"] == "3"
