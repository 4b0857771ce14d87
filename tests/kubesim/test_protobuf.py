"""kubesim's protobuf: the codec against objects the official client builds, and the server
negotiating protobuf and JSON over raw HTTP as the API server does."""

import base64
import datetime
import json
import re
import struct
import uuid
from typing import Any

import pytest
import urllib3
from kubernetes import client

from akros_devtools import wait_until
from akros_kubesim import media, protobuf, resources
from akros_kubesim.testing import RunningKubesim

UTC = datetime.UTC
CREATED = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
PROTOBUF = "application/vnd.kubernetes.protobuf"
_SERIALIZER = client.ApiClient()


def _json_form(model: Any) -> Any:
    """What the official client sends, with its times as the API server writes them (RFC 3339
    in UTC with Z; metav1.Time without fractions)."""
    document = _SERIALIZER.sanitize_for_serialization(model)
    text = json.dumps(document)
    text = re.sub(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)\+00:00"', r'\1Z"', text)
    result: Any = json.loads(text)
    return result


def _round_trip(document: dict[str, Any]) -> dict[str, Any]:
    body = protobuf.encode(document)
    assert body.startswith(b"k8s\x00")
    return protobuf.decode(body)


def _pod() -> client.V1Pod:
    probe = client.V1Probe(
        http_get=client.V1HTTPGetAction(path="/healthz", port="http"),
        period_seconds=5,
        failure_threshold=3,
    )
    container = client.V1Container(
        name="main",
        image="registry.example/research:1.0",
        command=["python", "-m", "lab"],
        env=[
            client.V1EnvVar(name="MODE", value="train"),
            client.V1EnvVar(
                name="TOKEN",
                value_from=client.V1EnvVarSource(
                    secret_key_ref=client.V1SecretKeySelector(name="tokens", key="token")
                ),
            ),
        ],
        ports=[client.V1ContainerPort(name="http", container_port=8888, protocol="TCP")],
        resources=client.V1ResourceRequirements(
            requests={"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
            limits={"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        ),
        readiness_probe=probe,
        security_context=client.V1SecurityContext(
            run_as_non_root=True, allow_privilege_escalation=False, run_as_user=1000
        ),
        volume_mounts=[client.V1VolumeMount(name="work", mount_path="/work")],
    )
    return client.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=client.V1ObjectMeta(
            name="env-ada",
            namespace="research",
            labels={"akros.io/owner": "ada", "akros.io/kind": "environment"},
            annotations={"kubesim.akros.io/usage-profile": "busy"},
            creation_timestamp=CREATED,
            owner_references=[
                client.V1OwnerReference(
                    api_version="apps/v1",
                    kind="ReplicaSet",
                    name="env-ada-5d9f",
                    uid="0b1c",
                    controller=True,
                    block_owner_deletion=True,
                )
            ],
            finalizers=["example.com/keep"],
        ),
        spec=client.V1PodSpec(
            containers=[container],
            volumes=[
                client.V1Volume(
                    name="work",
                    persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                        claim_name="work-ada"
                    ),
                ),
                client.V1Volume(
                    name="settings",
                    config_map=client.V1ConfigMapVolumeSource(name="settings", default_mode=420),
                ),
            ],
            tolerations=[
                client.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
            ],
            priority=-5,
            termination_grace_period_seconds=30,
            node_selector={"akros.io/pool": "gpu"},
        ),
        status=client.V1PodStatus(
            phase="Running",
            start_time=CREATED,
            conditions=[
                client.V1PodCondition(type="Ready", status="True", last_transition_time=CREATED)
            ],
            container_statuses=[
                client.V1ContainerStatus(
                    name="main",
                    image="registry.example/research:1.0",
                    image_id="sha256:abc",
                    ready=True,
                    restart_count=2,
                    started=True,
                    state=client.V1ContainerState(
                        running=client.V1ContainerStateRunning(started_at=CREATED)
                    ),
                )
            ],
        ),
    )


def test_a_pod_the_client_builds_survives_a_round_trip() -> None:
    document = _json_form(_pod())
    assert _round_trip(document) == document


def test_embedded_structs_are_inlined_as_in_json() -> None:
    """Volume embeds VolumeSource, Probe its handler, a key selector LocalObjectReference."""
    document = _json_form(_pod())
    decoded = _round_trip(document)
    volume = decoded["spec"]["volumes"][0]
    assert volume == {"name": "work", "persistentVolumeClaim": {"claimName": "work-ada"}}
    container = decoded["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["env"][1]["valueFrom"]["secretKeyRef"] == {"name": "tokens", "key": "token"}


def test_a_deployment_with_int_and_string_rollout_bounds_round_trips() -> None:
    deployment = client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(name="web", namespace="svc"),
        spec=client.V1DeploymentSpec(
            replicas=0,
            selector=client.V1LabelSelector(
                match_labels={"app": "web"},
                match_expressions=[
                    client.V1LabelSelectorRequirement(key="tier", operator="In", values=["a", "b"])
                ],
            ),
            strategy=client.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=client.V1RollingUpdateDeployment(max_surge="25%", max_unavailable=0),
            ),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="w", image="nginx")]),
            ),
        ),
    )
    document = _json_form(deployment)
    decoded = _round_trip(document)
    assert decoded == document
    assert decoded["spec"]["replicas"] == 0  # a pointer: its zero is kept
    assert decoded["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


def _scheduler_event(metadata: client.V1ObjectMeta) -> client.EventsV1Event:
    """An event as kube-scheduler writes it: events.k8s.io/v1, with a MicroTime."""
    return client.EventsV1Event(
        metadata=metadata,
        event_time=datetime.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        action="Binding",
        reason="Scheduled",
        note="Successfully assigned default/p to node-1",
        regarding=client.V1ObjectReference(kind="Pod", name="p", namespace="default"),
        reporting_controller="default-scheduler",
        reporting_instance="default-scheduler-node-1",
        type="Normal",
    )


def test_secret_bytes_service_ports_and_micro_times_round_trip() -> None:
    secret = client.V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=client.V1ObjectMeta(name="s"),
        data={"token": base64.b64encode(b"\x00\xffsecret").decode()},
        type="Opaque",
    )
    service = client.V1Service(
        api_version="v1",
        kind="Service",
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(
            selector={"app": "web"},
            ports=[client.V1ServicePort(name="http", port=80, target_port=8080)],
            cluster_ip="10.96.0.10",
        ),
    )
    event = _scheduler_event(client.V1ObjectMeta(name="e.1", namespace="default"))
    event.api_version, event.kind = "events.k8s.io/v1", "Event"
    for model in (secret, service, event):
        document = _json_form(model)
        assert _round_trip(document) == document
    assert _round_trip(_json_form(event))["eventTime"] == "2026-03-04T05:06:07.123456Z"


