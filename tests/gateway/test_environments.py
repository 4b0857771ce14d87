"""Listing, showing and deleting environments: researchers see their own, admins everybody's."""

from akros_msgs import DeleteEnvironment
from akros_readmodel import EnvironmentStatus, ReadModel
from tests.gateway.conftest import Api
from tests.gateway.helpers import as_worker, create_body, published_commands


def _names(api: Api, headers: dict[str, str], query: str = "") -> list[tuple[str, str]]:
    answer = api.client.get(f"/v1/environments{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return [(env["owner"], env["name"]) for env in answer.json()["environments"]]


def _create_some(api: Api) -> None:
    for headers, name in ((api.alice, "a1"), (api.alice, "a2"), (api.bob, "b1")):
        api.client.post("/v1/environments", json=create_body(name), headers=headers)


def test_a_researcher_lists_only_their_own_environments(api: Api) -> None:
    _create_some(api)
    assert _names(api, api.alice) == [("alice", "a1"), ("alice", "a2")]
    assert _names(api, api.bob) == [("bob", "b1")]


def test_an_admin_lists_everybodys_environments_or_one_users(api: Api) -> None:
    _create_some(api)
    assert _names(api, api.admin) == [("alice", "a1"), ("alice", "a2"), ("bob", "b1")]
    assert _names(api, api.admin, "?user=bob") == [("bob", "b1")]


def test_a_researcher_filtering_on_someone_else_is_forbidden(api: Api) -> None:
    _create_some(api)
    assert api.client.get("/v1/environments?user=bob", headers=api.alice).status_code == 403
    assert _names(api, api.alice, "?user=alice") == [("alice", "a1"), ("alice", "a2")]


def test_someone_elses_environment_is_forbidden_to_a_researcher(api: Api) -> None:
    _create_some(api)
    answer = api.client.get("/v1/environments/b1?user=bob", headers=api.alice)
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"
    assert api.client.get("/v1/environments/b1?user=bob", headers=api.admin).status_code == 200


def test_an_unknown_environment_is_not_found(api: Api) -> None:
    answer = api.client.get("/v1/environments/nothing", headers=api.alice)
    assert answer.status_code == 404
    assert answer.json()["detail"] == "alice has no environment named 'nothing'."


def test_the_worker_outcome_shows_in_the_environment(api: Api, redis_url: str) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)

    async def ready(model: ReadModel) -> None:
        view = await model.environment("alice", "lab")
        assert view is not None
        await model.put_environment(
            view.model_copy(
                update={
                    "status": EnvironmentStatus.READY,
                    "url": "https://lab-alice.akros.local",
                    "node": "gpu-1",
                }
            )
        )

    as_worker(redis_url, ready)
    shown = api.client.get("/v1/environments/lab", headers=api.alice).json()
    assert (shown["status"], shown["url"], shown["node"]) == (
        "ready",
        "https://lab-alice.akros.local",
        "gpu-1",
    )


def test_delete_keeps_the_volume_marks_the_environment_deleting_and_publishes(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    answer = api.client.delete("/v1/environments/lab", headers=api.alice)

    assert answer.status_code == 202
    assert answer.headers["Location"] == f"/v1/requests/{answer.json()['request_id']}"
    delete = published_commands(redis_url)[-1]
    assert isinstance(delete, DeleteEnvironment)
    assert (delete.owner, delete.name, delete.purge_volume) == ("alice", "lab", False)
    assert delete.request_id == answer.json()["request_id"]
    shown = api.client.get("/v1/environments/lab", headers=api.alice).json()
    assert shown["status"] == "deleting"


def test_delete_with_purge_volume_asks_for_the_volume_to_go_too(api: Api, redis_url: str) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    answer = api.client.delete("/v1/environments/lab?purge_volume=true", headers=api.alice)
    assert answer.status_code == 202
    delete = published_commands(redis_url)[-1]
    assert isinstance(delete, DeleteEnvironment)
    assert delete.purge_volume is True


def test_deleting_an_unknown_environment_is_not_found_and_publishes_nothing(
    api: Api, redis_url: str
) -> None:
    assert api.client.delete("/v1/environments/ghost", headers=api.alice).status_code == 404
    assert published_commands(redis_url) == []


def test_deleting_a_name_no_object_can_have_is_not_found_rather_than_a_server_error(
    api: Api, redis_url: str
) -> None:
    # Found by schemathesis: '0' failed the command's own name check and answered 500.
    calls = [
        ("/v1/environments/0", api.alice),
        ("/v1/environments/Bad_Name", api.alice),
        ("/v1/volumes/0", api.alice),
        ("/v1/services/0", api.admin),
    ]
    for path, caller in calls:
        answer = api.client.delete(path, headers=caller)
        assert answer.status_code == 404, (path, answer.text)
    assert published_commands(redis_url) == []


def test_a_researcher_cannot_delete_someone_elses_environment_but_an_admin_can(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.bob)
    assert api.client.delete("/v1/environments/lab?user=bob", headers=api.alice).status_code == 403
    assert len(published_commands(redis_url)) == 1
    assert api.client.delete("/v1/environments/lab?user=bob", headers=api.admin).status_code == 202
    assert len(published_commands(redis_url)) == 2
