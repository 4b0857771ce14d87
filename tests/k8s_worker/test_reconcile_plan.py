"""The lifecycle reconciler's plan, by value: what it does for what it sees."""

from akros_k8s_worker.reconcile import (
    ApplyObjects,
    ClaimState,
    DeleteClaim,
    DeleteWorkload,
    Deletion,
    Desired,
    FailDeletion,
    FailStart,
    FailStop,
    MarkReady,
    Observed,
    PodState,
    RecordStage,
    ReportDeleted,
    ReportStopped,
    RequeueAfter,
    ScaleToZero,
    Stage,
    StageTimeouts,
    StopExpired,
    Stopping,
    Terminated,
    WarnExpiry,
    observe_claim,
    observe_pod,
    plan,
    plan_expiry,
)
from akros_msgs import FailureCode

TIMEOUTS = StageTimeouts(
    scheduling_s=30,
    attaching_volume_s=20,
    pulling_image_s=600,
    starting_s=60,
    purging_s=120,
    stopping_s=90,
)
BOUND = ClaimState(phase="Bound", storage_class="local-path", class_exists=True)


def _desired(stage: Stage = Stage.SCHEDULING, since: float = 100.0, detail: str = "") -> Desired:
    return Desired(request_id="req-1", stage=stage, stage_since=since, detail=detail)


def _pod(**fields: object) -> PodState:
    values: dict[str, object] = {
        "name": "env-alice-exp-abc",
        "request_id": "req-1",
        "terminating": False,
        "node": "gpu-server-1",
        "phase": "Running",
        "ready": False,
        "image": "registry.local/pytorch:1",
    }
    values.update(fields)
    return PodState(**values)  # type: ignore[arg-type]


def test_a_start_in_its_first_second_shows_no_stage_yet() -> None:
    desired = Desired(
        request_id="req-1", stage=Stage.SCHEDULING, stage_since=100.0, started_at=100.0
    )
    pulling = _pod(phase="Pending", waiting_reason="ContainerCreating")
    assert plan(desired, Observed(pods=(pulling,), claim=BOUND), 100.25, TIMEOUTS) == [
        RequeueAfter(0.75)
    ]
    ready = _pod(ready=True)
    assert plan(desired, Observed(pods=(ready,), claim=BOUND), 100.25, TIMEOUTS) == [
        MarkReady(node="gpu-server-1")
    ]


def test_nothing_to_do_without_a_start() -> None:
    assert plan(None, Observed(pods=(_pod(ready=True),)), 0.0, TIMEOUTS) == []


def test_the_ready_pod_of_this_request_makes_it_ready_on_its_node() -> None:
    observed = Observed(pods=(_pod(ready=True),), claim=BOUND)
    assert plan(_desired(), observed, 101.0, TIMEOUTS) == [MarkReady(node="gpu-server-1")]


def test_a_running_pod_that_is_not_ready_yet_is_starting() -> None:
    observed = Observed(pods=(_pod(ready=False),), claim=BOUND)
    assert plan(_desired(), observed, 110.0, TIMEOUTS) == [
        RecordStage(Stage.STARTING, "waiting for the app to answer on its port"),
        RequeueAfter(60.0),
    ]


def test_a_terminating_pod_of_the_same_name_never_settles_the_new_request() -> None:
    old_ready = _pod(name="old", ready=True, terminating=True)
    old_failed = _pod(name="old2", request_id="req-0", phase="Failed")
    actions = plan(_desired(), Observed(pods=(old_ready, old_failed)), 101.0, TIMEOUTS)
    assert actions == [
        RecordStage(Stage.SCHEDULING, "waiting for the pod to be created"),
        RequeueAfter(29.0),
    ]


def test_a_pod_of_another_request_never_settles_this_one() -> None:
    other = _pod(request_id="req-0", ready=True)
    assert MarkReady(node="gpu-server-1") not in plan(
        _desired(), Observed(pods=(other,)), 101.0, TIMEOUTS
    )