def test_go_leaves_out_zero_scalars_tagged_omitempty_and_so_does_decoding() -> None:
    """ScaleSpec.replicas is a non-pointer int32 with omitempty: Go's JSON has no replicas 0."""
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 0}}
    assert _round_trip(scale) == {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {}}
    container = {"name": "m", "ready": False, "restartCount": 0}
    status = {"apiVersion": "v1", "kind": "Pod", "status": {"containerStatuses": [container]}}
    # ready and restartCount are not omitempty: their zeros stay.
    assert _round_trip(status) == status


def test_a_null_time_is_go_s_zero_time_an_empty_message() -> None:
    """PodCondition.lastProbeTime is a non-pointer metav1.Time: Go writes the zero time as an
    empty field, and its JSON as null."""
    condition = {"type": "Ready", "status": "True", "lastProbeTime": None}
    pod = {"apiVersion": "v1", "kind": "Pod", "status": {"conditions": [condition]}}
    assert _round_trip(pod) == pod
    conditions = b"\x0a\x05Ready\x12\x04True\x1a\x00"  # type=1, status=2, lastProbeTime=3
    assert protobuf.encode(pod).endswith(
        b"\x1a"
        + bytes([len(conditions) + 2, 0x12])
        + bytes([len(conditions)])
        + conditions
        + b"\x1a\x00\x22\x00"
    )


def test_the_envelope_and_a_list_are_upstream_s_wire_format() -> None:
    """Bytes spelled out from generated.proto: Unknown{typeMeta{apiVersion, kind}, raw,
    contentEncoding, contentType}, NamespaceList{metadata=1, items=2}, ObjectMeta.name=1."""
    body = protobuf.encode(
        {
            "apiVersion": "v1",
            "kind": "NamespaceList",
            "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "a"}}],
        }
    )
    type_meta = b"\x0a\x02v1\x12\x0dNamespaceList"
    raw = b"\x0a\x03\x12\x017" + b"\x12\x05\x0a\x03\x0a\x01a"
    expected = b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta
    expected += b"\x12" + bytes([len(raw)]) + raw + b"\x1a\x00\x22\x00"
    assert body == expected


