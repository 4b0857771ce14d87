"""Usage history, per-user usage and notifications, as the monitor leaves them in the read
model."""

from datetime import UTC, datetime, timedelta

from akros_msgs import SYSTEM_ACTOR, EnvironmentExpiring, Resources, UnderusedEnvironment
from akros_readmodel import ReadModel, UsagePoint
from tests.gateway.conftest import Api
from tests.gateway.helpers import as_worker

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GI = 1024**3


def _point(minutes: int, cpu_used_millis: int) -> UsagePoint:
    return UsagePoint(
        at=AT + timedelta(minutes=minutes),
        cpu_requested_millis=2000,
        cpu_used_millis=cpu_used_millis,
        memory_requested_bytes=8 * GI,
        memory_used_bytes=GI,
        gpus=1,
        gpu_utilisation=0.5,
    )


def _record(redis_url: str, points: dict[tuple[str, str], UsagePoint], keep: int = 10) -> None:
    async def record(read_model: ReadModel) -> None:
        await read_model.record_usage(points, keep=keep)

    as_worker(redis_url, record)


def test_an_owner_reads_the_history_of_their_environment_oldest_first(
    api: Api, redis_url: str
) -> None:
    for minute, used in ((0, 100), (5, 300), (10, 900)):
        _record(redis_url, {("alice", "lab"): _point(minute, used)})
    answer = api.client.get("/v1/environments/lab/usage", headers=api.alice)
    assert answer.status_code == 200, answer.text
    assert [p["cpu_used_millis"] for p in answer.json()["points"]] == [100, 300, 900]


def test_the_history_stays_bounded(api: Api, redis_url: str) -> None:
    for minute in range(6):
        _record(redis_url, {("alice", "lab"): _point(minute, minute)}, keep=4)
    answer = api.client.get("/v1/environments/lab/usage", headers=api.alice).json()
    assert [p["cpu_used_millis"] for p in answer["points"]] == [2, 3, 4, 5]


def test_someone_elses_usage_is_for_admins_only(api: Api, redis_url: str) -> None:
    _record(redis_url, {("bob", "lab"): _point(0, 100)})
    assert (
        api.client.get("/v1/environments/lab/usage?user=bob", headers=api.alice).status_code == 403
    )
    assert (
        api.client.get("/v1/environments/lab/usage?user=bob", headers=api.admin).status_code == 200
    )


def test_an_unknown_environment_has_no_usage(api: Api) -> None:
    assert api.client.get("/v1/environments/nothing/usage", headers=api.alice).status_code == 404


def test_admins_see_each_users_latest_usage_added_up(api: Api, redis_url: str) -> None:
    _record(
        redis_url,
        {
            ("alice", "a1"): _point(0, 100),
            ("alice", "a2"): _point(0, 300),
            ("bob", "b1"): _point(0, 50),
        },
    )
    assert api.client.get("/v1/usage", headers=api.alice).status_code == 403
    users = api.client.get("/v1/usage", headers=api.admin).json()["users"]
    by_user = {u["user"]: u for u in users}
    assert by_user["alice"]["environments"] == 2
    assert by_user["alice"]["cpu_used_millis"] == 400
    assert by_user["alice"]["cpu_requested_millis"] == 4000
    assert by_user["bob"]["cpu_used_millis"] == 50


def test_owners_read_only_their_own_notifications_newest_first(api: Api, redis_url: str) -> None:
    def notice(owner: str, name: str) -> UnderusedEnvironment:
        return UnderusedEnvironment(
            request_id="underuse",
            actor=SYSTEM_ACTOR,
            owner=owner,
            name=name,
            since=AT,
            requested=Resources(cpu_millis=2000, memory_bytes=8 * GI, gpus=1),
            cpu_used_fraction=0.02,
            gpu_utilisation=0.0,
            threshold=0.1,
        )

    expiring = EnvironmentExpiring(
        request_id="expiring",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="soon",
        expires_at=AT,
        extend_by_s=86_400,
    )

    async def add(read_model: ReadModel) -> None:
        await read_model.add_notifications([notice("alice", "old"), notice("bob", "b1")])
        await read_model.add_notifications([notice("alice", "new")])
        await read_model.add_notifications([expiring])

    as_worker(redis_url, add)
    answer = api.client.get("/v1/notifications", headers=api.alice)
    assert answer.status_code == 200, answer.text
    listed = answer.json()["notifications"]
    assert [(n["type"], n["name"]) for n in listed] == [
        ("environment_expiring", "soon"),
        ("underused_environment", "new"),
        ("underused_environment", "old"),
    ]
