"""The under-use policy: when does an environment deserve a nudge? A pure function of what
it used, what it was told before and the time, so every rule is tested with a fake clock.

An environment is under-used while its CPU use stays below ``threshold`` of its request and,
if it holds GPUs, their utilisation stays below ``threshold`` too: one busy resource is use
enough. An environment whose GPUs' use is unknown (no exporter answered for them) is not
judged at all: a GPU job leaves the CPU idle. A streak of under-use longer than the grace
period earns one notification; another follows only after the cool-down. A sample at or
above the threshold ends the streak and forgets the notification, so an environment that came
back to life is not nagged, and one that drops again later starts a fresh grace period.

An environment of a profile that asks for an idle stop is stopped once a notification has
gone unanswered for the profile's wait and it is still under-used (``idle_stop_due``): the
owner's Keep exempts it from both. The stop is asked for once per streak.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from akros_monitor.capacity import Amounts


@dataclass(frozen=True)
class UnderusePolicy:
    threshold: float
    grace: timedelta
    minimum_age: timedelta
    cool_down: timedelta


@dataclass(frozen=True)
class EnvironmentUse:
    """One sample of an environment (all its pods): what it requested and used."""

    requested: Amounts
    cpu_used_millis: int
    memory_used_bytes: int
    gpu_utilisation: float | None
    started_at: datetime | None
    exempt: bool
    idle_stop_after: timedelta | None = None
    """How long an unanswered notification waits before the stop (its profile's), if ever."""

    @property
    def gpus(self) -> int:
        return self.requested[2]

    @property
    def cpu_fraction(self) -> float:
        if self.requested[0] <= 0:
            return 0.0
        return self.cpu_used_millis / self.requested[0]


@dataclass(frozen=True)
class UnderuseState:
    """What the policy remembers of one environment between samples (kept in Redis): the
    current streak of under-use, its running means, and when it was last notified. A
    dataclass, not a model: 20,000 of them are replaced every cycle."""

    low_since: datetime | None = None
    samples: int = 0
    cpu_fraction_sum: float = 0.0
    gpu_samples: int = 0
    gpu_utilisation_sum: float = 0.0
    notified_at: datetime | None = None
    stop_asked_at: datetime | None = None

    @property
    def cpu_fraction_mean(self) -> float:
        return self.cpu_fraction_sum / self.samples if self.samples else 0.0

    @property
    def gpu_utilisation_mean(self) -> float | None:
        return self.gpu_utilisation_sum / self.gpu_samples if self.gpu_samples else None


_FORGOTTEN = UnderuseState()


@dataclass(frozen=True)
class Underuse:
    """The figures behind a notification: since when, and the means over the streak."""

    since: datetime
    cpu_used_fraction: float
    gpu_utilisation: float | None


def is_low(use: EnvironmentUse, threshold: float) -> bool:
    if use.cpu_fraction >= threshold:
        return False
    return not (use.gpus and use.gpu_utilisation is not None and use.gpu_utilisation >= threshold)


def assess(
    state: UnderuseState, use: EnvironmentUse, now: datetime, policy: UnderusePolicy
) -> tuple[UnderuseState, Underuse | None]:
    """The environment's next state and, when it is due, the notification to send."""
    if use.exempt:
        return _FORGOTTEN, None
    if use.started_at is not None and now - use.started_at < policy.minimum_age:
        # Starting up (pulling data, installing packages) looks idle and is not.
        return state, None
    if use.gpus and use.gpu_utilisation is None:
        # The GPUs' use is unknown (their node's exporter did not answer): a GPU job keeps
        # the CPU idle, so judging on CPU alone would call a busy environment idle. No
        # evidence either way: the streak neither grows nor ends.
        return state, None
    if not is_low(use, policy.threshold):
        return _FORGOTTEN, None
    gpu_known = bool(use.gpus) and use.gpu_utilisation is not None
    low_since = state.low_since or now
    state = replace(
        state,
        low_since=low_since,
        samples=state.samples + 1,
        cpu_fraction_sum=state.cpu_fraction_sum + use.cpu_fraction,
        gpu_samples=state.gpu_samples + gpu_known,
        gpu_utilisation_sum=state.gpu_utilisation_sum + (use.gpu_utilisation or 0.0) * gpu_known,
    )
    if now - low_since < policy.grace:
        return state, None
    if state.notified_at is not None and now - state.notified_at < policy.cool_down:
        return state, None
    return replace(state, notified_at=now), Underuse(
        since=low_since,
        cpu_used_fraction=state.cpu_fraction_mean,
        gpu_utilisation=state.gpu_utilisation_mean,
    )


def idle_stop_due(
    state: UnderuseState, use: EnvironmentUse, now: datetime
) -> tuple[UnderuseState, bool]:
    """The state after looking at an idle stop, and whether the stop is due now: the streak
    that earned the notification goes on (``assess`` ends it at the first busy sample), the
    profile's wait since the notification is over, and the stop was not asked for yet."""
    wait = use.idle_stop_after
    if wait is None or use.exempt or state.low_since is None or state.notified_at is None:
        return state, False
    if state.stop_asked_at is not None or now - state.notified_at < wait:
        return state, False
    return replace(state, stop_asked_at=now), True