def test_a_watch_frame_is_a_length_and_a_raw_watch_event() -> None:
    obj = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    frame = protobuf.encode_watch_event("ADDED", obj)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert frame[4:] == b"\x0a\x05ADDED\x12" + bytes([len(obj) + 2, 0x0A, len(obj)]) + obj
    assert protobuf.decode_watch_events(frame) == [
        ("ADDED", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    ]


def test_a_field_the_kind_does_not_have_is_refused() -> None:
    with pytest.raises(protobuf.ProtobufError, match="replica"):
        protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "replica": 1})


def test_accept_ranges_are_chosen_by_quality_then_order() -> None:
    both = f"{PROTOBUF},application/json"
    assert media.output_media_type(both, True) == PROTOBUF
    assert media.output_media_type(both, False) == "application/json"
    assert media.output_media_type(f"application/json, {PROTOBUF}", True) == "application/json"
    assert media.output_media_type(f"*/*, {PROTOBUF}", True) == "application/json"
    assert media.output_media_type(f"application/json;q=0.9, {PROTOBUF}", True) == PROTOBUF
    assert media.output_media_type(f"{PROTOBUF};q=0.5, */*", True) == "application/json"
    assert media.output_media_type(f"{PROTOBUF};stream=watch", True) == "application/json"
    assert media.output_media_type(f"{PROTOBUF};stream=watch", True, watch=True) == PROTOBUF
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    assert media.output_media_type(table, True) == "application/json"
    with pytest.raises(Exception, match="only the following media types"):
        media.output_media_type(PROTOBUF, False)


# --- the server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager()


def _call(
    http: urllib3.PoolManager,
    cluster: RunningKubesim,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = PROTOBUF,
    accept: str = f"{PROTOBUF}, application/json",
) -> urllib3.BaseHTTPResponse:
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = content_type
    return http.request(method, cluster.base_url + path, body=body, headers=headers)


def _decoded(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith(PROTOBUF), response.data[:200]
    return protobuf.decode(response.data)


def _configmap(name: str, **data: str) -> bytes:
    document = _json_form(
        client.V1ConfigMap(
            api_version="v1", kind="ConfigMap", metadata=client.V1ObjectMeta(name=name), data=data
        )
    )
    return protobuf.encode(document)


def test_create_read_update_and_delete_in_protobuf(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str, core: client.CoreV1Api
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    created = _call(http, cluster, "POST", base, _configmap("settings", mode="a"))
    assert created.status == 201
    stored = _decoded(created)
    assert stored["kind"] == "ConfigMap"
    assert stored["metadata"]["uid"]
    assert stored["data"] == {"mode": "a"}
    # The official client, in JSON, reads what the protobuf request stored.
    assert core.read_namespaced_config_map("settings", namespace).data == {"mode": "a"}

    stored["data"] = {"mode": "b"}
    updated = _call(http, cluster, "PUT", f"{base}/settings", protobuf.encode(stored))
    assert updated.status == 200
    assert _decoded(updated)["data"] == {"mode": "b"}

    options: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Background",
    }
    options["preconditions"] = {"uid": stored["metadata"]["uid"] + "-other"}
    refused = _call(http, cluster, "DELETE", f"{base}/settings", protobuf.encode(options))
    assert refused.status == 409
    assert _decoded(refused)["reason"] == "Conflict"
    options["preconditions"] = {"uid": stored["metadata"]["uid"]}
    deleted = _call(http, cluster, "DELETE", f"{base}/settings", protobuf.encode(options))
    assert deleted.status == 200
    assert core.list_namespaced_config_map(namespace).items == []


def test_lists_and_errors_answer_in_protobuf_when_it_comes_first(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for name in ("one", "two"):
        assert _call(http, cluster, "POST", base, _configmap(name, k="v")).status == 201
    listed = _decoded(_call(http, cluster, "GET", base))
    assert listed["kind"] == "ConfigMapList"
    assert listed["apiVersion"] == "v1"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["one", "two"]
    assert int(listed["metadata"]["resourceVersion"]) > 0

    missing = _call(http, cluster, "GET", f"{base}/absent")
    assert missing.status == 404
    status = _decoded(missing)
    assert (status["kind"], status["status"], status["reason"], status["code"]) == (
        "Status",
        "Failure",
        "NotFound",
        404,
    )
    assert status["details"] == {"name": "absent", "kind": "configmaps"}

    as_json = _call(http, cluster, "GET", base, accept=f"{PROTOBUF};q=0.5, application/json")
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert json.loads(as_json.data)["kind"] == "ConfigMapList"


def test_a_protobuf_body_that_is_not_a_message_is_a_bad_request(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    answer = _call(http, cluster, "POST", base, b'{"metadata": {"name": "json"}}')
    assert answer.status == 400
    assert "could not be decoded as protobuf" in _decoded(answer)["message"]


def test_scale_is_read_and_written_in_protobuf(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str, apps: client.AppsV1Api
) -> None:
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="w", image="nginx")]),
            ),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale"
    scale = _decoded(_call(http, cluster, "GET", path))
    assert scale["kind"] == "Scale"
    assert scale["spec"] == {"replicas": 2}
    scale["spec"]["replicas"] = 5
    # Unconditional (the controller's status updates move the version on meanwhile).
    del scale["metadata"]["resourceVersion"]
    scale = _decoded(_call(http, cluster, "PUT", path, protobuf.encode(scale)))
    assert scale["spec"] == {"replicas": 5}
    # Scaling to zero: Go's encoders leave replicas 0 out, and it still means zero.
    scale["spec"] = {"replicas": 0}
    del scale["metadata"]["resourceVersion"]
    assert _call(http, cluster, "PUT", path, protobuf.encode(scale)).status == 200
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 0


