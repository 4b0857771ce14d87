"""Start records in Redis: each start is settled exactly once."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from akros_k8s_worker.starts import SETTLE_LEASE_S, StartBook, StartRecord
from akros_msgs import Resources
from akros_readmodel import EnvironmentStatus, EnvironmentView, ReadModel
from tests.k8s_worker.conftest import ALICE


@pytest.fixture
async def book(redis_url: str) -> AsyncIterator[StartBook]:
    client = aioredis.Redis.from_url(redis_url)
    yield StartBook(client)
    await client.aclose()


def _record(deadline: float = 2e9, request_id: str = "r1") -> StartRecord:
    return StartRecord(
        owner="alice", name="exp", request_id=request_id, actor=ALICE, deadline=deadline
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
    book: StartBook, redis_url: str
) -> None:
    pending = _pending()
    assert await book.expect(_record(), pending)
    assert await book.get("alice", "exp") == _record()
    client = aioredis.Redis.from_url(redis_url)
    try:
        model = ReadModel(client)
        assert await model.environment("alice", "exp") == pending
        assert [v.name for v in await model.environments("alice")] == ["exp"]
    finally:
        await client.aclose()


async def test_a_redelivered_create_of_a_ready_environment_records_nothing(
    book: StartBook, redis_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        model = ReadModel(client)
        ready = _pending().model_copy(update={"status": EnvironmentStatus.READY})
        await model.put_environment(ready)
        assert not await book.expect(_record(), _pending())
        assert await model.environment("alice", "exp") == ready
        assert await book.get("alice", "exp") is None
        # Another request's ready view under this name is no reason to skip this one.
        assert await book.expect(_record(request_id="r2"), _pending(request_id="r2"))
        view = await model.environment("alice", "exp")
        assert view is not None
        assert (view.status, view.request_id) == (EnvironmentStatus.PENDING, "r2")
    finally:
        await client.aclose()


async def test_only_one_of_many_claimants_settles_a_start(book: StartBook) -> None:
    await book.expect(_record(), _pending())
    claims = await asyncio.gather(*(book.claim("alice", "exp") for _ in range(10)))
    assert claims.count(True) == 1


async def test_noting_a_reason_does_not_revive_a_settled_start(book: StartBook) -> None:
    record = _record()
    await book.expect(record, _pending())
    assert await book.claim("alice", "exp")
    await book.settled("alice", "exp")
    await book.note(record, "waiting for room in the cluster")
    assert await book.get("alice", "exp") is None


async def test_a_start_whose_claimant_died_is_abandoned_once_its_lease_runs_out(
    book: StartBook,
) -> None:
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp", now=100.0)
    assert not await book.claim("alice", "exp", now=101.0), "the lease holds"
    assert (await book.due(now=101.0)).abandoned == []
    later = 100.0 + SETTLE_LEASE_S + 1
    [abandoned] = (await book.due(now=later)).abandoned
    assert abandoned.request_id == "r1"
    assert await book.claim("alice", "exp", now=later), "claimed again after the lease"


async def test_a_start_being_reported_is_not_overdue_and_a_settled_one_is_gone(
    book: StartBook,
) -> None:
    await book.expect(_record(deadline=1.0), _pending())
    assert await book.claim("alice", "exp", now=2.0)
    assert (await book.due(now=3.0)).overdue == []
    await book.settled("alice", "exp")
    assert (await book.due(now=3.0)).overdue == []
    assert (await book.due(now=1e10)).abandoned == []


async def test_expecting_a_start_again_drops_a_dead_claimants_lease(book: StartBook) -> None:
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp", now=100.0)
    await book.expect(_record(), _pending())
    assert await book.claim("alice", "exp", now=101.0)


async def test_a_noted_reason_is_kept_for_the_timeout_message(book: StartBook) -> None:
    record = _record(deadline=1.0)
    await book.expect(record, _pending())
    await book.note(record, "waiting for room in the cluster: 0/4 nodes")
    [overdue] = (await book.due(now=2.0)).overdue
    assert overdue.last_reason == "waiting for room in the cluster: 0/4 nodes"
