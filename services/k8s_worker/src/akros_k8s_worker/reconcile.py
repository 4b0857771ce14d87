"""An environment's life as a level-triggered reconciler's pure decision.

`plan(desired, observed, now)` looks at what should be (a start, a stop or a deletion this
worker owes an outcome) and what is (the environment's pods and claim, as the watches last
saw them) and returns what to do now: write the objects, record the stage the start has
reached, report it ready, fail it, scale the workload to zero, report it stopped, delete the
workload or the claim, report the deletion, or look again later. `plan_expiry` does the same
for a running environment's expiry: tell its owner ahead of it, stop it once it is due.
It never remembers an event: called twice on the same inputs it answers the same, so a lost,
repeated or reordered watch event changes nothing, and the executor may call it whenever it
likes (an event, a deadline, a retry after an error).

Ready means usable: the pod of *this* request (its request-id annotation; a pod still
Terminating from a deleted environment of the same name never counts) whose Ready condition
is True, which with the readiness probe on the image's port means the app answers.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, overload

from akros_msgs import FailureCode
from akros_policy.naming import ANNOTATION_REQUEST_ID


class Stage(StrEnum):
    """Where a start is, in the order a pod goes through them."""

    SCHEDULING = "scheduling"
    ATTACHING_VOLUME = "attaching volume"
    PULLING_IMAGE = "pulling image"
    STARTING = "starting"
    READY = "ready"


# A container waiting for one of these will not start without someone changing the spec.
# ErrImagePull and ImagePullBackOff are not among them: a first pull of a large image fails
# transiently often enough (registry throttling, a node's network); the kubelet retries it,
# and the pulling stage's timeout ends a pull that never succeeds.
_HOPELESS_WAITING = {
    "InvalidImageName": FailureCode.IMAGE_PULL,
    "ErrImageNeverPull": FailureCode.IMAGE_PULL,
    "CreateContainerConfigError": FailureCode.INVALID,
    "CreateContainerError": FailureCode.INVALID,
}
_PULL_RETRYING = {"ErrImagePull", "ImagePullBackOff"}
# The timeout of a stage ends the start with this code.
_TIMEOUT_CODES = {
    Stage.SCHEDULING: FailureCode.UNSCHEDULABLE,
    Stage.ATTACHING_VOLUME: FailureCode.UNSCHEDULABLE,
    Stage.PULLING_IMAGE: FailureCode.IMAGE_PULL,
    Stage.STARTING: FailureCode.TIMEOUT,
}


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    message: str


@dataclass(frozen=True)
class PodState:
    """What the plan needs of one pod."""

    name: str
    request_id: str | None
    terminating: bool
    node: str | None
    phase: str
    ready: bool
    unschedulable: str | None = None
    """The scheduler's message while PodScheduled is False."""
    image: str = ""
    waiting_reason: str | None = None
    waiting_message: str | None = None
    last_terminated: Terminated | None = None
    status_reason: str | None = None


@dataclass(frozen=True)
class ClaimState:
    phase: str
    storage_class: str | None
    class_exists: bool
    terminating: bool = False
    size: str = ""


@dataclass(frozen=True)
class Observed:
    pods: tuple[PodState, ...] = ()
    claim: ClaimState | None = None


@dataclass(frozen=True)
class Desired:
    """A start this worker owes an outcome: the request, and the stage it last recorded."""

    request_id: str
    stage: Stage
    stage_since: float
    detail: str = ""
    started_at: float = 0.0
    objects_pending: bool = False
    """Its objects are still to be written (the create's command only recorded it)."""


@dataclass(frozen=True)
class Deletion:
    """A deletion this worker owes an outcome: of the environment's workload (and its claim
    when ``purge_volume``), or of the claim alone (``volume_only``)."""

    request_id: str
    requested_at: float
    purge_volume: bool = False
    volume_only: bool = False
    workload_deleted: bool = False


@dataclass(frozen=True)
class Stopping:
    """A stop this worker owes an outcome: the workload scaled to zero, then no pod left."""

    request_id: str
    requested_at: float
    scaled: bool = False


# A start that is ready this soon shows no stages: each would be a write to the read model
# and an event, for a message nobody reads that fast (most starts on a warm node).
QUIET_S = 1.0