def test_a_watch_streams_length_prefixed_watch_events(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    assert _call(http, cluster, "POST", base, _configmap("watched")).status == 201
    answer = _call(
        http,
        cluster,
        "GET",
        f"{base}?watch=true&timeoutSeconds=1",
        accept=f"{PROTOBUF};stream=watch, application/json;stream=watch",
    )
    assert answer.headers["Content-Type"] == f"{PROTOBUF};stream=watch"
    events = protobuf.decode_watch_events(answer.data)
    assert [(kind, obj["kind"], obj["metadata"]["name"]) for kind, obj in events] == [
        ("ADDED", "ConfigMap", "watched")
    ]


def test_a_streaming_list_ends_its_initial_events_with_a_protobuf_bookmark(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str
) -> None:
    """client-go's WatchList (kubectl 1.37's delete --wait) reads this in protobuf."""
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    assert _call(http, cluster, "POST", base, _configmap("listed")).status == 201
    query = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    answer = _call(
        http,
        cluster,
        "GET",
        f"{base}?{query}&allowWatchBookmarks=true&timeoutSeconds=1",
        accept=f"{PROTOBUF};stream=watch, application/json;stream=watch",
    )
    events = protobuf.decode_watch_events(answer.data)
    assert [kind for kind, _ in events[:2]] == ["ADDED", "BOOKMARK"]
    bookmark = events[1][1]
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_tables_and_kinds_without_protobuf_stay_json(
    http: urllib3.PoolManager, cluster: RunningKubesim
) -> None:
    table = _call(
        http,
        cluster,
        "GET",
        "/api/v1/nodes",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    assert json.loads(table.data)["kind"] == "Table"
    metrics = "/apis/metrics.k8s.io/v1beta1/nodes"
    assert json.loads(_call(http, cluster, "GET", metrics).data)["kind"] == "NodeMetricsList"
    refused = _call(http, cluster, "GET", metrics, accept=PROTOBUF)
    assert refused.status == 406
    assert _decoded(refused)["reason"] == "NotAcceptable"


def test_a_binding_in_protobuf_binds_the_pod(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str, core: client.CoreV1Api
) -> None:
    pod = _json_form(
        client.V1Pod(
            api_version="v1",
            kind="Pod",
            metadata=client.V1ObjectMeta(name="manual"),
            spec=client.V1PodSpec(
                # No node matches: the scheduler leaves it, and the binding places it.
                node_selector={"example.com/nowhere": uuid.uuid4().hex[:6]},
                containers=[client.V1Container(name="m", image="busybox:1.36")],
            ),
        )
    )
    base = f"/api/v1/namespaces/{namespace}/pods"
    assert _call(http, cluster, "POST", base, protobuf.encode(pod)).status == 201
    node = core.list_node().items[0].metadata.name
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "manual"},
        "target": {"kind": "Node", "name": node},
    }
    answer = _call(http, cluster, "POST", f"{base}/manual/binding", protobuf.encode(binding))
    assert answer.status == 201, answer.data
    assert core.read_namespaced_pod("manual", namespace).spec.node_name == node


