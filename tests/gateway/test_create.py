"""POST /v1/environments: checked, recorded, published once, or refused with nothing published."""

import re
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings
from akros_msgs import CreateEnvironment, Resources, Role, Source, request_id_of_key
from tests.gateway.conftest import Api
from tests.gateway.helpers import create_body, published_commands


def test_a_create_is_accepted_with_its_request_id_and_location(api: Api) -> None:
    answer = api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    assert answer.status_code == 202
    request_id = answer.json()["request_id"]
    assert answer.json() == {"request_id": request_id, "status": "pending"}
    assert answer.headers["Location"] == f"/v1/requests/{request_id}"


def test_a_create_publishes_one_command_with_the_callers_fields(api: Api, redis_url: str) -> None:
    body = create_body("gpu-box", image="jax", cpu="0.5", memory="4096Mi", gpus=1, gpu_model="A100")
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)

    [command] = published_commands(redis_url)
    assert isinstance(command, CreateEnvironment)
    assert command.request_id == answer.json()["request_id"]
    assert (command.actor.user_id, command.actor.role) == ("alice", Role.RESEARCHER)
    assert command.actor.source is Source.HTTP
    assert (command.owner, command.name, command.image) == ("alice", "gpu-box", "jax")
    assert command.resources == Resources.of("500m", "4Gi", 1)
    assert command.gpu_model == "A100"


def test_the_new_environment_is_listed_as_pending_at_once(api: Api) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    shown = api.client.get("/v1/environments/lab", headers=api.alice).json()
    assert shown["status"] == "pending"
    assert shown["resources"] == {"cpu": "2", "memory": "8Gi", "gpus": 0}


def test_the_same_idempotency_key_twice_publishes_one_command(api: Api, redis_url: str) -> None:
    headers = {**api.alice, "Idempotency-Key": "retry-1"}
    first = api.client.post("/v1/environments", json=create_body(), headers=headers)
    second = api.client.post("/v1/environments", json=create_body(), headers=headers)

    assert first.status_code == second.status_code == 202
    request_id = request_id_of_key("alice", "retry-1")
    assert first.json() == second.json() == {"request_id": request_id, "status": "pending"}
    assert second.headers["Location"] == f"/v1/requests/{request_id}"
    assert [c.request_id for c in published_commands(redis_url)] == [request_id]


def test_an_idempotency_key_is_its_senders_alone(api: Api, redis_url: str) -> None:
    """Bob sending the key alice used makes bob's own request: no conflict, nothing learnt
    of alice's, and alice's retry still answers her original one."""
    alices = api.client.post(
        "/v1/environments", json=create_body("lab"), headers={**api.alice, "Idempotency-Key": "k1"}
    )
    bobs = api.client.post(
        "/v1/environments", json=create_body("lab"), headers={**api.bob, "Idempotency-Key": "k1"}
    )
    assert alices.status_code == bobs.status_code == 202, bobs.text
    assert alices.json()["request_id"] == request_id_of_key("alice", "k1")
    assert bobs.json()["request_id"] == request_id_of_key("bob", "k1")
    commands = [c for c in published_commands(redis_url) if isinstance(c, CreateEnvironment)]
    assert {(c.owner, c.request_id) for c in commands} == {
        ("alice", request_id_of_key("alice", "k1")),
        ("bob", request_id_of_key("bob", "k1")),
    }
    retried = api.client.post(
        "/v1/environments", json=create_body("lab"), headers={**api.alice, "Idempotency-Key": "k1"}
    )
    assert retried.json() == alices.json()
    assert (
        api.client.get(f"/v1/requests/{alices.json()['request_id']}", headers=api.bob).status_code
        == 403
    )


def test_request_ids_of_keys_differ_for_every_user_and_key() -> None:
    ids = {request_id_of_key(user, key) for user in ("a", "ab", "a-b") for key in ("b", "b:", ":b")}
    assert len(ids) == 9
    longest = request_id_of_key("u" * 30, "k" * 64)
    assert len(longest) <= 64, "fits the envelope's request id"
    assert re.fullmatch(r"[A-Za-z0-9._:-]+", longest)


def test_an_idempotency_key_reused_for_another_request_is_a_conflict(
    api: Api, redis_url: str
) -> None:
    headers = {**api.alice, "Idempotency-Key": "once"}
    api.client.post("/v1/environments", json=create_body("one"), headers=headers)
    answer = api.client.post("/v1/environments", json=create_body("two"), headers=headers)
    assert answer.status_code == 409
    assert "Idempotency-Key" in answer.json()["detail"]
    assert len(published_commands(redis_url)) == 1


