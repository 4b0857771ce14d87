"""The worker as a real process against a real Redis and kubesim."""

import json
import signal
import time

from kubernetes import client

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_msgs import (
    CommandFailed,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    EnvironmentDeleted,
    EnvironmentReady,
    FailureCode,
    Groups,
    VolumeDeleted,
)
from akros_msgs.streams import ENVIRONMENT_COMMANDS, RESULTS, SCALE_COMMANDS, SERVICE_COMMANDS
from akros_readmodel import StartRecord
from tests.dead_letters import unknown_type_reason, wait_for_dead_letter, write_unknown_type
from tests.k8s_worker.conftest import ALICE, NAMESPACE, WorkerHarness


def _create(
    request_id: str, name: str, owner: str = "alice", **fields: object
) -> CreateEnvironment:
    values: dict[str, object] = {
        "request_id": request_id,
        "actor": ALICE.model_copy(update={"user_id": owner}),
        "owner": owner,
        "name": name,
        "image": "pytorch",
        "cpu": "2",
        "memory": "8Gi",
    }
    values.update(fields)
    return CreateEnvironment.model_validate(values)


def _names(items: list[object]) -> list[str]:
    return sorted(item.metadata.name for item in items)  # type: ignore[attr-defined]


def test_a_created_environment_becomes_ready_with_all_its_objects(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    harness.send(_create("req-1", "exp", gpus=1, cpu="8", memory="64Gi"))

    ready = harness.wait_for_result("req-1")
    assert isinstance(ready, EnvironmentReady), harness.logs()
    assert ready.url == "https://exp-alice-3.research.akros.local/"
    assert ready.node.startswith("gpu-server-")
    view = harness.view("alice", "exp")
    assert view is not None
    assert (view["status"], view["url"], view["node"]) == ("ready", ready.url, ready.node)
    assert harness.request_state("req-1") == "applied"

    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    networking = client.NetworkingV1Api(kube)
    assert _names(apps.list_namespaced_deployment(NAMESPACE).items) == ["alice-exp-5"]
    assert _names(core.list_namespaced_service(NAMESPACE).items) == ["alice-exp-5"]
    assert _names(core.list_namespaced_persistent_volume_claim(NAMESPACE).items) == ["alice-exp-5"]
    assert _names(networking.list_namespaced_ingress(NAMESPACE).items) == ["alice-exp-5"]
    assert _names(networking.list_namespaced_network_policy(NAMESPACE).items) == ["alice-exp-5"]


def test_the_same_command_twice_gives_one_environment(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    command = _create("req-dup", "exp")
    harness.send(command)
    assert isinstance(harness.wait_for_result("req-dup"), EnvironmentReady)
    harness.send(command)
    harness.send(_create("req-other", "other"))
    assert isinstance(harness.wait_for_result("req-other"), EnvironmentReady)

    apps = client.AppsV1Api(kube)
    assert _names(apps.list_namespaced_deployment(NAMESPACE).items) == [
        "alice-exp-5",
        "alice-other-5",
    ]
    pods = client.CoreV1Api(kube).list_namespaced_pod(NAMESPACE, label_selector="akros.io/env=exp")
    assert len(pods.items) == 1
    assert harness.view("alice", "exp")["status"] == "ready"  # type: ignore[index]


def test_a_different_request_for_a_taken_name_is_refused_as_a_conflict(
    harness: WorkerHarness,
) -> None:
    harness.start_worker()
    harness.send(_create("req-a", "exp"))
    assert isinstance(harness.wait_for_result("req-a"), EnvironmentReady)
    harness.send(_create("req-b", "exp"))
    failed = harness.wait_for_result("req-b")
    assert isinstance(failed, CommandFailed)
    assert failed.code is FailureCode.CONFLICT
    assert harness.view("alice", "exp")["status"] == "ready"  # type: ignore[index]


def test_delete_keeps_the_volume_and_purge_removes_it(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    core = client.CoreV1Api(kube)
    for name in ("keep", "purge"):
        harness.send(_create(f"create-{name}", name))
        assert isinstance(harness.wait_for_result(f"create-{name}"), EnvironmentReady)

    harness.send(DeleteEnvironment(request_id="del-keep", actor=ALICE, owner="alice", name="keep"))
    harness.send(
        DeleteEnvironment(
            request_id="del-purge", actor=ALICE, owner="alice", name="purge", purge_volume=True
        )
    )
    kept = harness.wait_for_result("del-keep")
    purged = harness.wait_for_result("del-purge")
    assert isinstance(kept, EnvironmentDeleted)
    assert kept.volume_kept
    assert isinstance(purged, EnvironmentDeleted)
    assert not purged.volume_kept
    assert harness.view("alice", "keep") is None
    # As on a real cluster, a purged claim goes once no pod uses it any more (pvc-protection).
    wait_until(
        lambda: (
            _names(core.list_namespaced_persistent_volume_claim(NAMESPACE).items)
            == ["alice-keep-5"]
        ),
        timeout_s=10,
        what="the purged claim to go once its pod has",
    )
    assert harness.redis.get("akros:rm:vol:alice:keep") is not None
    wait_until(
        lambda: not core.list_namespaced_pod(NAMESPACE).items,
        timeout_s=10,
        what="the deleted environments' pods to be garbage-collected",
    )

    harness.send(_create("recreate", "keep"))
    assert isinstance(harness.wait_for_result("recreate"), EnvironmentReady)
    assert harness.redis.get("akros:rm:vol:alice:keep") is None  # reattached, in use again
    harness.send(DeleteEnvironment(request_id="del-again", actor=ALICE, owner="alice", name="keep"))
    harness.wait_for_result("del-again")
    harness.send(DeleteVolume(request_id="del-vol", actor=ALICE, owner="alice", name="keep"))
    assert isinstance(harness.wait_for_result("del-vol"), VolumeDeleted)
    wait_until(
        lambda: core.list_namespaced_persistent_volume_claim(NAMESPACE).items == [],
        timeout_s=10,
        what="the deleted volume's claim to go once its pod has",
    )


def test_sixty_four_gpus_fail_at_once_saying_why(harness: WorkerHarness) -> None:
    harness.start_worker()
    harness.send(_create("req-64", "huge", owner="whale", gpus=64))
    failed = harness.wait_for_result("req-64")
    assert isinstance(failed, CommandFailed)
    assert failed.code is FailureCode.UNSCHEDULABLE
    assert "64 GPUs" in failed.reason
    assert "8 GPUs" in failed.reason


def test_an_image_that_cannot_be_pulled_fails_and_frees_the_workload(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.env["AKROS_PULL_TIMEOUT_S"] = "3"
    harness.start_worker()
    harness.send(_create("req-broken", "broken", image="broken"))
    failed = harness.wait_for_result("req-broken")
    assert isinstance(failed, CommandFailed), harness.logs()
    assert failed.code is FailureCode.IMAGE_PULL
    assert "registry.invalid/research/broken:1" in failed.reason
    assert "did not get past pulling image within 3s" in failed.reason
    view = harness.view("alice", "broken")
    assert view is not None
    assert view["status"] == "failed"
    assert harness.request_state("req-broken") == "failed"
    assert client.AppsV1Api(kube).list_namespaced_deployment(NAMESPACE).items == []


def test_the_worker_rechecks_the_quota_against_the_cluster(harness: WorkerHarness) -> None:
    harness.start_worker()
    # One after the other: sent together, the worker applies both at once and either may
    # take the last of the quota.
    harness.send(_create("tiny-1", "first", owner="tiny"))
    first = harness.wait_for_result("tiny-1")
    harness.send(_create("tiny-2", "second", owner="tiny"))
    outcomes = [first, harness.wait_for_result("tiny-2")]
    assert [type(o).__name__ for o in outcomes] == ["EnvironmentReady", "CommandFailed"]
    refused = outcomes[1]
    assert isinstance(refused, CommandFailed)
    assert refused.code is FailureCode.QUOTA_EXCEEDED
    assert "1 of your 1 environments" in refused.reason


def test_two_creates_sent_together_never_exceed_the_quota_together(
    harness: WorkerHarness,
) -> None:
    harness.start_worker()
    harness.send(_create("tiny-a", "first", owner="tiny"))
    harness.send(_create("tiny-b", "second", owner="tiny"))
    outcomes = sorted(
        type(harness.wait_for_result(request)).__name__ for request in ("tiny-a", "tiny-b")
    )
    assert outcomes == ["CommandFailed", "EnvironmentReady"], harness.logs()


def test_a_worker_killed_mid_create_leaves_exactly_one_environment(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    doomed = harness.start_worker("doomed")
    harness.send(_create("req-warmup", "warmup"))
    assert isinstance(harness.wait_for_result("req-warmup"), EnvironmentReady)

    harness.kubesim.set_faults(stall=True)
    harness.send(_create("req-kill", "exp"))
    wait_until(
        lambda: (
            '"request_id": "req-kill"' in doomed.log_text()
            or harness.redis.hexists("akros:worker:starting", "alice/exp")
        ),
        timeout_s=10,
        what="the worker to be inside the create",
    )
    doomed.send(signal.SIGKILL)
    doomed.wait(timeout_s=5)
    harness.kubesim.clear_faults()

    harness.start_worker("survivor")
    ready = harness.wait_for_result("req-kill", timeout_s=30)
    assert isinstance(ready, EnvironmentReady), harness.logs()
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    selector = "akros.io/env=exp"
    assert len(apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items) == 1
    assert len(core.list_namespaced_pod(NAMESPACE, label_selector=selector).items) == 1
    claims = core.list_namespaced_persistent_volume_claim(NAMESPACE, label_selector=selector)
    assert len(claims.items) == 1


def test_a_start_that_finds_no_room_fails_after_the_timeout_saying_why(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.env["AKROS_START_TIMEOUT_S"] = "3"
    harness.start_worker()
    for index in (1, 2):
        harness.send(_create(f"fill-{index}", f"fill-{index}", owner="whale", gpus=8))
        assert isinstance(harness.wait_for_result(f"fill-{index}"), EnvironmentReady)
    harness.send(_create("no-room", "waiting", owner="whale", gpus=8))

    failed = harness.wait_for_result("no-room", timeout_s=15)
    assert isinstance(failed, CommandFailed), harness.logs()
    assert failed.code is FailureCode.UNSCHEDULABLE
    assert "did not get past scheduling within 3s" in failed.reason
    assert "nvidia.com/gpu" in failed.reason
    selector = "akros.io/env=waiting"
    assert (
        client.AppsV1Api(kube).list_namespaced_deployment(NAMESPACE, label_selector=selector).items
        == []
    )


def test_a_create_whose_deliveries_run_out_ends_failed_not_pending(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    """A command the worker cannot even check (every API read fails, so it cannot list the
    nodes) is redelivered, then dead-lettered, and its request still ends."""
    harness.env.update(
        {"AKROS_MAX_DELIVERIES": "2", "AKROS_RECLAIM_IDLE_MS": "300", "AKROS_NODE_CACHE_S": "0"}
    )
    harness.start_worker()
    harness.send(_create("req-warmup", "warmup"))
    assert isinstance(harness.wait_for_result("req-warmup"), EnvironmentReady)
    harness.kubesim.set_faults(errorRate=1.0, errorStatus=500, scope="all")
    harness.send(_create("req-doomed", "doomed"))

    failed = harness.wait_for_result("req-doomed", timeout_s=60)
    harness.kubesim.clear_faults()
    assert isinstance(failed, CommandFailed), harness.logs()
    assert failed.code is FailureCode.INTERNAL
    assert "handler failed on all 2 deliveries" in failed.reason
    assert harness.request_state("req-doomed") == "failed"


def test_a_create_whose_writes_the_cluster_keeps_refusing_fails_at_its_deadline_saying_why(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    """The reconciler retries the writes with back-off (the watch and other environments go
    on), shows the error as the start's progress, and ends the start at the scheduling
    stage's deadline with what the last attempt said; the failed view stays."""
    harness.env["AKROS_START_TIMEOUT_S"] = "3"
    harness.start_worker()
    harness.send(_create("req-warmup", "warmup"))
    assert isinstance(harness.wait_for_result("req-warmup"), EnvironmentReady)
    harness.kubesim.set_faults(errorRate=1.0, errorStatus=500)
    harness.record_pending("req-doomed", "create_environment", "alice")
    harness.send(_create("req-doomed", "doomed"))

    def progress() -> str:
        raw = harness.redis.get("akros:rm:req:req-doomed")
        return str(json.loads(raw).get("progress") or "") if raw else ""

    wait_until(
        lambda: "could not write its objects to the cluster yet" in progress(),
        timeout_s=10,
        what="the write's error as the start's progress",
    )
    # Past the deadline the reconciler stops writing and reports the failure, which first
    # deletes what of the environment's was written: it reads each object before it deletes
    # it (akros_policy.naming.foreign_object_reason), finds none (no write got through;
    # kubesim fails writes only), so it reports with the API still refusing every write.
    failed = harness.wait_for_result("req-doomed", timeout_s=30)
    harness.kubesim.clear_faults()
    assert isinstance(failed, CommandFailed), harness.logs()
    assert failed.code is FailureCode.INTERNAL
    assert "did not get past scheduling within 3s" in failed.reason
    assert "could not write its objects to the cluster yet" in failed.reason
    assert "injected by kubesim" in failed.reason
    view = harness.view("alice", "doomed")
    assert view is not None
    assert view["status"] == "failed"
    selector = "akros.io/env=doomed"
    apps = client.AppsV1Api(kube)
    assert apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items == []


def test_a_start_whose_reporter_died_is_reported_by_the_resync(harness: WorkerHarness) -> None:
    first = harness.start_worker("first")
    harness.send(_create("req-first", "exp"))
    assert isinstance(harness.wait_for_result("req-first"), EnvironmentReady)
    first.stop()
    # As if that worker had claimed the start (its pod is Ready) and was killed before
    # reporting it: the record stays with a lease that ran out long ago, and no pod event
    # will come again.
    record = StartRecord(
        owner="alice", name="exp", request_id="req-first", actor=ALICE, stage_since=time.time()
    )
    harness.redis.hset("akros:worker:starting", "alice/exp", record.model_dump_json())
    harness.redis.hset("akros:worker:settling", "alice/exp", "1.0")
    harness.redis.delete(RESULTS.name)

    harness.start_worker("second")
    reported = harness.wait_for_result("req-first", timeout_s=15)
    assert isinstance(reported, EnvironmentReady), harness.logs()
    assert not harness.redis.hexists("akros:worker:starting", "alice/exp")


def test_a_command_of_a_type_the_worker_does_not_know_is_dead_lettered_and_answered(
    harness: WorkerHarness,
) -> None:
    """On each of the worker's streams, a type it does not know (a newer producer's) lands in
    the dead-letter stream with the reason and the original entry and is not left pending; a
    request of the gateway's it names ends failed instead of waiting forever (scale commands
    are the poller's, which waits for no answer); the worker keeps serving."""
    harness.start_worker()
    written = {}
    for stream in (ENVIRONMENT_COMMANDS, SERVICE_COMMANDS, SCALE_COMMANDS):
        request_id = f"req-new-{stream.name.rsplit('.', 1)[-1]}"
        harness.record_pending(request_id, "snapshot_environment", ALICE.user_id)
        entry_id = write_unknown_type(
            harness.redis, stream, "snapshot_environment", ALICE, request_id
        )
        written[stream] = (entry_id, request_id)

    for stream, (entry_id, request_id) in written.items():
        letter = wait_for_dead_letter(harness.redis, stream, Groups.K8S_WORKER, entry_id)
        assert letter["reason"].startswith(unknown_type_reason(stream, "snapshot_environment"))
        assert json.loads(letter["original"][DATA_FIELD.decode()])["request_id"] == request_id
    for stream in (ENVIRONMENT_COMMANDS, SERVICE_COMMANDS):
        request_id = written[stream][1]
        failed = harness.wait_for_result(request_id)
        assert isinstance(failed, CommandFailed), harness.logs()
        assert failed.code is FailureCode.INVALID
        assert failed.command_type == "snapshot_environment"
        assert unknown_type_reason(stream, "snapshot_environment") in failed.reason
        assert harness.request_state(request_id) == "failed"

    harness.send(_create("req-after", "after"))
    assert isinstance(harness.wait_for_result("req-after"), EnvironmentReady), harness.logs()