# --- every served kind ---------------------------------------------------------------------


def _meta(name: str, **labels: str) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, labels=labels or {"akros.io/kind": "protobuf-test"})


def _template(app: str) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": app}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="main",
                    image="busybox:1.36",
                    resources=client.V1ResourceRequirements(requests={"cpu": "100m"}),
                )
            ]
        ),
    )


def _selector(app: str) -> client.V1LabelSelector:
    return client.V1LabelSelector(match_labels={"app": app})


def _samples(suffix: str) -> dict[tuple[str, str], Any]:
    """One object of each served kind, as the official client builds it; cluster-scoped names
    carry the suffix so that runs never collide."""
    rule = client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])
    subject = client.RbacV1Subject(kind="ServiceAccount", name="runner", namespace="default")
    core_event = client.CoreV1Event(
        metadata=_meta("sample.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name="p", namespace="default"),
        reason="Pulled",
        message="Successfully pulled image",
        type="Normal",
        count=1,
        first_timestamp=CREATED,
        last_timestamp=CREATED,
        source=client.V1EventSource(component="kubelet", host="gpu-server-1"),
    )
    scheduler_event = _scheduler_event(_meta("sample.2"))
    http_path = client.V1HTTPIngressPath(
        path="/",
        path_type="Prefix",
        backend=client.V1IngressBackend(
            service=client.V1IngressServiceBackend(
                name="web", port=client.V1ServiceBackendPort(number=80)
            )
        ),
    )
    samples: dict[tuple[str, str], Any] = {
        ("v1", "Namespace"): client.V1Namespace(metadata=_meta(f"sample-{suffix}")),
        ("v1", "Node"): client.V1Node(
            metadata=_meta(f"sample-node-{suffix}"),
            # Nothing is to run there: unschedulable and tainted for everything.
            spec=client.V1NodeSpec(
                unschedulable=True,
                taints=[client.V1Taint(key="example.com/sample", effect="NoExecute")],
            ),
        ),
        ("v1", "Pod"): client.V1Pod(
            metadata=_meta("sample"),
            spec=client.V1PodSpec(
                containers=[client.V1Container(name="main", image="busybox:1.36")],
                node_selector={"example.com/nowhere": suffix},
            ),
        ),
        ("v1", "Service"): client.V1Service(
            metadata=_meta("sample"),
            spec=client.V1ServiceSpec(
                selector={"app": "sample"},
                ports=[client.V1ServicePort(name="http", port=80, target_port="http")],
            ),
        ),
        ("v1", "PersistentVolumeClaim"): client.V1PersistentVolumeClaim(
            metadata=_meta("sample"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
        ("v1", "PersistentVolume"): client.V1PersistentVolume(
            metadata=_meta(f"sample-pv-{suffix}"),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "5Gi"},
                access_modes=["ReadWriteOnce"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name=f"manual-{suffix}",
                host_path=client.V1HostPathVolumeSource(path="/srv/sample"),
            ),
        ),
        ("v1", "ConfigMap"): client.V1ConfigMap(metadata=_meta("sample"), data={"mode": "train"}),
        ("v1", "Secret"): client.V1Secret(
            metadata=_meta("sample"), data={"token": base64.b64encode(b"\x00s3").decode()}
        ),
        ("v1", "Event"): core_event,
        ("v1", "ResourceQuota"): client.V1ResourceQuota(
            metadata=_meta("sample"),
            spec=client.V1ResourceQuotaSpec(hard={"requests.cpu": "4", "pods": "10"}),
        ),
        ("apps/v1", "Deployment"): client.V1Deployment(
            metadata=_meta("sample"),
            spec=client.V1DeploymentSpec(
                replicas=1, selector=_selector("sample-d"), template=_template("sample-d")
            ),
        ),
        ("apps/v1", "ReplicaSet"): client.V1ReplicaSet(
            metadata=_meta("sample"),
            spec=client.V1ReplicaSetSpec(
                replicas=1, selector=_selector("sample-rs"), template=_template("sample-rs")
            ),
        ),
        ("apps/v1", "DaemonSet"): client.V1DaemonSet(
            metadata=_meta("sample"),
            spec=client.V1DaemonSetSpec(
                selector=_selector("sample-ds"), template=_template("sample-ds")
            ),
        ),
        ("autoscaling/v2", "HorizontalPodAutoscaler"): client.V2HorizontalPodAutoscaler(
            metadata=_meta("sample"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="sample"
                ),
                min_replicas=1,
                max_replicas=4,
                metrics=[
                    client.V2MetricSpec(
                        type="Resource",
                        resource=client.V2ResourceMetricSource(
                            name="cpu",
                            target=client.V2MetricTarget(
                                type="Utilization", average_utilization=70
                            ),
                        ),
                    )
                ],
            ),
        ),
        ("networking.k8s.io/v1", "Ingress"): client.V1Ingress(
            metadata=_meta("sample"),
            spec=client.V1IngressSpec(
                rules=[
                    client.V1IngressRule(
                        host="lab.example.org",
                        http=client.V1HTTPIngressRuleValue(paths=[http_path]),
                    )
                ]
            ),
        ),
        ("networking.k8s.io/v1", "NetworkPolicy"): client.V1NetworkPolicy(
            metadata=_meta("sample"),
            spec=client.V1NetworkPolicySpec(
                pod_selector=_selector("sample"),
                policy_types=["Ingress"],
                ingress=[
                    client.V1NetworkPolicyIngressRule(
                        ports=[client.V1NetworkPolicyPort(port=8888, protocol="TCP")]
                    )
                ],
            ),
        ),
        ("scheduling.k8s.io/v1", "PriorityClass"): client.V1PriorityClass(
            metadata=_meta(f"sample-{suffix}"), value=-10, preemption_policy="Never"
        ),
        ("storage.k8s.io/v1", "StorageClass"): client.V1StorageClass(
            metadata=_meta(f"sample-{suffix}"),
            provisioner="rancher.io/local-path",
            reclaim_policy="Delete",
            volume_binding_mode="WaitForFirstConsumer",
        ),
        ("v1", "ServiceAccount"): client.V1ServiceAccount(metadata=_meta("sample")),
        ("policy/v1", "PodDisruptionBudget"): client.V1PodDisruptionBudget(
            metadata=_meta("sample"),
            spec=client.V1PodDisruptionBudgetSpec(min_available="50%", selector=_selector("x")),
        ),
        ("rbac.authorization.k8s.io/v1", "Role"): client.V1Role(
            metadata=_meta("sample"), rules=[rule]
        ),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"): client.V1RoleBinding(
            metadata=_meta("sample"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="r"),
            subjects=[subject],
        ),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"): client.V1ClusterRole(
            metadata=_meta(f"sample-{suffix}"), rules=[rule]
        ),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): client.V1ClusterRoleBinding(
            metadata=_meta(f"sample-{suffix}"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"
            ),
            subjects=[subject],
        ),
        ("events.k8s.io/v1", "Event"): scheduler_event,
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
        ): client.V1ValidatingAdmissionPolicy(
            metadata=_meta(f"sample-{suffix}"),
            spec=client.V1ValidatingAdmissionPolicySpec(
                failure_policy="Fail",
                match_constraints=client.V1MatchResources(
                    resource_rules=[
                        client.V1NamedRuleWithOperations(
                            api_groups=[""],
                            api_versions=["v1"],
                            operations=["CREATE"],
                            resources=["pods"],
                        )
                    ]
                ),
                variables=[client.V1Variable(name="podSpec", expression="object.spec")],
                validations=[
                    client.V1Validation(
                        expression="!has(variables.podSpec.nodeName)", message="no nodeName"
                    )
                ],
            ),
        ),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicyBinding",
        ): client.V1ValidatingAdmissionPolicyBinding(
            metadata=_meta(f"sample-{suffix}"),
            spec=client.V1ValidatingAdmissionPolicyBindingSpec(
                policy_name=f"sample-{suffix}", validation_actions=["Deny"]
            ),
        ),
    }
    for (api_version, kind), model in samples.items():
        model.api_version, model.kind = api_version, kind
    return samples