def test_a_crash_loop_fails_with_the_exit_code_and_message() -> None:
    crashing = _pod(
        waiting_reason="CrashLoopBackOff",
        waiting_message="back-off 10s restarting failed container",
        last_terminated=Terminated(exit_code=3, message="CUDA error"),
    )
    [action] = plan(_desired(), Observed(pods=(crashing,), claim=BOUND), 101.0, TIMEOUTS)
    assert isinstance(action, FailStart)
    assert action.code is FailureCode.INTERNAL
    assert "code 3: CUDA error" in action.reason


def test_a_transient_pull_error_is_progress_not_failure() -> None:
    pulling = _pod(phase="Pending", waiting_reason="ErrImagePull", waiting_message="timeout")
    actions = plan(_desired(), Observed(pods=(pulling,), claim=BOUND), 101.0, TIMEOUTS)
    assert actions == [
        RecordStage(
            Stage.PULLING_IMAGE,
            "retrying the pull of registry.local/pytorch:1: ErrImagePull (timeout)",
        ),
        RequeueAfter(600.0),
    ]


def test_a_pull_that_never_succeeds_fails_when_its_stage_times_out() -> None:
    pulling = _pod(phase="Pending", waiting_reason="ImagePullBackOff", waiting_message="no")
    detail = "retrying the pull of registry.local/pytorch:1: ImagePullBackOff (no)"
    desired = _desired(Stage.PULLING_IMAGE, since=100.0, detail=detail)
    [action] = plan(desired, Observed(pods=(pulling,), claim=BOUND), 700.0, TIMEOUTS)
    assert action == FailStart(
        FailureCode.IMAGE_PULL, f"It did not get past pulling image within 600s: {detail}."
    )


def test_each_stage_has_its_own_clock() -> None:
    # 50 s in scheduling is past its 30 s, but the pod has moved on to pulling: a new clock.
    pulling = _pod(phase="Pending", waiting_reason="ContainerCreating")
    actions = plan(_desired(since=100.0), Observed(pods=(pulling,), claim=BOUND), 150.0, TIMEOUTS)
    assert actions == [
        RecordStage(Stage.PULLING_IMAGE, "pulling registry.local/pytorch:1"),
        RequeueAfter(600.0),
    ]


def test_an_unschedulable_pod_waits_for_room_then_fails_naming_the_stage() -> None:
    message = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    waiting = _pod(node=None, phase="Pending", unschedulable=message)
    detail = f"waiting for room in the cluster: {message}"
    assert plan(_desired(), Observed(pods=(waiting,)), 110.0, TIMEOUTS) == [
        RecordStage(Stage.SCHEDULING, detail),
        RequeueAfter(20.0),
    ]
    [action] = plan(_desired(detail=detail), Observed(pods=(waiting,)), 131.0, TIMEOUTS)
    assert action == FailStart(
        FailureCode.UNSCHEDULABLE, f"It did not get past scheduling within 30s: {detail}."
    )


def test_a_claim_whose_class_is_missing_fails_saying_which_class() -> None:
    claim = ClaimState(phase="Pending", storage_class="local-path", class_exists=False)
    waiting = _pod(node=None, phase="Pending", unschedulable="pod has unbound immediate claims")
    [record, _] = plan(_desired(), Observed(pods=(waiting,), claim=claim), 100.0, TIMEOUTS)
    assert isinstance(record, RecordStage)
    assert record.stage is Stage.ATTACHING_VOLUME
    [action] = plan(
        _desired(Stage.ATTACHING_VOLUME, detail=record.detail),
        Observed(pods=(waiting,), claim=claim),
        121.0,
        TIMEOUTS,
    )
    assert isinstance(action, FailStart)
    assert "storage class 'local-path' does not exist" in action.reason
    assert "attaching volume within 20s" in action.reason


def test_a_recorded_stage_is_not_recorded_again() -> None:
    detail = "waiting for the app to answer on its port"
    actions = plan(
        _desired(Stage.STARTING, since=100.0, detail=detail),
        Observed(pods=(_pod(),), claim=BOUND),
        130.0,
        TIMEOUTS,
    )
    assert actions == [RequeueAfter(30.0)]


