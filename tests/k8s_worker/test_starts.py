"""Start records in Redis: each start is settled exactly once."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from akros_k8s_worker.starts import StartBook, StartRecord
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
    await book.note(record, "waiting for room in the cluster")
    assert await book.get("alice", "exp") is None


async def test_a_noted_reason_is_kept_for_the_timeout_message(book: StartBook) -> None:
    record = _record(deadline=1.0)
    await book.expect(record)
    await book.note(record, "waiting for room in the cluster: 0/4 nodes")
    [overdue] = await book.overdue(now=2.0)
    assert overdue.last_reason == "waiting for room in the cluster: 0/4 nodes"
