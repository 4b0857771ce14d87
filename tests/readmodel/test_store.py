"""The read model against a real Redis."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from akros_msgs import FailureCode, Resources
from akros_readmodel import (
    EnvironmentStatus,
    EnvironmentView,
    ReadModel,
    RequestState,
    RequestView,
    VolumeView,
)
from akros_readmodel.store import REQUEST_TTL_S, lock_wait_pauses
from tests.concurrency import most_inside_at_once


@pytest.fixture
async def model(redis_url: str) -> AsyncIterator[ReadModel]:
    client = aioredis.Redis.from_url(redis_url)
    yield ReadModel(client)
    await client.aclose()


def _env(owner: str, name: str, status: EnvironmentStatus, gpus: int = 0) -> EnvironmentView:
    return EnvironmentView(
        owner=owner,
        name=name,
        status=status,
        image="pytorch",
        resources=Resources.of("2", "8Gi", gpus),
        volume_size="20Gi",
        request_id=f"req-{owner}-{name}",
    )


async def test_environments_are_listed_per_owner_and_for_everybody(model: ReadModel) -> None:
    await model.put_environment(_env("alice", "b", EnvironmentStatus.READY))
    await model.put_environment(_env("alice", "a", EnvironmentStatus.PENDING))
    await model.put_environment(_env("bob", "x", EnvironmentStatus.READY))
    assert [e.name for e in await model.environments("alice")] == ["a", "b"]
    assert [(e.owner, e.name) for e in await model.environments()] == [
        ("alice", "a"),
        ("alice", "b"),
        ("bob", "x"),
    ]
    await model.remove_environment("alice", "a")
    assert await model.environment("alice", "a") is None
    assert [e.name for e in await model.environments("alice")] == ["b"]


async def test_failed_environments_hold_nothing_against_the_quota(model: ReadModel) -> None:
    await model.put_environment(_env("alice", "a", EnvironmentStatus.READY, gpus=1))
    await model.put_environment(_env("alice", "b", EnvironmentStatus.PENDING, gpus=2))
    await model.put_environment(_env("alice", "c", EnvironmentStatus.FAILED, gpus=4))
    holding = await model.holding("alice")
    assert holding.environments == 2
    assert holding.resources == Resources.of("4", "16Gi", 3)


async def test_a_request_id_is_recorded_once(model: ReadModel) -> None:
    view = RequestView(
        request_id="r1", state=RequestState.PENDING, command_type="create_environment", actor="al"
    )
    assert await model.add_request(view)
    assert not await model.add_request(view.model_copy(update={"command_type": "other"}))
    stored = await model.request("r1")
    assert stored is not None
    assert stored.command_type == "create_environment"


async def test_settling_a_request_gives_it_its_outcome_and_ends_its_progress(
    model: ReadModel, redis_url: str
) -> None:
    await model.add_request(
        RequestView(
            request_id="r1",
            state=RequestState.PENDING,
            command_type="create_environment",
            actor="al",
            stage="pulling image",
            progress="pulling quant-cpu:1",
        )
    )
    failed = await model.settle_request(
        "r1", RequestState.FAILED, code=FailureCode.TIMEOUT, reason="pull took too long"
    )
    assert failed is not None
    assert (failed.state, failed.code, failed.reason) == (
        RequestState.FAILED,
        FailureCode.TIMEOUT,
        "pull took too long",
    )
    assert (failed.stage, failed.progress) == ("pulling image", "pulling quant-cpu:1")
    applied = await model.settle_request("r1", RequestState.APPLIED, stage="ready")
    assert applied is not None
    assert applied == await model.request("r1")
    assert (applied.state, applied.code, applied.reason) == (RequestState.APPLIED, None, None)
    assert (applied.stage, applied.progress) == ("ready", None)
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert 0 < await client.ttl("akros:rm:req:r1") <= REQUEST_TTL_S, "kept with its TTL"
    finally:
        await client.aclose()


async def test_settling_a_request_nobody_recorded_writes_nothing(model: ReadModel) -> None:
    assert await model.settle_request("unknown", RequestState.APPLIED) is None
    assert await model.request("unknown") is None


async def test_kept_volumes_are_listed_per_owner(model: ReadModel) -> None:
    await model.put_volume(VolumeView(owner="alice", name="old", size="20Gi", in_use=False))
    assert [v.name for v in await model.volumes("alice")] == ["old"]
    await model.remove_volume("alice", "old")
    assert await model.volumes("alice") == []


async def test_the_owner_lock_serialises_concurrent_holders(model: ReadModel) -> None:
    assert await most_inside_at_once(lambda: model.owner_lock("alice"), 10, hold_s=0.01) == 1


def test_a_waiter_looks_again_after_1_ms_then_backs_off_to_10_ms() -> None:
    assert list(itertools.islice(lock_wait_pauses(), 7)) == [
        0.001,
        0.002,
        0.004,
        0.008,
        0.01,
        0.01,
        0.01,
    ]


async def test_an_underuse_exemption_holds_for_its_time_then_lapses(model: ReadModel) -> None:
    assert not await model.underuse_exempt("alice", "lab")
    await model.exempt_from_underuse("alice", "lab", seconds=1)
    assert await model.underuse_exempt("alice", "lab")
    assert not await model.underuse_exempt("alice", "other")
    await asyncio.sleep(1.2)
    assert not await model.underuse_exempt("alice", "lab")


async def test_an_expiry_warning_is_claimed_once_and_remembers_when_it_was_sent(
    model: ReadModel,
) -> None:
    assert await model.expiry_warned_at("ada", "lab", 10_000.0) is None
    before = time.time()
    assert await model.claim_expiry_warning("ada", "lab", 10_000.0, keep_s=60)
    assert not await model.claim_expiry_warning("ada", "lab", 10_000.0, keep_s=60)
    told = await model.expiry_warned_at("ada", "lab", 10_000.0)
    assert told is not None
    assert before <= told <= time.time()
    assert await model.expiry_warned_at("ada", "lab", 20_000.0) is None, "an extension's own"
    await model.release_expiry_warning("ada", "lab", 10_000.0)
    assert await model.expiry_warned_at("ada", "lab", 10_000.0) is None