def test_observing_a_pod_as_the_api_returns_it() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "annotations": {"akros.io/request-id": "req-1"},
            "deletionTimestamp": "2026-12-07T00:00:00Z",
        },
        "spec": {"nodeName": "n1", "containers": [{"image": "img:1"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "image": "img:1",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 3, "message": "boom"}},
                }
            ],
        },
    }
    assert observe_pod(pod) == PodState(
        name="p",
        request_id="req-1",
        terminating=True,
        node="n1",
        phase="Running",
        ready=True,
        image="img:1",
        waiting_reason="CrashLoopBackOff",
        last_terminated=Terminated(3, "boom"),
    )
    claim = {"spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}}
    assert observe_claim(claim, frozenset({"local-path"})) == ClaimState(
        phase="Pending", storage_class="fast", class_exists=False
    )


def test_a_recorded_create_writes_its_objects_first_whatever_the_pods_say() -> None:
    desired = Desired(
        request_id="req-1", stage=Stage.SCHEDULING, stage_since=100.0, objects_pending=True
    )
    # A Ready pod of an earlier request of this name is no reason to skip the writes.
    earlier = _pod(request_id="req-0", ready=True)
    assert plan(desired, Observed(pods=(earlier,)), 101.0, TIMEOUTS) == [ApplyObjects()]


def test_writes_that_keep_failing_end_the_start_at_the_scheduling_timeout_saying_why() -> None:
    desired = Desired(
        request_id="req-1",
        stage=Stage.SCHEDULING,
        stage_since=100.0,
        detail="could not write its objects to the cluster yet (500)",
        objects_pending=True,
    )
    assert plan(desired, Observed(), 130.0, TIMEOUTS) == [
        FailStart(
            FailureCode.INTERNAL,
            "It did not get past scheduling within 30s: could not write its objects to the "
            "cluster yet (500).",
        )
    ]


def _deletion(**fields: object) -> Deletion:
    values: dict[str, object] = {"request_id": "del-1", "requested_at": 100.0}
    values.update(fields)
    return Deletion(**values)  # type: ignore[arg-type]


def test_a_deletion_deletes_the_workload_first() -> None:
    assert plan(_deletion(), Observed(claim=BOUND), 100.0, TIMEOUTS) == [DeleteWorkload()]


def test_a_deletion_that_keeps_the_volume_reports_it_kept_once_the_workload_is_gone() -> None:
    done = _deletion(workload_deleted=True)
    assert plan(done, Observed(claim=BOUND), 101.0, TIMEOUTS) == [ReportDeleted(volume_kept=True)]
    assert plan(done, Observed(), 101.0, TIMEOUTS) == [ReportDeleted(volume_kept=False)]


def test_a_purge_deletes_the_claim_and_waits_for_it_to_be_gone() -> None:
    purge = _deletion(workload_deleted=True, purge_volume=True)
    terminating = ClaimState(
        phase="Bound", storage_class="local-path", class_exists=True, terminating=True
    )
    assert plan(purge, Observed(claim=BOUND), 101.0, TIMEOUTS) == [
        DeleteClaim(),
        RequeueAfter(119.0),
    ]
    assert plan(purge, Observed(claim=terminating), 150.0, TIMEOUTS) == [RequeueAfter(70.0)]
    assert plan(purge, Observed(), 150.0, TIMEOUTS) == [ReportDeleted(volume_kept=False)]


def test_a_purge_whose_claim_outlives_the_wait_fails_saying_what_is_left() -> None:
    purge = _deletion(workload_deleted=True, purge_volume=True)
    terminating = ClaimState(
        phase="Bound", storage_class="local-path", class_exists=True, terminating=True
    )
    assert plan(purge, Observed(claim=terminating), 220.0, TIMEOUTS) == [
        FailDeletion(
            FailureCode.TIMEOUT,
            "The environment is deleted, but its volume was still being deleted after 120s; "
            "it will go once nothing uses it.",
        )
    ]


def test_a_volumes_deletion_touches_no_workload() -> None:
    volume = _deletion(volume_only=True, purge_volume=True)
    assert plan(volume, Observed(claim=BOUND), 100.0, TIMEOUTS) == [
        DeleteClaim(),
        RequeueAfter(120.0),
    ]
    assert plan(volume, Observed(), 101.0, TIMEOUTS) == [ReportDeleted(volume_kept=False)]


def test_a_stop_scales_to_zero_first_whatever_the_pods_say() -> None:
    stop = Stopping(request_id="s1", requested_at=100.0)
    assert plan(stop, Observed(pods=(_pod(ready=True),), claim=BOUND), 100.0, TIMEOUTS) == [
        ScaleToZero()
    ]
    assert plan(stop, Observed(), 100.0, TIMEOUTS) == [ScaleToZero()]


def test_a_stop_is_reported_once_no_pod_is_left_not_even_a_terminating_one() -> None:
    stop = Stopping(request_id="s1", requested_at=100.0, scaled=True)
    going = Observed(pods=(_pod(terminating=True),), claim=BOUND)
    assert plan(stop, going, 130.0, TIMEOUTS) == [RequeueAfter(60.0)]
    assert plan(stop, Observed(claim=BOUND), 130.0, TIMEOUTS) == [ReportStopped()]


def test_a_pod_that_outlives_the_stops_wait_fails_it_naming_the_pod() -> None:
    stop = Stopping(request_id="s1", requested_at=100.0, scaled=True)
    going = Observed(pods=(_pod(terminating=True),), claim=BOUND)
    [failed] = plan(stop, going, 190.0, TIMEOUTS)
    assert isinstance(failed, FailStop)
    assert failed.code is FailureCode.TIMEOUT
    assert "env-alice-exp-abc" in failed.reason
    assert "90s" in failed.reason


def test_a_resume_scales_its_workload_up_before_it_looks_at_pods() -> None:
    """A resume's record has no spec (its objects exist); its first write is the scale-up,
    and a pod left of the request before the stop never makes it ready."""
    resumed = Desired(
        request_id="start-2", stage=Stage.SCHEDULING, stage_since=100.0, objects_pending=True
    )
    before_the_stop = _pod(ready=True, request_id="req-1")
    assert plan(resumed, Observed(pods=(before_the_stop,), claim=BOUND), 100.5, TIMEOUTS) == [
        ApplyObjects()
    ]
    written = Desired(request_id="start-2", stage=Stage.SCHEDULING, stage_since=100.0)
    assert MarkReady("gpu-server-1") not in plan(
        written, Observed(pods=(before_the_stop,), claim=BOUND), 102.0, TIMEOUTS
    )


def test_an_expiry_far_off_is_looked_at_again_when_its_warning_is_due() -> None:
    assert plan_expiry(10_000.0, warned_at=None, warn_before_s=3600, now=1_000.0) == [
        RequeueAfter(5400.0)
    ]


def test_an_expiry_within_its_warning_tells_the_owner_and_waits_for_the_expiry() -> None:
    assert plan_expiry(10_000.0, warned_at=None, warn_before_s=3600, now=7_000.0) == [
        WarnExpiry(stops_at=10_600.0),
        RequeueAfter(3600.0),
    ], "told at 7000, the owner gets the whole hour: the stop waits until 10600"
    assert plan_expiry(10_000.0, warned_at=6_400.0, warn_before_s=3600, now=7_000.0) == [
        RequeueAfter(3000.0)
    ], "told on time, the stop comes at the expiry"


def test_an_expiry_that_has_come_after_its_warning_stops_the_environment() -> None:
    assert plan_expiry(10_000.0, warned_at=6_400.0, warn_before_s=3600, now=10_000.0) == [
        StopExpired()
    ]
    assert plan_expiry(10_000.0, warned_at=6_400.0, warn_before_s=3600, now=99_999.0) == [
        StopExpired()
    ]


def test_an_expiry_never_announced_is_announced_and_the_stop_waits_the_warnings_time() -> None:
    """The worker was down through the warning's time, or the environment became ready past
    its expiry: the owner is told now and may extend it for the whole warning time."""
    assert plan_expiry(10_000.0, warned_at=None, warn_before_s=3600, now=12_000.0) == [
        WarnExpiry(stops_at=15_600.0),
        RequeueAfter(3600.0),
    ]
    assert plan_expiry(10_000.0, warned_at=12_000.0, warn_before_s=3600, now=13_000.0) == [
        RequeueAfter(2600.0)
    ]
    assert plan_expiry(10_000.0, warned_at=12_000.0, warn_before_s=3600, now=15_600.0) == [
        StopExpired()
    ]