@dataclass(frozen=True)
class StageTimeouts:
    scheduling_s: float = 300.0
    attaching_volume_s: float = 300.0
    pulling_image_s: float = 1800.0
    starting_s: float = 300.0
    purging_s: float = 120.0
    """How long a purge (or a volume's deletion) waits for the claim to be gone."""
    stopping_s: float = 120.0
    """How long a stop waits for the pod to be gone (its grace period, a node's kubelet)."""

    def of(self, stage: Stage) -> float:
        return {
            Stage.SCHEDULING: self.scheduling_s,
            Stage.ATTACHING_VOLUME: self.attaching_volume_s,
            Stage.PULLING_IMAGE: self.pulling_image_s,
            Stage.STARTING: self.starting_s,
        }.get(stage, float("inf"))


@dataclass(frozen=True)
class ApplyObjects:
    """Write every object of the start, creating or patching each, the Deployment last."""


@dataclass(frozen=True)
class RecordStage:
    stage: Stage
    detail: str


@dataclass(frozen=True)
class MarkReady:
    node: str


@dataclass(frozen=True)
class FailStart:
    code: FailureCode
    reason: str


@dataclass(frozen=True)
class RequeueAfter:
    seconds: float


@dataclass(frozen=True)
class DeleteWorkload:
    """Delete everything of the environment but its claim."""


@dataclass(frozen=True)
class DeleteClaim:
    pass


@dataclass(frozen=True)
class ReportDeleted:
    volume_kept: bool


@dataclass(frozen=True)
class FailDeletion:
    code: FailureCode
    reason: str


@dataclass(frozen=True)
class ScaleToZero:
    """Scale the Deployment to zero; everything else of the environment stays."""


@dataclass(frozen=True)
class ReportStopped:
    pass


@dataclass(frozen=True)
class FailStop:
    code: FailureCode
    reason: str


@dataclass(frozen=True)
class WarnExpiry:
    """Tell the owner the environment will be stopped at ``stops_at`` (once per expiry)."""

    stops_at: float
    """Epoch seconds: the expiry, or later when the warning goes out late."""


@dataclass(frozen=True)
class StopExpired:
    """Stop the environment: its expiry has come (its volume is kept; nothing is deleted)."""


StartAction = ApplyObjects | RecordStage | MarkReady | FailStart | RequeueAfter
DeletionAction = DeleteWorkload | DeleteClaim | ReportDeleted | FailDeletion | RequeueAfter
StopAction = ScaleToZero | ReportStopped | FailStop | RequeueAfter
ExpiryAction = WarnExpiry | StopExpired | RequeueAfter


@overload
def plan(
    desired: Deletion, observed: Observed, now: float, timeouts: StageTimeouts
) -> list[DeletionAction]: ...


@overload
def plan(
    desired: Stopping, observed: Observed, now: float, timeouts: StageTimeouts
) -> list[StopAction]: ...


@overload
def plan(
    desired: Desired | None, observed: Observed, now: float, timeouts: StageTimeouts
) -> list[StartAction]: ...


def plan(
    desired: Desired | Deletion | Stopping | None,
    observed: Observed,
    now: float,
    timeouts: StageTimeouts,
) -> list[StartAction] | list[DeletionAction] | list[StopAction]:
    """What to do about one environment now (see the module's docstring)."""
    if desired is None:
        return []
    if isinstance(desired, Deletion):
        return _plan_deletion(desired, observed, now, timeouts)
    if isinstance(desired, Stopping):
        return _plan_stop(desired, observed, now, timeouts)
    return _plan_start(desired, observed, now, timeouts)


def _plan_start(
    desired: Desired, observed: Observed, now: float, timeouts: StageTimeouts
) -> list[StartAction]:
    if desired.objects_pending:
        # Written first, whatever the pods say: a pod of this request cannot exist before its
        # Deployment. A write that keeps failing (the API refusing, away) ends at the
        # scheduling stage's timeout, with what the last attempt said.
        if now - desired.stage_since >= timeouts.of(Stage.SCHEDULING):
            return [
                FailStart(
                    FailureCode.INTERNAL,
                    _timeout_reason(Stage.SCHEDULING, timeouts, desired.detail or "not written"),
                )
            ]
        return [ApplyObjects()]
    mine = [p for p in observed.pods if p.request_id == desired.request_id and not p.terminating]
    for pod in mine:
        if pod.ready and pod.node:
            return [MarkReady(node=pod.node)]
    for pod in mine:
        if (failure := _failure(pod)) is not None:
            return [failure]
    stage, detail = _stage(mine, observed.claim)
    quiet_left = desired.started_at + QUIET_S - now
    if quiet_left > 0:
        return [RequeueAfter(quiet_left)]
    actions: list[StartAction] = []
    since = desired.stage_since
    if (stage, detail) != (desired.stage, desired.detail):
        actions.append(RecordStage(stage, detail))
        if stage is not desired.stage:
            since = now  # a new stage's clock starts now
    left = since + timeouts.of(stage) - now
    if left <= 0:
        return [FailStart(_TIMEOUT_CODES[stage], _timeout_reason(stage, timeouts, detail))]
    actions.append(RequeueAfter(left))
    return actions


