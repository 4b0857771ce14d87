"""The simulated kubelet: image pulls that take time and are cached per node, pull and crash
back-offs, containers that exit, and readiness probes.

A real kubelet is not kind: a multi-GB CUDA image takes minutes on a node's first pull, a
container can crash-loop, and a pod is Running long before it is Ready. Durations come from
the cluster file's `images:` entries and are scaled by the simulation's time factor; the
decisions (which behaviour, how long, which back-off) are pure functions, and `ContainerRun`
is the state machine of one container that the simulation advances when its next step is due.
"""

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BACKOFF_INITIAL_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 300.0
# How long a failed pull shows ErrImagePull before the kubelet's next sync shows the back-off.
SYNC_SECONDS = 1.0
# An `Always` pull of an image the node has: only the manifest is fetched again.
MANIFEST_CHECK_SECONDS = 0.5
GIGABYTE = 10**9
KILLED_EXIT_CODE = 137  # 128 + SIGKILL: the grace period ended before the process did


@dataclass(frozen=True)
class Crash:
    exit_code: int = 1
    message: str = ""
    after_seconds: float = 5.0


@dataclass(frozen=True)
class ImageBehaviour:
    """How the images matching `pattern` (a regex searched in the image reference) behave."""

    pattern: str = ""
    size_gb: float = 0.2
    pull_seconds_per_gb: float = 5.0
    pull_seconds: float | None = None
    fail_transiently: int = 0
    fail: bool = False
    crash: Crash | None = None
    exit_code: int | None = None
    exit_after_seconds: float = 0.0
    readiness_seconds: float = 0.0
    stop_seconds: float | None = None
    """How long the app takes to exit after SIGTERM; None: it ignores the signal and is
    killed when the grace period ends, as a shell or `sleep infinity` as PID 1 is."""

    @property
    def size_bytes(self) -> int:
        return int(self.size_gb * GIGABYTE)

    def full_pull_seconds(self) -> float:
        if self.pull_seconds is not None:
            return self.pull_seconds
        return self.size_gb * self.pull_seconds_per_gb


class ImageFormatError(ValueError):
    """An `images:` entry is not usable; the message says which and why."""


def parse_image_behaviour(
    entry: Mapping[str, Any], where: str, base: ImageBehaviour
) -> ImageBehaviour:
    known = {
        "pattern",
        "sizeGB",
        "pullSecondsPerGB",
        "pullSeconds",
        "failTransiently",
        "fail",
        "crash",
        "exit",
        "readinessSeconds",
        "stopSeconds",
    }
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ImageFormatError(f"{where}: unknown fields {', '.join(unknown)}")
    try:
        pattern = str(entry.get("pattern", base.pattern))
        re.compile(pattern)
        crash = entry.get("crash")
        exit_ = entry.get("exit")
        return ImageBehaviour(
            pattern=pattern,
            size_gb=float(entry.get("sizeGB", base.size_gb)),
            pull_seconds_per_gb=float(entry.get("pullSecondsPerGB", base.pull_seconds_per_gb)),
            pull_seconds=(
                float(entry["pullSeconds"]) if "pullSeconds" in entry else base.pull_seconds
            ),
            fail_transiently=int(entry.get("failTransiently", 0)),
            fail=bool(entry.get("fail", False)),
            crash=(
                Crash(
                    int(crash.get("exitCode", 1)),
                    str(crash.get("message", "")),
                    float(crash.get("afterSeconds", 5.0)),
                )
                if isinstance(crash, Mapping)
                else None
            ),
            exit_code=int(exit_.get("code", 0)) if isinstance(exit_, Mapping) else None,
            exit_after_seconds=(
                float(exit_.get("afterSeconds", 0.0)) if isinstance(exit_, Mapping) else 0.0
            ),
            readiness_seconds=float(entry.get("readinessSeconds", base.readiness_seconds)),
            stop_seconds=(
                float(entry["stopSeconds"]) if "stopSeconds" in entry else base.stop_seconds
            ),
        )
    except (TypeError, ValueError, re.error) as error:
        raise ImageFormatError(f"{where}: {error}") from error


