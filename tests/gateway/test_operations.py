"""Catalog, me, health, metrics and the body size limit."""

from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings
from tests.gateway.conftest import Api, bearer
from tests.gateway.helpers import create_body

CATALOG_FILE = """
images:
  r-studio: {image: "registry.example/r:4.4", description: "R and RStudio", port: 8787}
profiles:
  tiny: {cpu: "1", memory: 2Gi}
"""


def test_the_catalog_is_the_built_in_one_by_default(api: Api) -> None:
    catalog = api.client.get("/v1/catalog", headers=api.alice).json()
    assert sorted(catalog["images"]) == ["jax", "pytorch", "quant-cpu"]
    assert catalog["profiles"]["gpu-single"]["gpus"] == 1


def test_the_catalog_file_names_the_images_researchers_may_pick(
    make_settings: Callable[..., GatewaySettings], tmp_path: Path
) -> None:
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(CATALOG_FILE)
    settings = make_settings(catalog_file=catalog_file)
    with TestClient(create_app(settings)) as client:
        assert settings.bootstrap_admin_token_file is not None
        admin = bearer(settings.bootstrap_admin_token_file.read_text().strip())
        catalog = client.get("/v1/catalog", headers=admin).json()
        assert list(catalog["images"]) == ["r-studio"]
        assert catalog["profiles"]["tiny"]["memory"] == "2Gi"
        refused = client.post("/v1/environments", json=create_body(), headers=admin)
        assert refused.status_code == 422
        accepted = client.post(
            "/v1/environments", json=create_body(image="r-studio"), headers=admin
        )
        assert accepted.status_code == 202


def test_me_shows_the_role_the_quota_and_what_is_held(api: Api) -> None:
    api.client.post("/v1/environments", json=create_body(gpus=1), headers=api.alice)
    me = api.client.get("/v1/me", headers=api.alice).json()
    assert (me["user"], me["role"]) == ("alice", "researcher")
    assert me["quota"] == {
        "resources": {"cpu": "32", "memory": "256Gi", "gpus": 4},
        "environments": 5,
    }
    assert me["holding"] == {
        "resources": {"cpu": "2", "memory": "8Gi", "gpus": 1},
        "environments": 1,
    }


def test_me_shows_a_per_user_quota_override(api: Api) -> None:
    quota = api.client.get("/v1/me", headers=api.carol).json()["quota"]
    assert quota == {"resources": {"cpu": "2", "memory": "8Gi", "gpus": 0}, "environments": 1}


def test_healthz_answers_ok_while_redis_answers(api: Api) -> None:
    answer = api.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "redis": True}


def test_metrics_count_requests_by_route_template_and_status_and_commands_published(
    api: Api,
) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    api.client.get("/v1/environments/lab", headers=api.alice)
    api.client.get("/v1/environments/none", headers=api.alice)
    api.client.get("/no/such/path")

    text = api.client.get("/metrics").text
    assert (
        'akros_gateway_http_requests_total{method="POST",route="/v1/environments",status="202"}'
        " 1.0" in text
    )
    assert 'route="/v1/environments/{name}",status="200"} 1.0' in text
    assert 'route="/v1/environments/{name}",status="404"} 1.0' in text
    assert 'route="unmatched",status="404"} 1.0' in text
    assert 'akros_gateway_http_request_duration_seconds_count{method="POST"' in text
    assert 'akros_gateway_commands_published_total{type="create_environment"} 1.0' in text


def _chunks(size: int) -> Iterator[bytes]:
    for _ in range(size // 65536):
        yield b" " * 65536


def test_a_body_over_the_limit_is_refused_with_413_before_anything_happens(api: Api) -> None:
    two_mib = b" " * (2 * 1024 * 1024)
    headers = {**api.alice, "Content-Type": "application/json"}
    declared = api.client.post("/v1/environments", content=two_mib, headers=headers)
    streamed = api.client.post("/v1/environments", content=_chunks(len(two_mib)), headers=headers)
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.json()["code"] == "too_large"
        assert "larger than the limit of 1048576 bytes" in answer.json()["detail"]
    assert api.client.get("/v1/environments", headers=api.alice).json()["environments"] == []
