"""/v1/services and /v1/cluster at the gateway: admins only, bad specs refused naming the
field, nothing published or recorded for a refused request."""

from collections.abc import Callable
from typing import Any, cast

import redis
from fastapi.testclient import TestClient

from akros_bus.wire import DATA_FIELD
from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings
from akros_msgs import Message
from akros_msgs.services import DeployService
from akros_msgs.streams import SERVICE_COMMANDS
from akros_readmodel import ClusterView, NodeView, ReadModel
from akros_readmodel.views import ServiceStatus
from tests.gateway.conftest import Api, bearer
from tests.gateway.helpers import as_worker

SPEC: dict[str, Any] = {
    "name": "pricer",
    "image": "registry.local/pricer:3",
    "ports": [{"port": 80, "target_port": 8080}],
    "autoscaling": {"max_replicas": 4, "cpu_utilisation": 70},
}
HOST_PATH_VOLUME = {"name": "logs", "mount_path": "/logs", "source": "host_path", "ref": "/var"}


def _published(redis_url: str) -> list[Message]:
    client = redis.Redis.from_url(redis_url)
    try:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(SERVICE_COMMANDS.name))
    finally:
        client.close()
    return [SERVICE_COMMANDS.parse(fields[DATA_FIELD]) for _, fields in entries]


def test_an_admin_deploys_a_service_and_it_is_queued_and_shown_pending(
    api: Api, redis_url: str
) -> None:
    answer = api.client.post("/v1/services", json=SPEC, headers=api.admin)

    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/v1/requests/{answer.json()['request_id']}"
    [command] = _published(redis_url)
    assert isinstance(command, DeployService)
    assert command.spec.model_dump(exclude_defaults=True) == SPEC
    shown = api.client.get("/v1/services/pricer", headers=api.admin).json()
    assert (shown["status"], shown["spec"]["image"]) == ("pending", SPEC["image"])
    listed = api.client.get("/v1/services", headers=api.admin).json()
    assert [s["name"] for s in listed["services"]] == ["pricer"]
    request = api.client.get(f"/v1/requests/{answer.json()['request_id']}", headers=api.admin)
    assert request.json()["command_type"] == "deploy_service"


def test_researchers_get_403_and_anonymous_callers_401_on_every_service_endpoint(
    api: Api, redis_url: str
) -> None:
    calls: list[tuple[str, str, Any]] = [
        ("POST", "/v1/services", SPEC),
        ("GET", "/v1/services", None),
        ("GET", "/v1/services/pricer", None),
        ("PUT", "/v1/services/pricer", SPEC),
        ("DELETE", "/v1/services/pricer", None),
        ("GET", "/v1/cluster", None),
    ]
    for method, path, body in calls:
        as_researcher = api.client.request(method, path, json=body, headers=api.alice)
        anonymous = api.client.request(method, path, json=body)
        assert (as_researcher.status_code, anonymous.status_code) == (403, 401), path
    assert _published(redis_url) == []


def test_the_schema_is_the_spec_models_json_schema(api: Api) -> None:
    schema = api.client.get("/v1/services/schema", headers=api.admin).json()

    assert schema["title"] == "ServiceSpec"
    assert schema["additionalProperties"] is False
    assert {"name", "image", "ports", "volumes", "autoscaling"} <= set(schema["properties"])


