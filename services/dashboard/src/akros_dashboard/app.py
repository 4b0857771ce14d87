"""The dashboard's Streamlit script: sign in with a gateway token, then the cluster,
environments, usage and services pages. Every datum comes from the gateway's HTTP API."""

import json
from collections.abc import Callable

import streamlit as st

from akros_dashboard.client import JSON, GatewayClient, GatewayError
from akros_dashboard.settings import DashboardSettings
from akros_dashboard.shaping import (
    check_spec,
    environment_rows,
    event_rows,
    history_rows,
    lifecycle_choices,
    node_rows,
    spec_diff,
    user_usage_rows,
    with_defaults,
)

NEW_SERVICE = "(new service)"
TEMPLATE: JSON = {
    "name": "my-service",
    "image": "registry.akros.local/team/my-service:1",
    "ports": [{"port": 80, "target_port": 8080}],
    "resources": {"cpu": "500m", "memory": "512Mi"},
    "replicas": 1,
}
PAGES = {"admin": ["Cluster", "Environments", "Usage", "Services"], "other": ["Environments"]}


def _client(settings: DashboardSettings) -> GatewayClient:
    return GatewayClient(
        str(settings.gateway_url),
        st.session_state["token"],
        timeout_s=settings.request_timeout_s,
    )


def _show_error(error: GatewayError) -> None:
    st.error(str(error))
    for problem in error.errors:
        st.error(f"{problem.get('field')}: {problem.get('message')}")


def sign_in(settings: DashboardSettings) -> None:
    st.title("Akros dashboard")
    st.caption(f"Gateway: {settings.gateway_url}")
    token = st.text_input("Gateway token", type="password", key="token_input")
    if st.button("Sign in", key="sign_in") and token:
        try:
            me = GatewayClient(str(settings.gateway_url), token).me()
        except GatewayError as error:
            _show_error(error)
            return
        st.session_state.update(token=token, user=me["user"], role=me["role"])
        st.rerun()


def cluster_page(gateway: GatewayClient) -> None:
    st.header("Cluster")
    cluster = gateway.cluster()
    nodes = cluster["nodes"]
    if not nodes:
        st.info("No observation of the cluster yet; the monitor writes one every few seconds.")
        return
    st.caption(f"Observed at {cluster['observed_at']}")
    if not any(node.get("used") for node in nodes):
        st.caption(
            "No usage yet: it needs metrics.k8s.io, which the monitor reads every "
            "AKROS_USAGE_INTERVAL_S; this cluster may not serve it."
        )
    for title, rows in node_rows(nodes).items():
        st.subheader(title)
        st.bar_chart(rows, x="node", y=["allocatable", "requested", "used"], stack=False)
    st.dataframe(
        [
            {"node": n["name"], "ready": n["ready"], "pods": n["pods"]}
            for n in sorted(nodes, key=lambda n: str(n["name"]))
        ],
        hide_index=True,
    )


def environments_page(gateway: GatewayClient, settings: DashboardSettings) -> None:
    st.header("Environments")
    environments = gateway.environments()
    everyone = sorted({env["owner"] for env in environments})
    columns = st.columns(3)
    users = columns[0].multiselect("Users", everyone, key="env_users")
    statuses = columns[1].multiselect(
        "Status",
        ["pending", "ready", "stopping", "stopped", "failed", "deleting"],
        key="env_statuses",
    )
    name = columns[2].text_input("Name contains", key="env_name")
    rows = environment_rows(environments, users=users, statuses=statuses, name_contains=name)
    if not rows:
        st.info("No environments match.")
        return
    st.dataframe(rows, hide_index=True)
    choices = lifecycle_choices(rows)
    stop_column, start_column = st.columns(2)
    to_stop = stop_column.selectbox("Ready environment to stop", choices["stop"], key="env_stop")
    if stop_column.button("Stop environment", key="env_stop_button") and to_stop:
        owner, env_name = str(to_stop).split("/", 1)
        _apply(gateway, settings, lambda: gateway.stop_environment(owner, env_name))
    to_start = start_column.selectbox(
        "Stopped environment to start", choices["start"], key="env_start"
    )
    if start_column.button("Start environment", key="env_start_button") and to_start:
        owner, env_name = str(to_start).split("/", 1)
        _apply(gateway, settings, lambda: gateway.start_environment(owner, env_name))

    why_pending(gateway, choices["pending"])

    choice = st.selectbox(
        "Environment to delete", [f"{r['owner']}/{r['name']}" for r in rows], key="env_delete"
    )
    purge = st.checkbox("Delete its work volume too, for good", key="env_purge")
    if st.button("Delete environment", key="env_delete_button") and choice:
        owner, env_name = choice.split("/", 1)
        _apply(
            gateway,
            settings,
            lambda: gateway.delete_environment(owner, env_name, purge_volume=purge),
        )


def why_pending(gateway: GatewayClient, pending: list[str]) -> None:
    """ "Why is it pending?" for a pending environment: the gateway's answer from the cluster's
    Events, and those Events in words."""
    if not pending:
        return
    chosen = st.selectbox("Pending environment", pending, key="env_pending")
    if st.button("Why is it pending?", key="env_why_pending") and chosen:
        owner, env_name = str(chosen).split("/", 1)
        document = gateway.environment_events(owner, env_name)
        st.info(f"{chosen}: {document['why_pending'] or 'it is no longer pending'}")
        if document["events"]:
            st.dataframe(event_rows(document["events"]), hide_index=True)


