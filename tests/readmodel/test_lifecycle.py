"""The reconciler's records in Redis: each start and each deletion is settled exactly once."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from akros_devtools import wait_until_async
from akros_msgs import Actor, Resources, Role, Source
from akros_readmodel import (
    ALIVE_TTL_S,
    SETTLE_LEASE_S,
    DeletionRecord,
    EnvironmentStatus,
    EnvironmentView,
    Expected,
    LifecycleBook,
    ReadModel,
    StartRecord,
    StopExpected,
    StopRecord,
)

ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)


@pytest.fixture
async def book(redis_url: str) -> AsyncIterator[LifecycleBook]:
    client = aioredis.Redis.from_url(redis_url)
    yield LifecycleBook(client)
    await client.aclose()


def _record(request_id: str = "r1") -> StartRecord:
    return StartRecord(
        owner="alice", name="exp", request_id=request_id, actor=ALICE, stage_since=100.0
    )


def _pending(request_id: str = "r1") -> EnvironmentView:
    return EnvironmentView(
        owner="alice",
        name="exp",
        status=EnvironmentStatus.PENDING,
        image="quant-cpu",
        resources=Resources.of("1", "1Gi"),
        volume_size="10Gi",
        request_id=request_id,
    )


async def test_a_start_is_recorded_with_its_pending_view_in_one_step(
    book: LifecycleBook, redis_url: str
) -> None:
    pending = _pending()
    assert await book.expect(_record(), pending) is Expected.RECORDED
    assert await book.get("alice", "exp") == _record()
    client = aioredis.Redis.from_url(redis_url)
    try:
        model = ReadModel(client)
        assert await model.environment("alice", "exp") == pending
        assert [v.name for v in await model.environments("alice")] == ["exp"]
    finally:
        await client.aclose()


async def test_a_redelivered_create_of_a_ready_environment_records_nothing(
    book: LifecycleBook, redis_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        model = ReadModel(client)
        ready = _pending().model_copy(update={"status": EnvironmentStatus.READY})
        await model.put_environment(ready)
        assert await book.expect(_record(), _pending()) is Expected.ALREADY_READY
        assert await model.environment("alice", "exp") == ready
        assert await book.get("alice", "exp") is None
        # Another request's ready view under this name is no reason to skip this one.
        recorded = await book.expect(_record(request_id="r2"), _pending(request_id="r2"))
        assert recorded is Expected.RECORDED
        view = await model.environment("alice", "exp")
        assert view is not None
        assert (view.status, view.request_id) == (EnvironmentStatus.PENDING, "r2")
    finally:
        await client.aclose()


async def test_only_one_of_many_claimants_settles_a_start(book: LifecycleBook) -> None:
    await book.expect(_record(), _pending())
    claims = await asyncio.gather(*(book.claim("alice", "exp") for _ in range(10)))
    assert claims.count(True) == 1


async def test_recording_a_stage_does_not_revive_a_settled_start(book: LifecycleBook) -> None:
    record = _record()
    await book.expect(record, _pending())
    assert await book.claim("alice", "exp")
    await book.settled("alice", "exp")
    assert await book.record_stage(record, "pulling image", "img:1", since=101.0) is None
    assert await book.get("alice", "exp") is None
    assert await book.all() == []


async def test_a_stage_never_overwrites_a_start_being_reported(
    book: LifecycleBook, redis_url: str
) -> None:
    record = _record()
    await book.expect(record, _pending())
    assert await book.claim("alice", "exp")
    assert await book.record_stage(record, "starting", "waiting", since=101.0) is None
    assert await book.get("alice", "exp") == record
    client = aioredis.Redis.from_url(redis_url)
    try:
        view = await ReadModel(client).environment("alice", "exp")
        assert view is not None
        assert view.stage is None
    finally:
        await client.aclose()


async def test_a_recorded_stage_shows_in_the_view(book: LifecycleBook, redis_url: str) -> None:
    record = _record()
    await book.expect(record, _pending())
    await book.record_stage(record, "pulling image", "pulling img:1", since=101.0)
    client = aioredis.Redis.from_url(redis_url)
    try:
        view = await ReadModel(client).environment("alice", "exp")
        assert view is not None
        assert (view.stage, view.progress) == ("pulling image", "pulling img:1")
    finally:
        await client.aclose()


async def test_a_start_whose_claimant_died_can_be_claimed_once_its_lease_runs_out(
    book: LifecycleBook,
) -> None:
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp", now=100.0)
    assert not await book.claim("alice", "exp", now=101.0), "the lease holds"
    later = 100.0 + SETTLE_LEASE_S + 1
    assert await book.claim("alice", "exp", now=later), "claimed again after the lease"


async def test_a_lease_ends_with_its_holder_before_its_time_runs_out(
    book: LifecycleBook, redis_url: str
) -> None:
    await book.expect(_record(), _pending())
    client = aioredis.Redis.from_url(redis_url)
    try:
        dead = LifecycleBook(client, holder="killed-worker")
        alive = LifecycleBook(client, holder="next-worker")
        assert await dead.claim("alice", "exp", now=100.0)
        assert not await alive.claim("alice", "exp", now=101.0), "its holder is alive"
        assert 0 < await alive.held_for_s("alice", "exp", now=101.0) <= ALIVE_TTL_S
        await client.delete("akros:worker:alive:killed-worker")  # its key ran out: it died
        assert await dead.held_for_s("alice", "exp", now=102.0) == 0, "held by the dead"
        assert await alive.claim("alice", "exp", now=102.0), "the dead holder's lease held"
        assert not await dead.claim("alice", "exp", now=103.0), "the new lease is not held"
    finally:
        await client.aclose()


async def test_a_worker_keeps_its_key_alive_while_it_runs(
    book: LifecycleBook, redis_url: str
) -> None:
    beating = asyncio.ensure_future(book.keep_alive())
    client = aioredis.Redis.from_url(redis_url)
    try:
        key = f"akros:worker:alive:{book.holder}"
        await wait_until_async(lambda: client.exists(key), timeout_s=1, what="the heartbeat")
        assert 0 < await client.ttl(key) <= ALIVE_TTL_S
    finally:
        beating.cancel()
        await client.aclose()


async def test_expecting_a_start_again_drops_a_dead_claimants_lease(book: LifecycleBook) -> None:
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp", now=100.0)
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp", now=101.0)


async def test_a_recorded_stage_is_kept_for_the_reconciler(book: LifecycleBook) -> None:
    record = _record()
    await book.expect(record, _pending())
    updated = await book.record_stage(record, "pulling image", "pulling img:1", since=105.0)
    assert updated is not None
    assert await book.get("alice", "exp") == updated
    assert await book.all() == [updated]
    assert (updated.stage, updated.detail, updated.stage_since) == (
        "pulling image",
        "pulling img:1",
        105.0,
    )


def _deletion(request_id: str = "d1", **changes: object) -> DeletionRecord:
    return DeletionRecord(
        owner="alice", name="exp", request_id=request_id, actor=ALICE, requested_at=200.0
    ).model_copy(update=changes)


async def test_a_deletion_drops_the_start_of_its_name_and_supersedes_it(
    book: LifecycleBook,
) -> None:
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp")
    assert await book.expect_deletion(_deletion()) == (), "its claimant is reporting it"
    assert await book.get("alice", "exp") is None
    assert await book.intent("alice", "exp") == _deletion()
    assert await book.open_keys() == [("alice", "exp")]


async def test_no_start_is_recorded_while_a_deletion_of_its_name_is_under_way(
    book: LifecycleBook,
) -> None:
    assert await book.expect_deletion(_deletion()) is not None
    assert await book.expect(_record(request_id="r9"), _pending("r9")) is Expected.BEING_DELETED
    assert await book.get("alice", "exp") is None
    await book.deletion_settled("alice", "exp")
    assert await book.expect(_record(request_id="r9"), _pending("r9")) is Expected.RECORDED


async def test_a_second_deletion_of_a_name_is_refused_and_a_redelivered_one_keeps_its_progress(
    book: LifecycleBook,
) -> None:
    assert await book.expect_deletion(_deletion()) is not None
    progressed = await book.record_workload_deleted(_deletion())
    assert progressed is not None
    assert await book.expect_deletion(_deletion()) is not None, "the same request, redelivered"
    assert await book.deletion("alice", "exp") == progressed
    assert await book.expect_deletion(_deletion(request_id="d2")) is None


async def test_progress_is_never_written_over_another_requests_record(
    book: LifecycleBook,
) -> None:
    await book.expect(_record("r1"), _pending("r1"))
    await book.settled("alice", "exp")
    await book.expect(_record("r2"), _pending("r2"))
    assert await book.record_stage(_record("r1"), "pulling_image", "late news", 1.0) is None
    current = await book.get("alice", "exp")
    assert current is not None
    assert (current.request_id, current.stage) == ("r2", "scheduling")


async def test_only_one_of_many_claimants_reports_a_deletion(book: LifecycleBook) -> None:
    await book.expect_deletion(_deletion())
    claims = await asyncio.gather(*(book.claim_deletion("alice", "exp") for _ in range(10)))
    assert claims.count(True) == 1


def _stop(request_id: str = "s1") -> StopRecord:
    return StopRecord(
        owner="alice", name="exp", request_id=request_id, actor=ALICE, requested_at=300.0
    )


async def test_a_deletion_ends_the_starts_and_stops_it_drops_that_nobody_reports(
    book: LifecycleBook,
) -> None:
    await book.expect(_record("r1"), _pending("r1"))
    assert await book.expect_deletion(_deletion("d1")) == ("r1",)
    await book.deletion_settled("alice", "exp")
    assert await book.expect_stop(_stop("s1")) is StopExpected.RECORDED
    assert await book.expect_deletion(_deletion("d2")) == ("s1",)
    assert await book.intent("alice", "exp") == _deletion("d2")


async def test_a_stop_waits_for_no_start_or_deletion_and_comes_before_a_start(
    book: LifecycleBook,
) -> None:
    await book.expect(_record("r1"), _pending("r1"))
    assert await book.expect_stop(_stop()) is StopExpected.STARTING
    await book.settled("alice", "exp")
    assert await book.expect_stop(_stop()) is StopExpected.RECORDED
    assert await book.expect_stop(_stop()) is StopExpected.RECORDED, "redelivered"
    assert await book.expect_stop(_stop("s2")) is StopExpected.ANOTHER_STOP
    assert await book.expect(_record("r2"), _pending("r2")) is Expected.BEING_STOPPED
    assert await book.intent("alice", "exp") == _stop()
    assert await book.open_keys() == [("alice", "exp")]

    scaled = await book.record_scaled(_stop())
    assert scaled is not None
    assert scaled.scaled
    assert await book.claim_stop("alice", "exp")
    assert not await book.claim_stop("alice", "exp"), "one claimant at a time"
    assert await book.stop_held_for_s("alice", "exp") > 0
    await book.stop_settled("alice", "exp")
    assert await book.intent("alice", "exp") is None
    assert await book.expect(_record("r2"), _pending("r2")) is Expected.RECORDED

    await book.settled("alice", "exp")
    await book.expect_deletion(_deletion())
    assert await book.expect_stop(_stop("s3")) is StopExpected.BEING_DELETED
