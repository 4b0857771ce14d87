"""The usage history's downsampling: one point of means per environment per step."""

from datetime import UTC, datetime

from akros_monitor.underuse import EnvironmentUse
from akros_monitor.usage import HistoryStep

AT = datetime(2026, 11, 2, 9, 5, tzinfo=UTC)
GI = 1024**3


def _use(cpu_used_millis: int, gpu: float | None) -> EnvironmentUse:
    return EnvironmentUse(
        requested=(2000, 8 * GI, 1),
        cpu_used_millis=cpu_used_millis,
        memory_used_bytes=2 * GI,
        gpu_utilisation=gpu,
        started_at=None,
        exempt=False,
    )


def test_a_step_becomes_one_point_of_means_per_environment() -> None:
    step = HistoryStep()
    step.add({("ada", "lab"): _use(100, 0.2)})
    step.add({("ada", "lab"): _use(300, None), ("bob", "lab"): _use(1000, 0.9)})
    points = step.close(AT)
    ada = points[("ada", "lab")]
    assert (ada.at, ada.cpu_used_millis, ada.cpu_requested_millis) == (AT, 200, 2000)
    assert ada.gpu_utilisation == 0.2, "only the samples that knew GPU use count"
    assert points[("bob", "lab")].cpu_used_millis == 1000


def test_the_next_step_starts_empty() -> None:
    step = HistoryStep()
    step.add({("ada", "lab"): _use(100, None)})
    step.close(AT)
    assert step.close(AT) == {}
