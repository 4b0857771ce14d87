"""The dashboard's pages under Streamlit's AppTest, against the running platform's real
gateway (no mock of its HTTP contract): sign-in, cluster, environments, usage, services."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import akros_dashboard
from akros_dashboard.client import GatewayClient, GatewayError
from akros_devtools import wait_until
from tests.e2e.conftest import Running

APP = Path(akros_dashboard.__file__).with_name("app.py")
SPEC = {
    "name": "board",
    "image": "registry.local/board:1",
    "ports": [{"port": 80, "target_port": 8080}],
    "resources": {"cpu": "100m", "memory": "128Mi"},
}


@pytest.fixture
def gateway_env(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKROS_DASHBOARD_GATEWAY_URL", running.platform.gateway_url)
    monkeypatch.setenv("AKROS_DASHBOARD_FOLLOW_TIMEOUT_S", "20")


def _signed_in(token: str) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=30)
    app.run()
    app.text_input(key="token_input").input(token)
    app.button(key="sign_in").click().run()
    assert not app.exception
    return app


def _open(app: AppTest, page: str) -> AppTest:
    app.sidebar.radio(key="page").set_value(page).run()
    assert not app.exception, app.exception
    return app


def _texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("gateway_env")
def test_a_wrong_token_is_refused_and_shows_the_gateways_reason() -> None:
    app = _signed_in("akros_not-a-token")

    assert "Invalid or revoked token" in _texts(app.error)
    assert "token" not in app.session_state


@pytest.mark.usefixtures("gateway_env")
def test_a_researcher_sees_only_the_environments_page(running: Running) -> None:
    token = running.token_for("rita")["Authorization"].removeprefix("Bearer ")

    app = _signed_in(token)

    assert app.sidebar.radio(key="page").options == ["Environments"]
    assert "No environments match" in _texts(app.info)


@pytest.mark.usefixtures("gateway_env")
def test_the_cluster_page_charts_every_resource_of_the_simulated_nodes(running: Running) -> None:
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    wait_until(
        lambda: bool(running.http.get("/v1/cluster", headers=admin).json()["nodes"]),
        timeout_s=20,
        what="the monitor's first cluster view",
    )
    app = _open(_signed_in(running.platform.admin_token()), "Cluster")

    assert [s.value for s in app.subheader] == ["CPU (cores)", "Memory (GiB)", "GPUs"]
    assert len(app.get("vega_lite_chart")) == 3
    assert app.dataframe[0].value["node"].tolist()  # one row per node


@pytest.mark.usefixtures("gateway_env")
def test_admins_filter_everybodys_environments_and_delete_one_with_its_volume(
    running: Running,
) -> None:
    for user in ("erin", "frank"):
        headers = running.token_for(user)
        body = {"name": "nb", "image": "pytorch", "cpu": "1", "memory": "1Gi"}
        answer = running.http.post("/v1/environments", json=body, headers=headers)
        assert running.settle(answer.json()["request_id"], headers)["status"] == "applied"
    app = _open(_signed_in(running.platform.admin_token()), "Environments")
    assert {"erin", "frank"} <= set(app.dataframe[0].value["owner"])

    app.multiselect(key="env_users").select("erin").run()
    assert app.dataframe[0].value["owner"].tolist() == ["erin"]
    app.checkbox(key="env_purge").check()
    app.button(key="env_delete_button").click().run()

    assert "Applied: delete_environment nb" in _texts(app.success)
    frank = running.token_for("frank")
    assert running.http.get("/v1/environments/nb?user=erin", headers=frank).status_code == 403
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    assert running.http.get("/v1/environments/nb?user=erin", headers=admin).status_code == 404
    volumes = running.http.get("/v1/volumes?user=erin", headers=admin).json()["volumes"]
    assert volumes == []  # purged with it


@pytest.mark.usefixtures("gateway_env")
def test_an_admin_stops_someones_ready_environment_and_starts_it_again(running: Running) -> None:
    headers = running.token_for("sam")
    body = {"name": "nb", "image": "pytorch", "cpu": "1", "memory": "1Gi"}
    answer = running.http.post("/v1/environments", json=body, headers=headers)
    assert running.settle(answer.json()["request_id"], headers)["status"] == "applied"
    app = _open(_signed_in(running.platform.admin_token()), "Environments")
    assert "sam/nb" in app.selectbox(key="env_stop").options
    assert "sam/nb" not in app.selectbox(key="env_start").options
    gateway = GatewayClient(running.platform.gateway_url, running.platform.admin_token())
    with pytest.raises(GatewayError) as refused:  # what the page does not offer, the API refuses
        gateway.start_environment("sam", "nb")
    gateway.close()
    assert (refused.value.status, refused.value.detail) == (409, "'nb' is running already.")

    app.selectbox(key="env_stop").set_value("sam/nb")
    app.button(key="env_stop_button").click().run()
    assert "Applied: stop_environment nb" in _texts(app.success)
    assert running.http.get("/v1/environments/nb", headers=headers).json()["status"] == "stopped"

    app.run()  # the page lists it again: now it is offered to start, not to stop
    assert "sam/nb" not in app.selectbox(key="env_stop").options
    app.selectbox(key="env_start").set_value("sam/nb")
    app.button(key="env_start_button").click().run()
    assert "Applied: start_environment nb" in _texts(app.success)
    assert running.http.get("/v1/environments/nb", headers=headers).json()["status"] == "ready"


@pytest.mark.usefixtures("gateway_env")
def test_the_usage_page_shows_per_user_use_and_an_environments_history(
    running: Running,
) -> None:
    token = running.token_for("uma")
    answer = running.http.post(
        "/v1/environments",
        json={"name": "plot", "image": "pytorch", "cpu": "1", "memory": "1Gi"},
        headers=token,
    )
    running.settle(answer.json()["request_id"], token)

    app = _open(_signed_in(running.platform.admin_token()), "Usage")

    assert "uma/plot" in app.selectbox(key="usage_env").options
    app.selectbox(key="usage_env").set_value("uma/plot").run()
    assert not app.exception, app.exception


@pytest.mark.usefixtures("gateway_env")
def test_the_services_editor_validates_diffs_deploys_and_deletes(running: Running) -> None:
    app = _open(_signed_in(running.platform.admin_token()), "Services")

    app.text_area(key="spec_text").input('{"name": "board", "image": "x", "replicas": -1}').run()
    assert "replicas: -1 is less than the minimum of 0" in _texts(app.error)
    assert "deploy" not in [button.key for button in app.button]

    app.text_area(key="spec_text").input(json.dumps(SPEC)).run()
    assert "matches the schema" in _texts(app.success)
    assert "is a new service" in _texts(app.caption)
    assert '+  "image": "registry.local/board:1"' in app.code[0].value
    app.button(key="deploy").click().run()
    assert "Applied: deploy_service board" in _texts(app.success)

    app.selectbox(key="service_choice").select("board").run()
    assert "No change against the deployed spec" in _texts(app.caption)
    changed = {**SPEC, "image": "registry.local/board:2"}
    app.text_area(key="spec_text").input(json.dumps(changed)).run()
    assert '-  "image": "registry.local/board:1"' in app.code[0].value
    assert '+  "image": "registry.local/board:2"' in app.code[0].value

    app.button(key="delete_service").click().run()
    assert "Applied: delete_service board" in _texts(app.success)
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    assert running.http.get("/v1/services/board", headers=admin).status_code == 404


@pytest.mark.usefixtures("gateway_env")
@pytest.mark.kubesim_only("fills the default cluster's one CPU node (128 cores) on purpose")
def test_why_is_it_pending_says_what_a_pending_environment_waits_for(running: Running) -> None:
    headers = running.token_for("whale")
    big = {"image": "pytorch", "cpu": "100", "memory": "64Gi"}
    answer = running.http.post("/v1/environments", json={"name": "big", **big}, headers=headers)
    assert running.settle(answer.json()["request_id"], headers)["status"] == "applied"
    # The one CPU node now has 28 cores or less free: a second one waits for the first to go.
    answer = running.http.post("/v1/environments", json={"name": "wait", **big}, headers=headers)
    assert answer.status_code == 202, answer.text
    try:

        def why() -> str:
            answer = running.http.get("/v1/environments/wait/events", headers=headers)
            return str(answer.json()["why_pending"])

        try:
            wait_until(lambda: why().startswith("waiting for CPU"), timeout_s=15)
        except TimeoutError as error:
            events = running.http.get("/v1/environments/wait/events", headers=headers).json()
            raise AssertionError(events) from error
        app = _open(_signed_in(running.platform.admin_token()), "Environments")
        assert app.selectbox(key="env_pending").options == ["whale/wait"]
        app.selectbox(key="env_pending").set_value("whale/wait")
        app.button(key="env_why_pending").click().run()
        assert not app.exception, app.exception
        said = _texts(app.info)
        assert "whale/wait: waiting for CPU: of 4 nodes, 1 has too little CPU free" in said
        assert "3 are reserved for other work" in said
    finally:
        for name in ("wait", "big"):
            running.http.delete(f"/v1/environments/{name}", headers=headers)