SERVED_KINDS = [r for r in resources.SERVED if not r.computed]


def test_the_samples_are_one_of_each_served_kind() -> None:
    """A kind served without a sample here fails, so the test below covers it too."""
    assert set(_samples("x")) == {(r.api_version, r.kind) for r in SERVED_KINDS}


def _collection(resource: resources.ResourceType, namespace: str) -> str:
    root = f"/apis/{resource.api_version}" if resource.group else "/api/v1"
    scope = f"/namespaces/{namespace}" if resource.namespaced and namespace else ""
    return f"{root}{scope}/{resource.plural}"


def _contains(whole: Any, part: Any) -> bool:
    """Whether whole holds everything part says (the server adds defaults and status)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and _contains(whole[key], value) for key, value in part.items()
        )
    if isinstance(part, list):
        return (
            isinstance(whole, list)
            and len(whole) == len(part)
            and all(_contains(w, p) for w, p in zip(whole, part, strict=True))
        )
    return bool(whole == part)


def _differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Where two documents differ, as paths with both values (for assertion messages)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return [
            difference
            for key in sorted(set(left) | set(right))
            for difference in _differences(
                left.get(key, "<absent>"), right.get(key, "<absent>"), f"{path}.{key}"
            )
        ]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            difference
            for index, (one, other) in enumerate(zip(left, right, strict=True))
            for difference in _differences(one, other, f"{path}[{index}]")
        ]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


def _in_both_forms(
    http: urllib3.PoolManager, cluster: RunningKubesim, path: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object as JSON and as protobuf at the same resourceVersion (controllers may move
    it on between two reads: read again until both reads saw the same version)."""
    for _ in range(50):
        as_json = json.loads(_call(http, cluster, "GET", path, accept="application/json").data)
        as_protobuf = _decoded(_call(http, cluster, "GET", path))
        version = as_json["metadata"]["resourceVersion"]
        if as_protobuf["metadata"]["resourceVersion"] == version:
            return as_json, as_protobuf
    raise AssertionError(f"{path} kept changing")


