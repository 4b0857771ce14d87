"""Full garbage collections run on a schedule, at quiet moments, never automatically."""

import asyncio
import gc
from collections.abc import Iterator

import pytest

from akros_bus.collector import (
    Activity,
    collect_fully_when_quiet,
    freeze_startup_objects,
    full_collection_due,
)


def test_no_full_collection_before_its_time_even_when_quiet() -> None:
    assert not full_collection_due(since_last_s=59.0, idle_s=3600.0, every_s=60.0)


def test_a_due_full_collection_waits_for_a_quiet_moment() -> None:
    assert not full_collection_due(since_last_s=61.0, idle_s=0.1, every_s=60.0, quiet_after_s=0.5)
    assert full_collection_due(since_last_s=61.0, idle_s=0.6, every_s=60.0, quiet_after_s=0.5)


def test_a_full_collection_waits_no_longer_than_allowed_under_constant_load() -> None:
    figures = {"every_s": 60.0, "quiet_after_s": 0.5, "longest_delay_s": 60.0}
    assert not full_collection_due(since_last_s=119.0, idle_s=0.0, **figures)
    assert full_collection_due(since_last_s=120.0, idle_s=0.0, **figures)


def test_activity_counts_idle_time_from_the_last_note() -> None:
    activity = Activity()
    assert activity.idle_s() > 1e9  # nothing arrived yet
    activity.note()
    assert activity.idle_s() < 1.0


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_freezing_start_up_objects_turns_off_automatic_full_collections_only() -> None:
    young, middle, _ = gc.get_threshold()
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    new_young, new_middle, full = gc.get_threshold()
    assert (new_young, new_middle) == (young, middle)
    assert full >= 1_000_000


def test_activity_is_not_idle_during_a_busy_stretch_nor_right_after() -> None:
    activity = Activity()
    with activity.busy():
        assert activity.idle_s(now=1e12) == 0.0
    assert activity.idle_s() < 1.0


async def test_no_scheduled_full_collections_where_automatic_ones_were_left_on() -> None:
    """A test or tool that serves a bus in its own process never froze: the collector's own
    schedule stands, and the scheduler ends at once instead of running gc.collect() there."""
    async with asyncio.timeout(1):
        await collect_fully_when_quiet(Activity())