def behaviour_for(
    image: str,
    behaviours: Sequence[ImageBehaviour],
    defaults: ImageBehaviour,
    failing_pattern: re.Pattern[str],
) -> ImageBehaviour:
    """The first entry whose pattern the image matches, else the defaults; an image matching
    the cluster's failingImagePattern never pulls."""
    chosen = next((b for b in behaviours if re.search(b.pattern, image)), defaults)
    if failing_pattern.search(image):
        return ImageBehaviour(
            pattern=chosen.pattern, size_gb=chosen.size_gb, fail=True, pull_seconds=0.0
        )
    return chosen


def backoff_seconds(failures: int) -> float:
    """The kubelet's back-off after the n-th failure in a row: 10 s, doubling, at most 300 s."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_INITIAL_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS))


def pull_seconds(behaviour: ImageBehaviour, cached: bool, policy: str) -> float | None:
    """How long pulling takes, or None when the kubelet uses the node's copy without pulling."""
    if cached and policy in ("IfNotPresent", "Never"):
        return None
    if cached:
        return MANIFEST_CHECK_SECONDS
    return behaviour.full_pull_seconds()


def ready_after_seconds(container: Mapping[str, Any], behaviour: ImageBehaviour) -> float:
    """When, after the container started, its readiness probe first passes: probes run at
    initialDelaySeconds and every periodSeconds after; the app answers after readinessSeconds.
    A container without a readiness probe is ready once started."""
    probe = container.get("readinessProbe")
    if not probe:
        return 0.0
    delay = float(probe.get("initialDelaySeconds", 0))
    period = float(probe.get("periodSeconds", 10)) or 10.0
    waiting = max(behaviour.readiness_seconds - delay, 0.0)
    threshold = max(int(probe.get("successThreshold", 1)), 1)
    return delay + math.ceil(waiting / period) * period + (threshold - 1) * period


def termination_seconds(behaviour: ImageBehaviour, grace: float) -> float:
    """How long a running container takes to end once its pod is deleted: the app's own
    shutdown time when it handles SIGTERM, at most the grace period, after which it is killed."""
    if behaviour.stop_seconds is None:
        return grace
    return min(behaviour.stop_seconds, grace)


def restarts_after_exit(restart_policy: str, exit_code: int) -> bool:
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


def pulled_message(image: str, seconds: float, size_bytes: int) -> str:
    return (
        f'Successfully pulled image "{image}" in {_duration(seconds)} '
        f"({_duration(seconds)} including waiting). Image size: {size_bytes} bytes."
    )