@pytest.mark.parametrize(
    "resource", SERVED_KINDS, ids=[f"{r.api_version}/{r.kind}" for r in SERVED_KINDS]
)
def test_every_served_kind_is_created_read_listed_and_deleted_in_protobuf(
    resource: resources.ResourceType,
    http: urllib3.PoolManager,
    cluster: RunningKubesim,
    namespace: str,
) -> None:
    sample = _json_form(_samples(uuid.uuid4().hex[:6])[(resource.api_version, resource.kind)])
    collection = _collection(resource, namespace)
    created = _call(http, cluster, "POST", collection, protobuf.encode(sample))
    assert created.status == 201, created.data[:300]
    stored = _decoded(created)
    assert _contains(stored, sample), (stored, sample)

    path = f"{collection}/{sample['metadata']['name']}"
    as_json, as_protobuf = _in_both_forms(http, cluster, path)
    assert as_protobuf == as_json
    assert _round_trip(as_json) == as_json

    selector = f"fieldSelector=metadata.name%3D{sample['metadata']['name']}"
    listed = _decoded(_call(http, cluster, "GET", f"{collection}?{selector}"))
    assert listed["kind"] == f"{resource.kind}List"
    assert [item["metadata"]["uid"] for item in listed["items"]] == [as_json["metadata"]["uid"]]

    options = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
    options["preconditions"] = {"uid": as_json["metadata"]["uid"]}
    deleted = _call(http, cluster, "DELETE", path, protobuf.encode(options))
    assert deleted.status == 200, deleted.data[:300]
    assert _decoded(deleted)["metadata"]["uid"] == as_json["metadata"]["uid"]


def test_every_served_list_reads_the_same_in_protobuf_as_in_json_with_a_workload_running(
    http: urllib3.PoolManager, cluster: RunningKubesim, namespace: str, apps: client.AppsV1Api
) -> None:
    """What kubesim's controllers write (nodes, daemon pods, replica sets, events in both
    APIs, ...) has a protobuf form equal to its JSON: no zero that Go's JSON would leave out."""
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="busy"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=_selector("busy"), template=_template("busy")
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment)
    wait_until(
        lambda: apps.read_namespaced_deployment("busy", namespace).status.ready_replicas == 1,
        timeout_s=30,
        what="the deployment ready",
    )
    for resource in SERVED_KINDS:
        as_json, as_protobuf = _in_both_forms(http, cluster, _collection(resource, ""))
        # kubesim's JSON lists name each item's kind, which the wire format has no room for.
        for item in as_json["items"]:
            del item["apiVersion"], item["kind"]
        assert as_protobuf == as_json, (resource.kind, _differences(as_json, as_protobuf))
