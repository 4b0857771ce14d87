"""The under-use policy with a fake clock: when a nudge is due, and when it is not."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from akros_monitor.underuse import (
    EnvironmentUse,
    UnderusePolicy,
    UnderuseState,
    assess,
    idle_stop_due,
)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
POLICY = UnderusePolicy(
    threshold=0.1, grace=timedelta(hours=4), minimum_age=15 * MINUTE, cool_down=timedelta(hours=24)
)
GI = 1024**3


def _use(
    cpu_used_millis: int,
    *,
    gpus: int = 0,
    gpu: float | None = None,
    exempt: bool = False,
) -> EnvironmentUse:
    return EnvironmentUse(
        requested=(4000, 16 * GI, gpus),
        cpu_used_millis=cpu_used_millis,
        memory_used_bytes=GI,
        gpu_utilisation=gpu,
        started_at=START,
        exempt=exempt,
    )


def _run(
    uses: list[EnvironmentUse],
    *,
    every: timedelta = 5 * MINUTE,
    state: UnderuseState | None = None,
    first: datetime = START,
) -> tuple[UnderuseState, list[datetime]]:
    """Feed one sample per ``every`` from ``first``; the state and when notifications fell."""
    state = state or UnderuseState()
    notified: list[datetime] = []
    for step, use in enumerate(uses):
        now = first + step * every
        state, underuse = assess(state, use, now, POLICY)
        if underuse is not None:
            notified.append(now)
    return state, notified


def _idle_for(duration: timedelta, every: timedelta = 5 * MINUTE) -> list[EnvironmentUse]:
    return [_use(100)] * (duration // every + 1)


def test_an_idle_environment_is_flagged_once_the_grace_period_has_passed() -> None:
    _, notified = _run(_idle_for(6 * timedelta(hours=1)))
    # Samples younger than 15 minutes are ignored, so the streak starts at 09:15.
    assert notified == [START + 15 * MINUTE + timedelta(hours=4)]


def test_the_notification_carries_the_figures_of_the_streak() -> None:
    state, _ = _run(_idle_for(4 * timedelta(hours=1)))
    later = START + 5 * timedelta(hours=1)
    _, underuse = assess(state, _use(200), later, POLICY)
    assert underuse is not None
    assert underuse.since == START + 15 * MINUTE
    assert 0.025 < underuse.cpu_used_fraction < 0.05  # 100m and one 200m of 4 cores
    assert underuse.gpu_utilisation is None


def test_a_busy_environment_is_never_flagged() -> None:
    _, notified = _run([_use(2000)] * 500)
    assert notified == []


def test_busy_gpus_keep_an_environment_with_idle_cpus_in_use() -> None:
    _, notified = _run([_use(50, gpus=2, gpu=0.9)] * 500)
    assert notified == []


def test_idle_gpus_are_reported_with_their_utilisation() -> None:
    state, notified = _run([_use(50, gpus=2, gpu=0.02)] * 60)
    assert len(notified) == 1
    assert state.gpu_utilisation_mean is not None
    assert abs(state.gpu_utilisation_mean - 0.02) < 1e-9


def test_the_cool_down_holds_while_the_environment_stays_idle() -> None:
    _, notified = _run(_idle_for(timedelta(hours=40)))
    first = START + 15 * MINUTE + timedelta(hours=4)
    assert notified == [first, first + timedelta(hours=24)]


def test_an_environment_that_came_back_to_life_is_not_nagged() -> None:
    idle_then_busy = _idle_for(timedelta(hours=5)) + [_use(3000)] * 100
    _, notified = _run(idle_then_busy)
    assert len(notified) == 1


def test_dropping_again_after_recovering_starts_a_fresh_grace_period() -> None:
    hour = timedelta(hours=1)
    samples = _idle_for(5 * hour) + [_use(3000)] * 12 + _idle_for(5 * hour)
    _, notified = _run(samples)
    # The second streak is notified within the cool-down of the first: it is a new one.
    assert len(notified) == 2
    assert notified[1] - notified[0] < timedelta(hours=24)


def test_a_brief_startup_lull_is_ignored() -> None:
    state, notified = _run([_use(0)] * 3)  # 09:00, 09:05, 09:10: all younger than 15 min
    assert notified == []
    assert state == UnderuseState()


def test_an_exempt_environment_is_never_flagged_and_forgets_its_streak() -> None:
    state, notified = _run([_use(0, exempt=True)] * 500)
    assert notified == []
    assert state == UnderuseState()


def test_an_environment_requesting_no_cpu_counts_as_idle_cpu() -> None:
    use = EnvironmentUse(
        requested=(0, GI, 0),
        cpu_used_millis=0,
        memory_used_bytes=0,
        gpu_utilisation=None,
        started_at=None,
        exempt=False,
    )
    assert use.cpu_fraction == 0.0


def test_an_environment_whose_gpu_use_is_unknown_is_never_called_idle_on_cpu_alone() -> None:
    state, notified = _run([_use(50, gpus=2, gpu=None)] * 500)
    assert notified == []
    assert state.low_since is None


def test_unknown_gpu_use_neither_grows_nor_ends_an_idle_streak() -> None:
    idle = _use(50, gpus=2, gpu=0.01)
    streak, _ = _run([idle] * 3, first=START + 20 * MINUTE)
    assert streak.low_since is not None
    after_unknown, _ = _run([_use(50, gpus=2, gpu=None)], state=streak, first=START + 40 * MINUTE)
    assert after_unknown == streak


def _stops(uses: list[EnvironmentUse], every: timedelta = 5 * MINUTE) -> list[datetime]:
    """When an idle stop fell due, the samples assessed as the monitor does."""
    state, stopped = UnderuseState(), []
    for step, use in enumerate(uses):
        now = START + step * every
        state, _ = assess(state, use, now, POLICY)
        state, due = idle_stop_due(state, use, now)
        if due:
            stopped.append(now)
    return stopped


def test_an_unanswered_nudge_stops_an_environment_of_an_idle_stop_profile_once() -> None:
    idle = replace(_use(100), idle_stop_after=timedelta(hours=2))
    stopped = _stops([idle] * (12 * 12))
    nudged = START + 15 * MINUTE + timedelta(hours=4)
    assert stopped == [nudged + timedelta(hours=2)]


def test_no_idle_stop_without_the_profile_asking_or_once_the_environment_is_busy_again() -> None:
    assert _stops([_use(100)] * (12 * 12)) == []
    idle = replace(_use(100), idle_stop_after=timedelta(hours=2))
    busy = replace(_use(3000), idle_stop_after=timedelta(hours=2))
    # Nudged at 13:15; busy at 14:00, idle again after: a fresh streak and a fresh nudge first.
    samples = [idle] * 60 + [busy] + [idle] * 40
    assert _stops(samples) == []


def test_an_exempt_environment_is_never_stopped_for_being_idle() -> None:
    exempt = replace(_use(100, exempt=True), idle_stop_after=timedelta(hours=1))
    assert _stops([exempt] * (12 * 12)) == []