def _refused(api: Api, spec: dict[str, Any]) -> dict[str, Any]:
    answer = api.client.post("/v1/services", json=spec, headers=api.admin)
    assert answer.status_code == 422, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_bad_specs_are_refused_with_422_naming_the_field_and_change_nothing(
    api: Api, redis_url: str
) -> None:
    unknown = _refused(api, {**SPEC, "privileged": True})
    quantity = _refused(api, {**SPEC, "resources": {"cpu": "lots"}})
    same_port = _refused(api, {**SPEC, "ports": [{"port": 80}, {"port": 80}]})
    host_path = _refused(api, {**SPEC, "volumes": [HOST_PATH_VOLUME]})

    assert [e["field"] for e in unknown["errors"]] == ["body.privileged"]
    assert [e["field"] for e in quantity["errors"]] == ["body.resources.cpu"]
    assert [e["field"] for e in same_port["errors"]] == ["body.ports"]
    assert "same number" in same_port["detail"]
    assert [e["field"] for e in host_path["errors"]] == ["body.volumes.0.source"]
    assert "disabled" in host_path["detail"]
    assert _published(redis_url) == []
    assert api.client.get("/v1/services", headers=api.admin).json() == {"services": []}


def test_an_admin_may_mount_a_host_path_when_the_gateway_enables_it(
    make_settings: Callable[..., GatewaySettings], redis_url: str
) -> None:
    settings = make_settings(allow_host_path=True)
    with TestClient(create_app(settings)) as client:
        assert settings.bootstrap_admin_token_file is not None
        admin = bearer(settings.bootstrap_admin_token_file.read_text().strip())
        answer = client.post(
            "/v1/services", json={**SPEC, "volumes": [HOST_PATH_VOLUME]}, headers=admin
        )
    assert answer.status_code == 202, answer.text


def test_a_taken_name_is_409_and_an_update_of_a_missing_service_404(api: Api) -> None:
    assert api.client.post("/v1/services", json=SPEC, headers=api.admin).status_code == 202

    again = api.client.post("/v1/services", json=SPEC, headers=api.admin)
    missing = api.client.put(
        "/v1/services/other", json={**SPEC, "name": "other"}, headers=api.admin
    )
    renamed = api.client.put("/v1/services/pricer", json={**SPEC, "name": "x"}, headers=api.admin)

    assert again.status_code == 409
    assert missing.status_code == 404
    assert renamed.status_code == 422
    assert renamed.json()["errors"][0]["field"] == "body.name"


def test_an_update_and_a_delete_are_queued_for_an_existing_service(
    api: Api, redis_url: str
) -> None:
    api.client.post("/v1/services", json=SPEC, headers=api.admin)
    changed = {**SPEC, "image": "registry.local/pricer:4"}

    update = api.client.put("/v1/services/pricer", json=changed, headers=api.admin)
    shown = api.client.get("/v1/services/pricer", headers=api.admin).json()
    delete = api.client.delete("/v1/services/pricer", headers=api.admin)

    assert (update.status_code, delete.status_code) == (202, 202)
    assert shown["spec"]["image"] == "registry.local/pricer:4"
    assert api.client.get("/v1/services/pricer", headers=api.admin).json()["status"] == (
        ServiceStatus.DELETING.value
    )
    commands = _published(redis_url)
    assert [type(c).__name__ for c in commands] == [
        "DeployService",
        "DeployService",
        "DeleteService",
    ]
    assert api.client.delete("/v1/services/nothing", headers=api.admin).status_code == 404


def test_the_cluster_is_empty_until_observed_then_shows_each_node(api: Api, redis_url: str) -> None:
    before = api.client.get("/v1/cluster", headers=api.admin).json()
    node = NodeView(
        name="gpu-1",
        ready=True,
        allocatable={"cpu_millis": 64000, "memory_bytes": 2**38, "gpus": 8},
        requested={"cpu_millis": 8000, "memory_bytes": 2**34, "gpus": 2},
    )

    async def observe(read_model: ReadModel) -> None:
        await read_model.put_cluster(ClusterView(nodes=[node]))

    as_worker(redis_url, observe)
    after = api.client.get("/v1/cluster", headers=api.admin).json()

    assert before == {"nodes": [], "observed_at": None}
    assert [n["name"] for n in after["nodes"]] == ["gpu-1"]
    assert after["nodes"][0]["allocatable"]["gpus"] == 8
    assert after["nodes"][0]["used"] is None
