"""Start records in Redis: each start is settled exactly once."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from akros_k8s_worker.starts import SETTLE_LEASE_S, StartBook, StartRecord
from tests.k8s_worker.conftest import ALICE


@pytest.fixture
async def book(redis_url: str) -> AsyncIterator[StartBook]:
    client = aioredis.Redis.from_url(redis_url)
    yield StartBook(client)
    await client.aclose()


def _record(deadline: float = 2e9) -> StartRecord:
    return StartRecord(owner="alice", name="exp", request_id="r1", actor=ALICE, deadline=deadline)


async def test_only_one_of_many_claimants_settles_a_start(book: StartBook) -> None:
    await book.expect(_record())
    claims = await asyncio.gather(*(book.claim("alice", "exp") for _ in range(10)))
    assert claims.count(True) == 1


async def test_noting_a_reason_does_not_revive_a_settled_start(book: StartBook) -> None:
    record = _record()
    await book.expect(record)
    assert await book.claim("alice", "exp")
    await book.settled("alice", "exp")
    await book.note(record, "waiting for room in the cluster")
    assert await book.get("alice", "exp") is None


async def test_a_start_whose_claimant_died_is_abandoned_once_its_lease_runs_out(
    book: StartBook,
) -> None:
    await book.expect(_record())
    assert await book.claim("alice", "exp", now=100.0)
    assert not await book.claim("alice", "exp", now=101.0), "the lease holds"
    assert await book.abandoned(now=101.0) == []
    later = 100.0 + SETTLE_LEASE_S + 1
    [abandoned] = await book.abandoned(now=later)
    assert abandoned.request_id == "r1"
    assert await book.claim("alice", "exp", now=later), "claimed again after the lease"


async def test_a_start_being_reported_is_not_overdue_and_a_settled_one_is_gone(
    book: StartBook,
) -> None:
    await book.expect(_record(deadline=1.0))
    assert await book.claim("alice", "exp", now=2.0)
    assert await book.overdue(now=3.0) == []
    await book.settled("alice", "exp")
    assert await book.overdue(now=3.0) == []
    assert await book.abandoned(now=1e10) == []


async def test_expecting_a_start_again_drops_a_dead_claimants_lease(book: StartBook) -> None:
    await book.expect(_record())
    assert await book.claim("alice", "exp", now=100.0)
    await book.expect(_record())
    assert await book.claim("alice", "exp", now=101.0)


async def test_a_noted_reason_is_kept_for_the_timeout_message(book: StartBook) -> None:
    record = _record(deadline=1.0)
    await book.expect(record)
    await book.note(record, "waiting for room in the cluster: 0/4 nodes")
    [overdue] = await book.overdue(now=2.0)
    assert overdue.last_reason == "waiting for room in the cluster: 0/4 nodes"