def _plan_deletion(
    deletion: Deletion, observed: Observed, now: float, timeouts: StageTimeouts
) -> list[DeletionAction]:
    """The workload goes first; a purged claim is deleted and waited for (the claim stays
    while the old pod terminates, and a re-create must not find it then); the deletion is
    reported once nothing of it is left to go."""
    if not deletion.volume_only and not deletion.workload_deleted:
        return [DeleteWorkload()]
    claim = observed.claim
    if not deletion.purge_volume:
        return [ReportDeleted(volume_kept=claim is not None and not claim.terminating)]
    if claim is None:
        return [ReportDeleted(volume_kept=False)]
    left = deletion.requested_at + timeouts.purging_s - now
    if left <= 0:
        what = "The environment is deleted, but its volume"
        if deletion.volume_only:
            what = "The volume"
        return [
            FailDeletion(
                FailureCode.TIMEOUT,
                f"{what} was still being deleted after {timeouts.purging_s:.0f}s; it will go "
                "once nothing uses it.",
            )
        ]
    actions: list[DeletionAction] = [] if claim.terminating else [DeleteClaim()]
    actions.append(RequeueAfter(left))
    return actions


def plan_expiry(
    expires_at: float, warned_at: float | None, warn_before_s: float, now: float
) -> list[ExpiryAction]:
    """For an environment that runs and owes nothing else (no start, stop or deletion under
    way): tell its owner from ``warn_before_s`` ahead of ``expires_at``, stop it once the
    expiry has come, and look again when the next of those is due.

    It is never stopped unannounced: when the warning went out late (``warned_at``, the worker
    was down through the warning's time, or the environment became ready inside it), the stop
    waits until the owner has had the whole ``warn_before_s`` to extend it."""
    if warned_at is None:
        warn_at = expires_at - warn_before_s
        if now < warn_at:
            return [RequeueAfter(warn_at - now)]
        stops_at = max(expires_at, now + warn_before_s)
        return [WarnExpiry(stops_at), RequeueAfter(stops_at - now)]
    stop_at = max(expires_at, warned_at + warn_before_s)
    if now >= stop_at:
        return [StopExpired()]
    return [RequeueAfter(stop_at - now)]


def _plan_stop(
    stop: Stopping, observed: Observed, now: float, timeouts: StageTimeouts
) -> list[StopAction]:
    """Scaled to zero first; reported stopped once no pod of the environment is left, a
    Terminating one included: until it is gone it holds its node's resources, and a start
    right after would wait for its ReadWriteOnce volume."""
    if not stop.scaled:
        return [ScaleToZero()]
    if not observed.pods:
        return [ReportStopped()]
    left = stop.requested_at + timeouts.stopping_s - now
    if left <= 0:
        names = ", ".join(sorted(p.name for p in observed.pods))
        return [
            FailStop(
                FailureCode.TIMEOUT,
                f"It is scaled to zero, but its pod ({names}) was still going after "
                f"{timeouts.stopping_s:.0f}s; it holds its resources until it is gone.",
            )
        ]
    return [RequeueAfter(left)]


def _failure(pod: PodState) -> FailStart | None:
    if pod.waiting_reason in _HOPELESS_WAITING:
        return FailStart(
            _HOPELESS_WAITING[pod.waiting_reason],
            f"{pod.image or 'the image'} could not start: {pod.waiting_reason} "
            f"({pod.waiting_message or pod.waiting_reason})",
        )
    if pod.waiting_reason == "CrashLoopBackOff" and pod.last_terminated is not None:
        return FailStart(FailureCode.INTERNAL, _crash_reason(pod, pod.last_terminated))
    if pod.phase in {"Failed", "Succeeded"}:
        if pod.last_terminated is not None:
            return FailStart(FailureCode.INTERNAL, _crash_reason(pod, pod.last_terminated))
        stopped = f"the pod stopped ({pod.phase}): {pod.status_reason}"
        return FailStart(FailureCode.INTERNAL, stopped)
    return None