def _apply(gateway: GatewayClient, settings: DashboardSettings, send: Callable[[], str]) -> None:
    """Send a request about an environment and follow it until applied or failed; a refusal
    (not ready, not stopped, over quota) is shown as the gateway said it."""
    try:
        request_id = send()
    except GatewayError as error:
        _show_error(error)
        return
    _show_outcome(gateway.follow(request_id, settings.follow_timeout_s))


def usage_page(gateway: GatewayClient) -> None:
    st.header("Usage")
    st.subheader("Per user: latest use against requests")
    users = user_usage_rows(gateway.usage_by_user())
    if users:
        st.bar_chart(users, x="user", y=["cpu requested", "cpu used"], stack=False)
        st.bar_chart(users, x="user", y=["memory requested", "memory used"], stack=False)
    else:
        st.info("No usage sampled yet: the monitor samples every AKROS_USAGE_INTERVAL_S.")

    st.subheader("Per environment: history")
    rows = environment_rows(gateway.environments())
    if not rows:
        st.caption("Nothing is reserved.")
        return
    choice = st.selectbox(
        "Environment", [f"{row['owner']}/{row['name']}" for row in rows], key="usage_env"
    )
    owner, name = str(choice).split("/", 1)
    history = history_rows(gateway.environment_usage(owner, name))
    if not history:
        st.info(f"No usage history for {choice} yet.")
        return
    st.line_chart(history, x="at", y=["cpu requested", "cpu used"])
    st.line_chart(history, x="at", y=["memory requested", "memory used"])
    if any(row["gpu utilisation %"] is not None for row in history):
        st.line_chart(history, x="at", y=["gpu utilisation %"])


def _show_outcome(request: JSON) -> None:
    if request["status"] == "applied":
        st.success(f"Applied: {request['command_type']} {request.get('name') or ''}".strip())
    elif request["status"] == "failed":
        st.error(f"Failed ({request.get('code')}): {request.get('reason')}")
    else:
        st.warning(f"Still pending: follow it at /v1/requests/{request['request_id']}")


def _select_service(services: dict[str, JSON]) -> str:
    """The service being edited; picking another one loads its spec into the editor."""
    choice = str(st.selectbox("Service", [NEW_SERVICE, *services], key="service_choice"))
    if st.session_state.get("editing") != choice:
        spec = services[choice]["spec"] if choice in services else TEMPLATE
        st.session_state["spec_text"] = json.dumps(spec, indent=2)
        st.session_state["editing"] = choice
    return choice


def services_page(gateway: GatewayClient, settings: DashboardSettings) -> None:
    st.header("Services")
    if "last_request" in st.session_state:
        _follow(gateway, settings)
    services = {s["name"]: s for s in gateway.services()}
    if services:
        st.dataframe(
            [
                {
                    "name": s["name"],
                    "status": s["status"],
                    "ready": f"{s['ready_replicas']}/{s['replicas']}",
                    "autoscaler": _autoscaler_summary(s.get("autoscaler")),
                    "reason": s.get("reason") or "",
                }
                for s in services.values()
            ],
            hide_index=True,
        )
    choice = _select_service(services)
    schema = gateway.service_schema()
    text = st.text_area("Spec (JSON)", key="spec_text", height=360)
    check = check_spec(text, schema)
    if check.spec is None:
        for problem in check.problems:
            st.error(problem)
        return
    st.success("The spec matches the schema.")
    proposed = with_defaults(check.spec, schema)
    current = services.get(proposed["name"])
    diff = spec_diff(current["spec"] if current else None, proposed)
    if current is None:
        st.caption(f"'{proposed['name']}' is a new service.")
    elif not diff:
        st.caption("No change against the deployed spec: deploying restarts nothing.")
    if diff:
        st.code(diff, language="diff")
    left, right = st.columns(2)
    if left.button("Deploy", key="deploy", type="primary"):
        _run(lambda: gateway.deploy_service(check.spec or {}, update=current is not None))
    if choice in services and right.button(f"Delete {choice}", key="delete_service"):
        _run(lambda: gateway.delete_service(choice))


def _run(send: Callable[[], str]) -> None:
    """Send a request; the next run follows it until applied, above a fresh list."""
    try:
        st.session_state["last_request"] = send()
    except GatewayError as error:
        _show_error(error)
        return
    st.rerun()


def _follow(gateway: GatewayClient, settings: DashboardSettings) -> None:
    request_id = st.session_state["last_request"]
    with st.spinner("Waiting for the worker to apply it..."):
        request = gateway.follow(request_id, settings.follow_timeout_s)
    _show_outcome(request)
    if request["status"] != "pending":
        del st.session_state["last_request"]


def _autoscaler_summary(state: JSON | None) -> str:
    if not state:
        return ""
    return f"{state['current_replicas']} of {state['min_replicas']}-{state['max_replicas']}" + (
        f", CPU {state['cpu_utilisation']}%" if state.get("cpu_utilisation") else ""
    )


def main() -> None:
    settings = DashboardSettings()
    st.set_page_config(page_title="Akros dashboard", layout="wide")
    if "token" not in st.session_state:
        sign_in(settings)
        return
    st.sidebar.write(f"Signed in as **{st.session_state['user']}** ({st.session_state['role']})")
    if st.sidebar.button("Sign out", key="sign_out"):
        st.session_state.clear()
        st.rerun()
    pages = PAGES["admin" if st.session_state["role"] == "admin" else "other"]
    page = st.sidebar.radio("Page", pages, key="page")
    gateway = _client(settings)
    try:
        if page == "Cluster":
            cluster_page(gateway)
        elif page == "Environments":
            environments_page(gateway, settings)
        elif page == "Usage":
            usage_page(gateway)
        elif page == "Services":
            services_page(gateway, settings)
    except GatewayError as error:
        _show_error(error)
    finally:
        gateway.close()


main()