def test_a_malformed_idempotency_key_is_refused_naming_the_header(api: Api) -> None:
    headers = {**api.alice, "Idempotency-Key": "not a key!"}
    answer = api.client.post("/v1/environments", json=create_body(), headers=headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "header.idempotency-key"


def test_a_name_the_owner_already_has_is_a_conflict_and_publishes_nothing(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    answer = api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    assert answer.status_code == 409
    assert answer.json()["code"] == "conflict"
    assert "already has an environment named 'lab'" in answer.json()["detail"]
    assert len(published_commands(redis_url)) == 1


def test_the_same_name_is_free_for_another_owner(api: Api) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    answer = api.client.post("/v1/environments", json=create_body(), headers=api.bob)
    assert answer.status_code == 202


def test_over_quota_is_refused_with_the_reason_and_nothing_is_published(
    api: Api, redis_url: str
) -> None:
    answer = api.client.post("/v1/environments", json=create_body(gpus=5), headers=api.alice)

    assert answer.status_code == 403
    assert answer.json()["code"] == "quota_exceeded"
    assert answer.json()["detail"].startswith("Over quota: GPUs would be 5 of your 4")
    assert published_commands(redis_url) == []
    assert api.client.get("/v1/environments", headers=api.alice).json()["environments"] == []


def test_a_per_user_quota_override_from_the_quota_file_applies(api: Api, redis_url: str) -> None:
    first = api.client.post("/v1/environments", json=create_body("one"), headers=api.carol)
    second = api.client.post("/v1/environments", json=create_body("two"), headers=api.carol)
    assert first.status_code == 202
    assert second.status_code == 403
    assert "you already have 1 of your 1 environments" in second.json()["detail"]
    assert len(published_commands(redis_url)) == 1


def test_the_quota_counts_environments_already_held(api: Api) -> None:
    for name in ("a", "b", "c", "d"):
        body = create_body(name, cpu="8", memory="8Gi")
        assert api.client.post("/v1/environments", json=body, headers=api.alice).status_code == 202
    answer = api.client.post("/v1/environments", json=create_body("e"), headers=api.alice)
    assert answer.status_code == 403
    assert "CPU would be 34 of your 32" in answer.json()["detail"]


def test_a_bad_body_is_refused_naming_each_field(api: Api, redis_url: str) -> None:
    body = create_body("Bad_Name", cpu="lots", gpus=-1)
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)

    assert answer.status_code == 422
    fields = [error["field"] for error in answer.json()["errors"]]
    assert fields == ["body.name", "body.cpu", "body.gpus"]
    assert "body.cpu: 'lots' is not a quantity" in answer.json()["detail"]
    assert published_commands(redis_url) == []


def test_a_missing_field_and_an_unknown_field_are_named(api: Api) -> None:
    body = {"name": "x", "memory": "1Gi", "privileged": True}
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["body.image", "body.privileged"]


def test_without_a_profile_cpu_is_required_and_named(api: Api, redis_url: str) -> None:
    body = {"name": "x", "image": "pytorch", "memory": "1Gi"}
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "body.cpu", "message": "required unless a profile supplies it"}
    ]
    assert published_commands(redis_url) == []


def test_a_profile_supplies_the_resources_and_is_carried_by_the_command(
    api: Api, redis_url: str
) -> None:
    body = {"name": "gpu-box", "image": "pytorch", "profile": "gpu-single"}
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 202, answer.text

    [command] = published_commands(redis_url)
    assert isinstance(command, CreateEnvironment)
    assert command.profile == "gpu-single"
    assert command.resources == Resources.of("8", "64Gi", 1)
    shown = api.client.get("/v1/environments/gpu-box", headers=api.alice).json()
    assert shown["resources"] == {"cpu": "8", "memory": "64Gi", "gpus": 1}


def test_fields_given_with_a_profile_override_its_values(api: Api, redis_url: str) -> None:
    body = create_body("pinned", profile="cpu-dedicated", cpu="4")
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 202, answer.text

    [command] = published_commands(redis_url)
    assert isinstance(command, CreateEnvironment)
    assert command.resources == Resources.of("4", "8Gi", 0), "cpu and memory as given"
    assert command.dedicated_cores, "from the profile"
    assert command.profile == "cpu-dedicated"


def test_a_profile_outside_the_catalog_is_refused_naming_the_field(
    api: Api, redis_url: str
) -> None:
    body = {"name": "lab", "image": "pytorch", "profile": "gpu-huge"}
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.profile"
    assert "'gpu-huge' is not in the catalog" in answer.json()["detail"]
    assert published_commands(redis_url) == []


def test_an_image_outside_the_catalog_is_refused_naming_the_field(api: Api, redis_url: str) -> None:
    body = create_body(image="docker.io/evil/miner")
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.image"
    assert "choose one of: jax, pytorch, quant-cpu" in answer.json()["detail"]
    assert published_commands(redis_url) == []


def test_dedicated_cores_with_a_fraction_of_a_cpu_are_refused_as_an_invalid_body(
    api: Api,
) -> None:
    body = create_body(cpu="1.5", dedicated_cores=True)
    answer = api.client.post("/v1/environments", json=body, headers=api.alice)
    assert answer.status_code == 422
    message = "cpu: dedicated cores need a whole number of CPUs, e.g. '4'"
    assert answer.json() == {
        "detail": f"Invalid request: body: {message}",
        "code": "invalid",
        "errors": [{"field": "body", "message": message}],
    }


def test_a_researcher_may_not_create_for_someone_else(api: Api, redis_url: str) -> None:
    answer = api.client.post("/v1/environments", json=create_body(owner="bob"), headers=api.alice)
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"
    assert published_commands(redis_url) == []


def test_an_admin_creates_for_another_user_against_that_users_quota(
    api: Api, redis_url: str
) -> None:
    created = api.client.post(
        "/v1/environments", json=create_body(owner="carol"), headers=api.admin
    )
    refused = api.client.post(
        "/v1/environments", json=create_body("more", owner="carol"), headers=api.admin
    )
    assert created.status_code == 202
    assert refused.status_code == 403
    [command] = published_commands(redis_url)
    assert isinstance(command, CreateEnvironment)
    assert (command.owner, command.actor.user_id) == ("carol", "admin")


def test_concurrent_creates_on_two_replicas_never_exceed_the_quota_together(
    api: Api, settings: GatewaySettings, redis_url: str
) -> None:
    with TestClient(create_app(settings)) as replica:
        clients = [api.client, replica] * 4

        def create(index: int) -> int:
            body = create_body(f"env-{index}")
            status: int = (
                clients[index].post("/v1/environments", json=body, headers=api.carol).status_code
            )
            return status

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(create, range(8)))

    assert statuses == [202] + [403] * 7
    assert len(published_commands(redis_url)) == 1