def _duration(seconds: float) -> str:
    """Go's time.Duration text, as the kubelet prints it (1.2s, 350ms, 2m30.5s)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return f"{image.split(':', 1)[0]}@sha256:{digest}"


Event = tuple[str, str, str]  # reason, message, type


def pod_phase(runs: Sequence["ContainerRun"]) -> str:
    """Running once a container has started, whatever readiness says; Succeeded or Failed
    when every container has ended for good; Pending before."""
    if runs and all(run.phase == "done" for run in runs):
        failed = any((run.terminated or {}).get("exitCode") for run in runs)
        return "Failed" if failed else "Succeeded"
    if any(run.started_wall for run in runs):
        return "Running"
    return "Pending"


@dataclass
class ContainerRun:
    """One container's life on its node. Times are simulation seconds (monotonic); `factor`
    scales every real-cluster duration."""

    name: str
    image: str
    behaviour: ImageBehaviour
    restart_policy: str
    factor: float
    ready_after: float
    pod: str = ""  # as the kubelet names it in events: <name>_<namespace>(<uid>)
    # pulling, pull-failed, pull-backoff, running, crash-backoff, stopping, done
    phase: str = "pulling"
    next_at: float | None = None
    pull_started: float = 0.0
    pull_failures: int = 0
    restarts: int = 0
    started_at: float | None = None
    started_wall: str = ""
    container_id: str = ""
    last_terminated: dict[str, Any] | None = None
    terminated: dict[str, Any] | None = None
    log: list[str] = field(default_factory=list)
    previous_log: list[str] = field(default_factory=list)
    stopped_from: str = ""  # the phase the pod's deletion found the container in
    killed_on_stop: bool = True

    @property
    def running(self) -> bool:
        """The process is up: started, or told to stop and not yet gone."""
        return self.phase == "running" or (
            self.phase == "stopping" and self.stopped_from == "running"
        )

    def ready(self, now: float) -> bool:
        return (
            self.running
            and self.started_at is not None
            and now >= self.started_at + self.ready_after * self.factor
        )

    def next_ready_at(self, now: float) -> float | None:
        if self.phase == "running" and self.started_at is not None and not self.ready(now):
            return self.started_at + self.ready_after * self.factor
        return None

    def begin(self, now: float, wall: str, pull: float | None) -> list[Event]:
        """The sandbox is up: pull the image (or use the node's copy) and start."""
        if pull is None:
            return [
                (
                    "Pulled",
                    f'Container image "{self.image}" already present on machine',
                    "Normal",
                ),
                *self._start(now, wall),
            ]
        return self._pull(now, wall, pull)

    def _pull(self, now: float, wall: str, pull: float) -> list[Event]:
        self.phase, self.pull_started = "pulling", now
        self.next_at = now + pull * self.factor
        self.log.append(f"{wall} kubesim: pulling image {self.image}")
        return [("Pulling", f'Pulling image "{self.image}"', "Normal")]

    def advance(self, now: float, wall: str, full_pull: float) -> tuple[list[Event], bool]:
        """Steps due by now; (events, whether the image is now on the node)."""
        events: list[Event] = []
        pulled = False
        while self.next_at is not None and self.next_at <= now:
            due = self.next_at
            if self.phase == "pulling":
                failing = (
                    self.behaviour.fail or self.pull_failures < self.behaviour.fail_transiently
                )
                if failing:
                    self.pull_failures += 1
                    self.phase, self.next_at = "pull-failed", due + SYNC_SECONDS * self.factor
                    reason = f'failed to pull and unpack image "{self.image}": {self._pull_error()}'
                    self.log.append(f"{wall} kubesim: pull of {self.image} failed: {reason}")
                    events += [
                        ("Failed", f'Failed to pull image "{self.image}": {reason}', "Warning"),
                        ("Failed", "Error: ErrImagePull", "Warning"),
                    ]
                else:
                    pulled = True
                    took = (due - self.pull_started) / self.factor if self.factor else 0.0
                    message = pulled_message(self.image, took, self.behaviour.size_bytes)
                    self.log.append(f"{wall} kubesim: {message}")
                    events.append(("Pulled", message, "Normal"))
                    events += self._start(due, wall)
            elif self.phase == "pull-failed":
                self.phase = "pull-backoff"
                wait = backoff_seconds(self.pull_failures) - SYNC_SECONDS
                self.next_at = due + max(wait, 0.0) * self.factor
                events += [
                    ("BackOff", f'Back-off pulling image "{self.image}"', "Normal"),
                    ("Failed", "Error: ImagePullBackOff", "Warning"),
                ]
            elif self.phase == "pull-backoff":
                events += self._pull(due, wall, full_pull)
            elif self.phase == "running":
                events += self._terminate(due, wall)
            elif self.phase == "crash-backoff":
                events += self._start(due, wall)
        return events, pulled

    def _pull_error(self) -> str:
        if self.behaviour.fail:
            registry = self.image.split("/", 1)[0]
            return f'failed to resolve reference "{self.image}": {registry}: not found'
        return "failed to copy: httpReadSeeker: failed open: unexpected status code 503"

    def _start(self, now: float, wall: str) -> list[Event]:
        self.phase, self.started_at, self.started_wall = "running", now, wall
        self.container_id = (
            f"containerd://{hashlib.sha256(f'{self.name}{now}'.encode()).hexdigest()}"
        )
        self.terminated = None
        lifetime = self._lifetime()
        self.next_at = None if lifetime is None else now + lifetime * self.factor
        self.log.append(f"{wall} kubesim: container {self.name} ({self.image}) started")
        return [
            ("Created", f"Created container: {self.name}", "Normal"),
            ("Started", f"Started container {self.name}", "Normal"),
        ]

    def _lifetime(self) -> float | None:
        if self.behaviour.crash is not None:
            return self.behaviour.crash.after_seconds
        if self.behaviour.exit_code is not None:
            return self.behaviour.exit_after_seconds
        return None

    def _terminate(self, now: float, wall: str) -> list[Event]:
        crash = self.behaviour.crash
        code = crash.exit_code if crash is not None else int(self.behaviour.exit_code or 0)
        message = crash.message if crash is not None else ""
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_wall,
            "finishedAt": wall,
            "containerID": self.container_id,
        }
        if message:
            terminated["message"] = message
        ending = f"{wall} kubesim: container {self.name} exited with code {code}"
        self.log.append(ending + (f": {message}" if message else ""))
        self.last_terminated = terminated
        if not restarts_after_exit(self.restart_policy, code):
            self.phase, self.next_at, self.terminated = "done", None, terminated
            return []
        self.previous_log, self.log = self.log, []
        self.restarts += 1
        self.phase = "crash-backoff"
        self.next_at = now + backoff_seconds(self.restarts) * self.factor
        return [
            (
                "BackOff",
                f"Back-off restarting failed container {self.name} in pod {self.pod}",
                "Warning",
            ),
        ]

    def stop(self, grace: float) -> tuple[float, list[Event]]:
        """The pod was deleted: SIGTERM to a running container. Returns how long it takes to
        end (real-cluster seconds) and the kubelet's events; other containers end at once."""
        was_running = self.phase == "running"
        self.stopped_from, self.phase, self.next_at = self.phase, "stopping", None
        if not was_running:
            return 0.0, []
        self.killed_on_stop = self.behaviour.stop_seconds is None or (
            self.behaviour.stop_seconds > grace
        )
        events: list[Event] = [("Killing", f"Stopping container {self.name}", "Normal")]
        return termination_seconds(self.behaviour, grace), events

    def end(self, wall: str) -> None:
        """The container is gone: its terminated state as the kubelet reports it."""
        if self.stopped_from == "running":
            killed = self.killed_on_stop
            self.terminated = {
                "exitCode": KILLED_EXIT_CODE if killed else 0,
                "reason": "Error" if killed else "Completed",
                "startedAt": self.started_wall,
                "finishedAt": wall,
                "containerID": self.container_id,
            }
            ending = "was killed at the end of its grace period" if killed else "exited on SIGTERM"
            self.log.append(f"{wall} kubesim: container {self.name} {ending}")
        elif self.stopped_from == "crash-backoff" and self.last_terminated is not None:
            self.terminated = dict(self.last_terminated)
        elif self.terminated is None:
            # Never started (pulling, or backing off a pull): nothing ran to report on.
            self.terminated = {
                "exitCode": KILLED_EXIT_CODE,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
            }
        self.phase, self.next_at = "done", None

    def log_lines(self, previous: bool) -> list[str] | None:
        """What `kubectl logs` shows: the current (or, in a crash back-off, the last ended)
        container's lines, or with `previous` the last restarted one's; None if there is none."""
        if previous:
            return list(self.previous_log) if self.restarts else None
        if self.phase == "crash-backoff":
            return list(self.previous_log)
        return list(self.log) if self.started_wall else None

    def status(self, now: float) -> dict[str, Any]:
        state: dict[str, Any]
        if self.running:
            state = {"running": {"startedAt": self.started_wall}}
        elif self.phase == "done" and self.terminated is not None:
            state = {"terminated": dict(self.terminated)}
        elif self.phase == "crash-backoff":
            wait = backoff_seconds(self.restarts)
            message = f"back-off {_duration(wait)} restarting failed container={self.name}"
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        elif self.phase == "pull-failed":
            reason = f'failed to pull and unpack image "{self.image}": {self._pull_error()}'
            state = {"waiting": {"reason": "ErrImagePull", "message": reason}}
        elif self.phase == "pull-backoff":
            message = f'Back-off pulling image "{self.image}"'
            state = {"waiting": {"reason": "ImagePullBackOff", "message": message}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        status: dict[str, Any] = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": dict(self.last_terminated)} if self.last_terminated else {},
            "ready": self.ready(now),
            "restartCount": self.restarts,
            "image": self.image,
            "imageID": image_id(self.image) if self.started_wall else "",
            "started": self.running,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status
