"""The fault scenarios of bench/resilience_faults.py, sized for CI: every accepted create ends
applied or failed exactly once, with exactly one Deployment per applied create."""

from pathlib import Path

import pytest
from bench import resilience_faults
from bench.resilience_faults import (
    FAST_CAPACITY,
    Report,
    capacity_restarts,
    kubesim_errors,
    kubesim_stall,
    redis_restart,
    rig,
    worker_sigkill,
)

from tests.cluster import platform_for_tests

pytestmark = pytest.mark.cluster
# Two scenarios inject API faults through kubesim's /_kubesim/faults: none on a named cluster.
KUBESIM_FAULTS = pytest.mark.kubesim_only(reason="injects API faults through kubesim's faults")


@pytest.fixture(autouse=True)
def _on_the_tiers_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench's rig builds its platform as the other tests do: on AKROS_TEST_KUBECONFIG's
    cluster when set (the rig's cluster file then goes unused), else on its own kubesim."""
    monkeypatch.setattr(resilience_faults, "Platform", platform_for_tests)


def _nothing_lost(report: Report) -> None:
    print(report.line())
    assert report.accepted > 0
    assert report.lost == 0
    assert report.conflicting_outcomes == 0
    assert report.duplicate_objects == 0
    assert report.orphan_objects == 0


def test_a_worker_killed_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with rig(tmp_path) as platform:
        report = worker_sigkill(platform, creates=40, kills=3)
    _nothing_lost(report)
    assert report.applied == report.accepted


def test_a_redis_restart_mid_stream_loses_no_accepted_command(tmp_path: Path) -> None:
    with rig(tmp_path) as platform:
        _nothing_lost(redis_restart(platform, creates=30))


@KUBESIM_FAULTS
def test_kubesim_failing_a_fifth_of_writes_with_500_and_429_still_converges(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as platform:
        report = kubesim_errors(platform, creates=30)
    _nothing_lost(report)
    assert report.faults > 0
    assert report.applied == report.accepted


@KUBESIM_FAULTS
def test_creates_sent_while_kubesim_is_down_wait_and_complete_after(tmp_path: Path) -> None:
    with rig(tmp_path) as platform:
        report = kubesim_stall(platform, creates=10, down_seconds=5)
    _nothing_lost(report)
    assert report.notes["outcomes_while_down"] == 0
    assert report.applied == report.accepted


@pytest.mark.gpus
def test_monitor_and_poller_restarts_never_move_auto_inference_off_its_settled_size(
    tmp_path: Path,
) -> None:
    with rig(tmp_path, cluster=None, environment=FAST_CAPACITY) as platform:
        report = capacity_restarts(platform, restarts=2)
    print(report.line())
    assert report.notes["baseline"] > 0
    assert report.tried > 0
    assert report.lost == 0
