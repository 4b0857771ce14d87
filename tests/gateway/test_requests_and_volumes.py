"""Request status and kept volumes, as the k8s_worker leaves them in the read model."""

from akros_msgs import DeleteVolume, FailureCode
from akros_readmodel import ReadModel, RequestState, VolumeView, utc_now
from tests.gateway.conftest import Api
from tests.gateway.helpers import as_worker, create_body, published_commands


def _create(api: Api, headers: dict[str, str], name: str = "lab") -> str:
    answer = api.client.post("/v1/environments", json=create_body(name), headers=headers)
    request_id: str = answer.json()["request_id"]
    return request_id


def test_a_new_request_is_pending(api: Api) -> None:
    request_id = _create(api, api.alice)
    shown = api.client.get(f"/v1/requests/{request_id}", headers=api.alice).json()
    assert shown["status"] == "pending"
    assert (shown["command_type"], shown["owner"], shown["name"]) == (
        "create_environment",
        "alice",
        "lab",
    )


def test_a_failed_request_shows_the_code_and_the_reason(api: Api, redis_url: str) -> None:
    request_id = _create(api, api.alice)

    async def fail(model: ReadModel) -> None:
        view = await model.request(request_id)
        assert view is not None
        await model.put_request(
            view.model_copy(
                update={
                    "state": RequestState.FAILED,
                    "code": FailureCode.UNSCHEDULABLE,
                    "reason": "No node has 64 free GPUs.",
                    "updated_at": utc_now(),
                }
            )
        )

    as_worker(redis_url, fail)
    shown = api.client.get(f"/v1/requests/{request_id}", headers=api.alice).json()
    assert (shown["status"], shown["code"], shown["reason"]) == (
        "failed",
        "unschedulable",
        "No node has 64 free GPUs.",
    )


def test_a_researcher_may_not_read_someone_elses_request_but_an_admin_may(api: Api) -> None:
    request_id = _create(api, api.bob)
    assert api.client.get(f"/v1/requests/{request_id}", headers=api.alice).status_code == 403
    assert api.client.get(f"/v1/requests/{request_id}", headers=api.admin).status_code == 200


def test_an_unknown_request_is_not_found(api: Api) -> None:
    assert api.client.get("/v1/requests/nope", headers=api.alice).status_code == 404


def _keep_volume(redis_url: str, owner: str, name: str) -> None:
    async def keep(model: ReadModel) -> None:
        await model.put_volume(VolumeView(owner=owner, name=name, size="20Gi", in_use=False))

    as_worker(redis_url, keep)


def test_a_researcher_lists_their_kept_volumes_only(api: Api, redis_url: str) -> None:
    _keep_volume(redis_url, "alice", "old")
    _keep_volume(redis_url, "bob", "his")
    answer = api.client.get("/v1/volumes", headers=api.alice)
    assert answer.status_code == 200
    assert [(v["owner"], v["name"], v["size"]) for v in answer.json()["volumes"]] == [
        ("alice", "old", "20Gi")
    ]
    assert api.client.get("/v1/volumes?user=bob", headers=api.alice).status_code == 403
    assert [
        v["name"]
        for v in api.client.get("/v1/volumes?user=bob", headers=api.admin).json()["volumes"]
    ] == ["his"]


def test_deleting_a_kept_volume_publishes_delete_volume(api: Api, redis_url: str) -> None:
    _keep_volume(redis_url, "alice", "old")
    answer = api.client.delete("/v1/volumes/old", headers=api.alice)
    assert answer.status_code == 202
    assert answer.headers["Location"] == f"/v1/requests/{answer.json()['request_id']}"
    [command] = published_commands(redis_url)
    assert isinstance(command, DeleteVolume)
    assert (command.owner, command.name) == ("alice", "old")


def test_a_volume_whose_environment_still_exists_is_a_conflict(api: Api, redis_url: str) -> None:
    _create(api, api.alice, "lab")
    _keep_volume(redis_url, "alice", "lab")
    answer = api.client.delete("/v1/volumes/lab", headers=api.alice)
    assert answer.status_code == 409
    assert "purge_volume=true" in answer.json()["detail"]
    assert len(published_commands(redis_url)) == 1


def test_deleting_an_unknown_volume_is_not_found(api: Api, redis_url: str) -> None:
    assert api.client.delete("/v1/volumes/nothing", headers=api.alice).status_code == 404
    assert published_commands(redis_url) == []