def _crash_reason(pod: PodState, terminated: Terminated) -> str:
    said = f": {terminated.message}" if terminated.message else ""
    return (
        f"{pod.image or 'the container'} keeps exiting (crash loop); it last exited with "
        f"code {terminated.exit_code}{said}"
    )


def _stage(mine: list[PodState], claim: ClaimState | None) -> tuple[Stage, str]:
    """The furthest stage any of this request's pods has reached, and what it waits for."""
    claim_note = _claim_note(claim)
    if not mine:
        return Stage.SCHEDULING, claim_note or "waiting for the pod to be created"
    pod = mine[0]
    if pod.node is None:
        if pod.unschedulable is not None:
            if claim_note:
                return Stage.ATTACHING_VOLUME, claim_note
            return Stage.SCHEDULING, f"waiting for room in the cluster: {pod.unschedulable}"
        return Stage.SCHEDULING, "waiting for the scheduler"
    if claim is not None and claim.phase != "Bound":
        return Stage.ATTACHING_VOLUME, claim_note or "waiting for the volume to be bound"
    if pod.waiting_reason in _PULL_RETRYING:
        return Stage.PULLING_IMAGE, (
            f"retrying the pull of {pod.image}: {pod.waiting_reason} "
            f"({pod.waiting_message or pod.waiting_reason})"
        )
    if pod.waiting_reason in {"ContainerCreating", "PodInitializing"} or (
        pod.phase == "Pending" and pod.waiting_reason is None
    ):
        return Stage.PULLING_IMAGE, f"pulling {pod.image}" if pod.image else "pulling the image"
    if pod.waiting_reason == "CrashLoopBackOff":
        return Stage.STARTING, "restarting after a crash"
    return Stage.STARTING, "waiting for the app to answer on its port"


def _claim_note(claim: ClaimState | None) -> str:
    """Why the claim keeps the pod from starting, or '' when it does not (yet)."""
    if claim is None or claim.phase == "Bound":
        return ""
    if claim.storage_class is None:
        return (
            "its volume claim is Pending: it names no storage class and the cluster has no default"
        )
    if not claim.class_exists:
        return (
            f"its volume claim is Pending: storage class '{claim.storage_class}' does not exist "
            "in the cluster (install its provisioner or set AKROS_STORAGE_CLASS)"
        )
    return ""


def _timeout_reason(stage: Stage, timeouts: StageTimeouts, detail: str) -> str:
    return f"It did not get past {stage.value} within {timeouts.of(stage):.0f}s: {detail}."


# -- observing -------------------------------------------------------------------------------


def observe_pod(pod: Mapping[str, Any]) -> PodState:
    """The PodState of a pod as the API returns it."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    unschedulable = None
    if scheduled.get("status") == "False":
        unschedulable = scheduled.get("message") or scheduled.get("reason") or "no node fits"
    container: dict[str, Any] = next(iter(status.get("containerStatuses") or []), {})
    waiting = (container.get("state") or {}).get("waiting") or {}
    terminated = (container.get("lastState") or {}).get("terminated") or (
        container.get("state") or {}
    ).get("terminated")
    image = container.get("image") or next(
        (c.get("image", "") for c in spec.get("containers") or []), ""
    )
    return PodState(
        name=str(metadata.get("name", "")),
        request_id=(metadata.get("annotations") or {}).get(ANNOTATION_REQUEST_ID),
        terminating=metadata.get("deletionTimestamp") is not None,
        node=spec.get("nodeName") or None,
        phase=str(status.get("phase", "Pending")),
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        unschedulable=unschedulable,
        image=str(image),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        last_terminated=(
            Terminated(int(terminated.get("exitCode", 0)), str(terminated.get("message") or ""))
            if terminated
            else None
        ),
        status_reason=status.get("reason"),
    )


def observe_claim(claim: Mapping[str, Any], storage_classes: frozenset[str]) -> ClaimState:
    spec = claim.get("spec") or {}
    class_name = spec.get("storageClassName")
    requests = (spec.get("resources") or {}).get("requests") or {}
    return ClaimState(
        phase=str((claim.get("status") or {}).get("phase", "Pending")),
        storage_class=class_name,
        class_exists=class_name in storage_classes,
        terminating=(claim.get("metadata") or {}).get("deletionTimestamp") is not None,
        size=str(requests.get("storage", "")),
    )
