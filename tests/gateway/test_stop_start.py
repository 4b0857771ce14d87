"""Stopping, starting and extending environments at the front door: who may, from which
status, the quota a start needs again, the bound of an extension, and the command published."""

from datetime import UTC, datetime, timedelta

from akros_msgs import ExtendEnvironment, StartEnvironment, StopEnvironment
from akros_readmodel import EnvironmentStatus, ReadModel
from tests.gateway.conftest import Api
from tests.gateway.helpers import as_worker, create_body, published_commands


def _set_status(redis_url: str, owner: str, name: str, status: EnvironmentStatus) -> None:
    """What the worker reports, written as the worker does."""

    async def change(model: ReadModel) -> None:
        view = await model.environment(owner, name)
        assert view is not None
        await model.put_environment(view.model_copy(update={"status": status}))

    as_worker(redis_url, change)


def _status(api: Api, headers: dict[str, str], name: str = "lab") -> str:
    status: str = api.client.get(f"/v1/environments/{name}", headers=headers).json()["status"]
    return status


def test_a_ready_environment_is_stopped_through_a_published_command(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    _set_status(redis_url, "alice", "lab", EnvironmentStatus.READY)

    answer = api.client.post("/v1/environments/lab/stop", headers=api.alice)
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"/v1/requests/{answer.json()['request_id']}"
    stop = published_commands(redis_url)[-1]
    assert isinstance(stop, StopEnvironment)
    assert (stop.owner, stop.name, stop.request_id) == ("alice", "lab", answer.json()["request_id"])
    assert _status(api, api.alice) == "stopping"


def test_only_a_ready_environment_can_be_stopped_and_only_a_stopped_one_started(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    published = len(published_commands(redis_url))
    still_starting = api.client.post("/v1/environments/lab/stop", headers=api.alice)
    assert still_starting.status_code == 409
    assert "still starting" in still_starting.json()["detail"]
    not_stopped = api.client.post("/v1/environments/lab/start", headers=api.alice)
    assert not_stopped.status_code == 409
    assert "starting already" in not_stopped.json()["detail"]
    assert len(published_commands(redis_url)) == published, "nothing published when refused"


def test_a_stopped_environment_starts_again_as_a_new_request(api: Api, redis_url: str) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    _set_status(redis_url, "alice", "lab", EnvironmentStatus.STOPPED)

    answer = api.client.post("/v1/environments/lab/start", headers=api.alice)
    assert answer.status_code == 202, answer.text
    start = published_commands(redis_url)[-1]
    assert isinstance(start, StartEnvironment)
    shown = api.client.get("/v1/environments/lab", headers=api.alice).json()
    assert shown["status"] == "pending"
    request = api.client.get(f"/v1/requests/{answer.json()['request_id']}", headers=api.alice)
    assert request.json()["status"] == "pending"


def test_a_start_needs_room_in_the_quota_again_but_not_another_environment(
    api: Api, redis_url: str
) -> None:
    """alice's quota (the tests' default) allows the CPUs of one such environment at a time:
    the stopped one holds none, so a second fits, and the first cannot start beside it."""
    quota = api.client.get("/v1/me", headers=api.alice).json()["quota"]
    big = create_body("big", cpu=quota["resources"]["cpu"])
    assert api.client.post("/v1/environments", json=big, headers=api.alice).status_code == 202
    _set_status(redis_url, "alice", "big", EnvironmentStatus.STOPPED)
    holding = api.client.get("/v1/me", headers=api.alice).json()["holding"]
    assert (holding["resources"]["cpu"], holding["environments"]) == ("0", 1)

    other = create_body("other", cpu=quota["resources"]["cpu"])
    assert api.client.post("/v1/environments", json=other, headers=api.alice).status_code == 202
    refused = api.client.post("/v1/environments/big/start", headers=api.alice)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "quota_exceeded"
    assert _status(api, api.alice, "big") == "stopped"


def test_researchers_stop_and_start_only_their_own_environments_admins_anyones(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.bob)
    _set_status(redis_url, "bob", "lab", EnvironmentStatus.READY)
    for verb in ("stop", "start"):
        answer = api.client.post(f"/v1/environments/lab/{verb}?user=bob", headers=api.alice)
        assert answer.status_code == 403, (verb, answer.text)
    assert api.client.post("/v1/environments/lab/stop?user=bob", headers=api.admin).status_code == (
        202
    )
    _set_status(redis_url, "bob", "lab", EnvironmentStatus.STOPPED)
    assert api.client.post(
        "/v1/environments/lab/start?user=bob", headers=api.admin
    ).status_code == (202)


def test_stopping_or_starting_what_is_not_there_is_not_found(api: Api, redis_url: str) -> None:
    for path in ("/v1/environments/ghost/stop", "/v1/environments/0/start"):
        assert api.client.post(path, headers=api.alice).status_code == 404, path
    assert published_commands(redis_url) == []


def _extended(redis_url: str) -> ExtendEnvironment:
    extend = published_commands(redis_url)[-1]
    assert isinstance(extend, ExtendEnvironment)
    return extend


def test_an_extension_moves_the_expiry_on_from_it_within_the_platforms_bound(
    api: Api, redis_url: str
) -> None:
    """The tests' gateway extends by at most a day (AKROS_EXTEND_BY_S's default), and never
    further than that ahead of now."""
    soon = datetime.now(UTC) + timedelta(hours=2)
    body = create_body(expires_at=soon.isoformat())
    assert api.client.post("/v1/environments", json=body, headers=api.alice).status_code == 202

    answer = api.client.post("/v1/environments/lab/extend", json={"hours": 3}, headers=api.alice)
    assert answer.status_code == 202, answer.text
    assert abs(_extended(redis_url).expires_at - (soon + timedelta(hours=3))) < timedelta(seconds=1)

    by_default = api.client.post("/v1/environments/lab/extend", headers=api.alice)
    assert by_default.status_code == 202, by_default.text
    a_day_from_now = datetime.now(UTC) + timedelta(days=1)
    assert abs(_extended(redis_url).expires_at - a_day_from_now) < timedelta(seconds=5)

    too_far = api.client.post("/v1/environments/lab/extend", json={"hours": 25}, headers=api.alice)
    assert too_far.status_code == 422, too_far.text
    assert "at most 24 hours" in too_far.text


def test_an_environment_without_an_expiry_or_someone_elses_cannot_be_extended(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    published = len(published_commands(redis_url))
    no_expiry = api.client.post("/v1/environments/lab/extend", headers=api.alice)
    assert no_expiry.status_code == 409
    assert "no expiry" in no_expiry.json()["detail"]
    forbidden = api.client.post("/v1/environments/lab/extend?user=alice", headers=api.bob)
    assert forbidden.status_code == 403
    assert len(published_commands(redis_url)) == published
