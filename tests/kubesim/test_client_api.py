"""The official kubernetes client against kubesim: every resource, verb and error path."""

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.aio import watch as aio_watch
from kubernetes.client.exceptions import ApiException

from akros_devtools import wait_for
from akros_kubesim import schemas
from akros_kubesim.testing import RunningKubesim


def _status(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def _pod(name: str, image: str = "busybox:1.36", **labels: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or None),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="main",
                    image=image,
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "100m", "memory": "64Mi"}
                    ),
                )
            ]
        ),
    )


def _deployment(name: str, replicas: int = 2, image: str = "nginx:1.25") -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="web",
                            image=image,
                            ports=[client.V1ContainerPort(container_port=80)],
                            resources=client.V1ResourceRequirements(requests={"cpu": "100m"}),
                        )
                    ]
                ),
            ),
        ),
    )


def raw(
    cluster: RunningKubesim,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One plain HTTP request, for the cases the typed client cannot express."""
    data = (
        body.encode()
        if isinstance(body, str)
        else (None if body is None else json.dumps(body).encode())
    )
    request = urllib.request.Request(  # noqa: S310 - the URL is this loopback server's
        cluster.base_url + path, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``check``'s first truthy value (typed Any: a truthy Optional is no longer None, which
    a type cannot say); the simulation acts asynchronously."""
    return wait_for(check, timeout_s=timeout, what="the simulation to get there")


SETTLED_BY_A_CONTROLLER: dict[str, Callable[[Any], bool]] = {
    # The default class binds on first consumer: an unused claim stays Pending with its class.
    "persistent_volume_claim": lambda claim: (
        claim.status.phase == "Pending" and claim.spec.storage_class_name == "local-path"
    ),
    "resource_quota": lambda quota: bool(quota.status and quota.status.used),
}


def settled_object(
    read: Callable[[str, str], Any], name: str, namespace: str, settled: Callable[[Any], bool]
) -> Any:
    obj = read(name, namespace)
    return obj if settled(obj) else None


def test_every_core_resource_supports_create_get_list_replace_patch_delete(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    """ConfigMaps, secrets, services, PVCs, resource quotas and events round-trip all verbs."""
    cases: list[tuple[str, Any]] = [
        (
            "config_map",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "1"}),
        ),
        ("secret", client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})),
        (
            "service",
            client.V1Service(
                metadata=client.V1ObjectMeta(name="svc"),
                spec=client.V1ServiceSpec(
                    selector={"app": "x"}, ports=[client.V1ServicePort(port=80)]
                ),
            ),
        ),
        (
            "persistent_volume_claim",
            client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="pvc"),
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                ),
            ),
        ),
        (
            "resource_quota",
            client.V1ResourceQuota(
                metadata=client.V1ObjectMeta(name="q"),
                spec=client.V1ResourceQuotaSpec(hard={"pods": "10"}),
            ),
        ),
        (
            "event",
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name="e"),
                involved_object=client.V1ObjectReference(kind="Pod", name="p", namespace=namespace),
                reason="Test",
                message="hello",
            ),
        ),
    ]
    for kind, body in cases:
        created = getattr(core, f"create_namespaced_{kind}")(namespace, body)
        name = created.metadata.name
        if kind == "service":
            assert created.spec.cluster_ip.startswith("10.96.")
        assert created.metadata.uid
        if kind in SETTLED_BY_A_CONTROLLER:
            # Admission or a controller settles a new claim or a new quota's usage at once.
            read = getattr(core, f"read_namespaced_{kind}")
            settled = SETTLED_BY_A_CONTROLLER[kind]
            created = eventually(lambda: settled_object(read, name, namespace, settled))  # noqa: B023 - called at once
        fetched = getattr(core, f"read_namespaced_{kind}")(name, namespace)
        assert fetched.metadata.resource_version == created.metadata.resource_version, kind
        listed = getattr(core, f"list_namespaced_{kind}")(namespace)
        assert name in [i.metadata.name for i in listed.items]
        fetched.metadata.labels = {"changed": "yes"}
        replaced = getattr(core, f"replace_namespaced_{kind}")(name, namespace, fetched)
        assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
        patched = getattr(core, f"patch_namespaced_{kind}")(
            name, namespace, {"metadata": {"annotations": {"x": "y"}}}
        )
        assert patched.metadata.labels == {"changed": "yes"}
        assert patched.metadata.annotations["x"] == "y"
        getattr(core, f"delete_namespaced_{kind}")(name, namespace)
        # A claim goes once the pvc-protection controller has seen that no pod uses it.
        eventually(lambda: is_gone(getattr(core, f"read_namespaced_{kind}"), name, namespace))  # noqa: B023 - called at once


def is_gone(read: Callable[[str, str], Any], name: str, namespace: str) -> bool:
    try:
        read(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_other_groups_round_trip(api_client: client.ApiClient, namespace: str) -> None:
    """HPAs, ingresses, network policies and priority classes are served in their groups."""
    autoscaling = client.AutoscalingV2Api(api_client)
    networking = client.NetworkingV1Api(api_client)
    scheduling = client.SchedulingV1Api(api_client)
    hpa = client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="h"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="d"
            ),
            min_replicas=1,
            max_replicas=3,
        ),
    )
    assert (
        autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa).spec.max_replicas
        == 3
    )
    ingress = client.V1Ingress(
        metadata=client.V1ObjectMeta(name="i"),
        spec=client.V1IngressSpec(rules=[client.V1IngressRule(host="env.example.org")]),
    )
    assert (
        networking.create_namespaced_ingress(namespace, ingress).spec.rules[0].host
        == "env.example.org"
    )
    policy = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="n"),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"a": "b"})
        ),
    )
    assert networking.create_namespaced_network_policy(namespace, policy).metadata.name == "n"
    name = f"pc-{namespace}"
    created = scheduling.create_priority_class(
        client.V1PriorityClass(metadata=client.V1ObjectMeta(name=name), value=10)
    )
    assert created.value == 10
    assert name in [pc.metadata.name for pc in scheduling.list_priority_class().items]
    scheduling.delete_priority_class(name)
    assert [
        h.metadata.name
        for h in autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
    ] == ["h"]


def test_creating_a_duplicate_is_already_exists_and_a_stale_update_is_conflict(
    core: client.CoreV1Api, namespace: str
) -> None:
    """Both are HTTP 409; the Status reason tells them apart."""
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
    )
    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
        )
    assert duplicate.value.status == 409
    assert _status(duplicate.value)["reason"] == "AlreadyExists"
    current = core.read_namespaced_config_map("c", namespace)
    stale_version = current.metadata.resource_version
    core.patch_namespaced_config_map("c", namespace, {"data": {"k": "1"}})
    current.metadata.resource_version = stale_version
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("c", namespace, current)
    assert stale.value.status == 409
    assert _status(stale.value)["reason"] == "Conflict"


def test_not_found_is_404_with_reason_and_details(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod("missing", namespace)
    status = _status(raised.value)
    assert (raised.value.status, status["reason"], status["details"]["name"]) == (
        404,
        "NotFound",
        "missing",
    )


def test_a_status_body_is_written_as_the_api_server_writes_it(
    apps: client.AppsV1Api, namespace: str
) -> None:
    """Field order of metav1.Status and StatusDetails, and json.Encoder's closing newline.

    The official client puts the body verbatim into its errors (utils.FailToCreateError), so
    its own end-to-end suite compares these bytes with a real cluster's.
    """
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "twice"},
        "spec": {
            "selector": {"matchLabels": {"app": "twice"}},
            "template": {
                "metadata": {"labels": {"app": "twice"}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }
    apps.create_namespaced_deployment(namespace, deployment)
    with pytest.raises(ApiException) as duplicate:
        apps.create_namespaced_deployment(namespace, deployment)
    assert duplicate.value.body == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"deployments.apps \\"twice\\" already exists","reason":"AlreadyExists",'
        '"details":{"name":"twice","group":"apps","kind":"deployments"},"code":409}\n'
    )


def test_an_invalid_object_is_422_naming_the_fields_and_nothing_is_stored(
    core: client.CoreV1Api, namespace: str
) -> None:
    pod = _pod("Bad_Name")
    pod.spec.containers[0].resources.requests = {"cpu": "lots"}
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(namespace, pod)
    status = _status(raised.value)
    assert raised.value.status == 422
    assert status["reason"] == "Invalid"
    fields = {cause["field"] for cause in status["details"]["causes"]}
    assert {"metadata.name", "spec.containers[0].resources.requests.cpu"} <= fields
    assert core.list_namespaced_pod(namespace).items == []


def test_a_body_that_is_not_json_is_a_bad_request(cluster: RunningKubesim, namespace: str) -> None:
    code, status = raw(cluster, "POST", f"/api/v1/namespaces/{namespace}/configmaps", "{not json")
    assert (code, status["reason"]) == (400, "BadRequest")


def test_a_verb_the_resource_lacks_is_method_not_allowed(cluster: RunningKubesim) -> None:
    """Namespaces have no deletecollection, and metrics are read-only."""
    for path, method in (
        ("/api/v1/namespaces", "DELETE"),
        ("/apis/metrics.k8s.io/v1beta1/nodes", "POST"),
    ):
        code, status = raw(cluster, method, path, {})
        assert (code, status["reason"]) == (405, "MethodNotAllowed")


def test_label_and_field_selectors_filter_lists(core: client.CoreV1Api, namespace: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        core.create_namespaced_pod(namespace, _pod(name, tier=tier))
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod(namespace, label_selector="tier=web").items
    ] == ["a", "c"]
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod(namespace, label_selector="tier in (db)").items
    ] == ["b"]
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod(namespace, field_selector="metadata.name=b").items
    ] == ["b"]
    eventually(
        lambda: (
            len(core.list_namespaced_pod(namespace, field_selector="status.phase=Running").items)
            == 3
        )
    )
    node = core.read_namespaced_pod("a", namespace).spec.node_name
    on_node = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    assert "a" in [p.metadata.name for p in on_node]


def test_limit_and_continue_page_through_a_list(core: client.CoreV1Api, namespace: str) -> None:
    for index in range(7):
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{index}"))
        )
    names, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"cm-{i}" for i in range(7)]
    assert pages == 3


def test_a_table_list_is_answered_whole_even_when_a_limit_is_asked(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    for index in range(4):
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"row-{index}"))
        )
    request = urllib.request.Request(  # noqa: S310 -- the loopback kubesim
        f"{cluster.base_url}/api/v1/namespaces/{namespace}/configmaps?limit=2",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback
        table = json.loads(response.read())
    assert [row["cells"][0] for row in table["rows"]] == [f"row-{i}" for i in range(4)]
    assert "continue" not in table["metadata"]


def test_deletecollection_removes_only_the_selected_objects(
    core: client.CoreV1Api, namespace: str
) -> None:
    for name, keep in (("x", "no"), ("y", "no"), ("z", "yes")):
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"keep": keep}))
        core.create_namespaced_config_map(namespace, body)
    core.delete_collection_namespaced_config_map(namespace, label_selector="keep=no")
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["z"]


def test_watch_streams_changes_from_a_resource_version(
    core: client.CoreV1Api, namespace: str
) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"))
    )
    core.patch_namespaced_config_map("w", namespace, {"data": {"a": "1"}})
    core.delete_namespaced_config_map("w", namespace)
    seen = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=2
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_sends_bookmarks_when_asked(cluster: RunningKubesim, namespace: str) -> None:
    query = "watch=true&allowWatchBookmarks=true&timeoutSeconds=2&resourceVersion=1"
    _, body = raw(cluster, "GET", f"/api/v1/namespaces/{namespace}/configmaps?{query}")
    lines = [json.loads(line) for line in body.splitlines() if line]
    bookmarks = [line for line in lines if line["type"] == "BOOKMARK"]
    assert bookmarks
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) > 1


def test_watch_from_a_compacted_version_is_410_gone(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    old = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="g"))
    )
    cluster.admin("POST", "/_kubesim/compact")
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=old, timeout_seconds=2
    )
    with pytest.raises(ApiException) as raised:
        # The client retries a 410 once on its own with the same version, then raises it.
        for _ in stream:
            pass
    assert raised.value.status == 410


def test_deleting_a_deployment_garbage_collects_its_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _deployment("gc", replicas=2))
    pods = eventually(lambda: core.list_namespaced_pod(namespace, label_selector="app=gc").items)
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)
    apps.delete_namespaced_deployment("gc", namespace)
    eventually(lambda: not core.list_namespaced_pod(namespace, label_selector="app=gc").items)
    assert not apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items


def test_orphan_propagation_keeps_the_dependents(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _deployment("keep", replicas=1))
    eventually(lambda: core.list_namespaced_pod(namespace, label_selector="app=keep").items)
    apps.delete_namespaced_deployment("keep", namespace, propagation_policy="Orphan")
    (replicaset,) = apps.list_namespaced_replica_set(namespace, label_selector="app=keep").items
    assert not replicaset.metadata.owner_references
    pods = core.list_namespaced_pod(namespace, label_selector="app=keep").items
    assert len(pods) == 1
    assert pods[0].metadata.owner_references[0].uid == replicaset.metadata.uid


def test_foreground_deletion_keeps_the_owner_until_its_pods_are_gone(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _deployment("fg", replicas=2))
    eventually(lambda: len(core.list_namespaced_pod(namespace, label_selector="app=fg").items) == 2)
    apps.delete_namespaced_deployment("fg", namespace, propagation_policy="Foreground")
    marked = apps.read_namespaced_deployment("fg", namespace)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.finalizers == ["foregroundDeletion"]

    def owner_gone() -> bool:
        try:
            apps.read_namespaced_deployment("fg", namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    eventually(owner_gone)
    assert not core.list_namespaced_pod(namespace, label_selector="app=fg").items
    assert not apps.list_namespaced_replica_set(namespace, label_selector="app=fg").items


def test_deleting_a_namespace_deletes_what_is_in_it(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="inside"))
    )
    core.create_namespaced_pod(namespace, _pod("p"))
    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    eventually(gone)
    assert not [
        c
        for c in core.list_config_map_for_all_namespaces().items
        if c.metadata.namespace == namespace
    ]
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late"))
        )
    assert raised.value.status == 404


def test_json_merge_and_json_patch_are_accepted(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="p"), data={"a": "1", "b": "2"}),
    )
    core.patch_namespaced_config_map(
        "p", namespace, [{"op": "replace", "path": "/data/a", "value": "9"}]
    )
    path = f"/api/v1/namespaces/{namespace}/configmaps/p"
    raw(cluster, "PATCH", path, {"data": {"b": None}}, "application/merge-patch+json")
    assert core.read_namespaced_config_map("p", namespace).data == {"a": "9"}


def test_scale_subresource_reads_and_sets_replicas(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, _deployment("s", replicas=1))
    scale = apps.read_namespaced_deployment_scale("s", namespace)
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=s"
    apps.patch_namespaced_deployment_scale("s", namespace, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("s", namespace).spec.replicas == 3
    eventually(
        lambda: (
            (apps.read_namespaced_deployment_status("s", namespace).status.ready_replicas or 0) == 3
        )
    )


def test_served_objects_deserialize_and_validate_against_the_real_schemas(
    cluster: RunningKubesim, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    """Everything kubesim writes on its own (status, nodes, events) is schema-complete."""
    apps.create_namespaced_deployment(namespace, _deployment("v", replicas=1))
    core.create_namespaced_pod(namespace, _pod("fails", image="registry.invalid/nothing:1"))
    service = {
        "metadata": {"name": "svc"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "v"}},
    }
    core.create_namespaced_service(namespace, service)
    claim = {
        "metadata": {"name": "claim"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    core.create_namespaced_persistent_volume_claim(namespace, claim)
    quota = {"metadata": {"name": "quota"}, "spec": {"hard": {"pods": "10"}}}
    core.create_namespaced_resource_quota(namespace, quota)
    eventually(
        lambda: (apps.read_namespaced_deployment("v", namespace).status.ready_replicas or 0) == 1
    )
    eventually(lambda: core.read_namespaced_resource_quota("quota", namespace).status.used)
    paths = [
        ("/api/v1/nodes", "Node", "v1"),
        (f"/api/v1/namespaces/{namespace}/pods", "Pod", "v1"),
        (f"/api/v1/namespaces/{namespace}/events", "Event", "v1"),
        (f"/apis/apps/v1/namespaces/{namespace}/deployments", "Deployment", "apps/v1"),
        (f"/api/v1/namespaces/{namespace}/services", "Service", "v1"),
        (f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", "PersistentVolumeClaim", "v1"),
        (f"/api/v1/namespaces/{namespace}/resourcequotas", "ResourceQuota", "v1"),
        ("/api/v1/namespaces", "Namespace", "v1"),
        ("/apis/scheduling.k8s.io/v1/priorityclasses", "PriorityClass", "scheduling.k8s.io/v1"),
    ]
    for path, kind, api_version in paths:
        _, body = raw(cluster, "GET", path)
        items = json.loads(body)["items"]
        assert items, path
        for item in items:
            errors = list(schemas.validator(api_version, kind).iter_errors(item))
            assert not errors, (path, errors[0].message)
    _, scale = raw(cluster, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/v/scale")
    assert not list(schemas.validator("autoscaling/v1", "Scale").iter_errors(json.loads(scale)))
    assert core.list_node().items[0].status.node_info.kubelet_version
    assert core.list_namespaced_event(namespace).items
    assert core.list_namespaced_service(namespace).items[0].spec.cluster_ip
    assert apps.read_namespaced_deployment_scale("v", namespace).status.replicas == 1


def test_a_watch_sees_writes_made_while_it_runs(core: client.CoreV1Api, namespace: str) -> None:
    seen: list[str] = []

    def consume() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, timeout_seconds=3
        ):
            seen.append(event["object"].metadata.name)
            if "late" in seen:
                return

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late"))
    )
    reader.join(timeout=5)
    assert "late" in seen


def test_pod_logs_are_served_once_the_container_runs(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("talker"))
    eventually(lambda: core.read_namespaced_pod("talker", namespace).status.phase == "Running")
    assert "container main (busybox:1.36) started" in core.read_namespaced_pod_log(
        "talker", namespace
    )
    core.create_namespaced_pod(namespace, _pod("mute", image="registry.invalid/x:1"))

    def pull_failed() -> bool:
        statuses = core.read_namespaced_pod("mute", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting is not None and waiting.reason in ("ErrImagePull", "ImagePullBackOff")

    # Not just any status: until the first pull fails the container waits ContainerCreating.
    eventually(pull_failed)
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log("mute", namespace)
    assert raised.value.status == 400
    message = _status(raised.value)["message"]
    assert message.startswith('container "main" in pod "mute" is waiting to start: ')
    assert message.endswith(("image can't be pulled", "trying and failing to pull image"))


async def test_the_asyncio_client_lists_creates_and_watches(
    cluster: RunningKubesim, namespace: str
) -> None:
    """kubernetes.aio, which async services use, speaks to kubesim like the sync client."""
    api = await aio_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    async with api:
        core = aio_client.CoreV1Api(api)
        assert len((await core.list_node()).items) == 4
        await core.create_namespaced_config_map(namespace, {"metadata": {"name": "async"}})
        seen = [
            (event["type"], event["object"].metadata.name)
            async for event in aio_watch.Watch().stream(
                core.list_namespaced_config_map, namespace, timeout_seconds=1
            )
        ]
        assert seen == [("ADDED", "async")]
        with pytest.raises(aio_client.ApiException) as raised:
            await core.create_namespaced_config_map(namespace, {"metadata": {"name": "async"}})
        assert json.loads(raised.value.body)["reason"] == "AlreadyExists"


def test_bad_requests_on_reads_and_writes_get_the_right_status(
    cluster: RunningKubesim, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str
) -> None:
    """Malformed selectors are 400, an invalid patch is 422 and changes nothing, apply is 415."""
    with pytest.raises(ApiException) as selector:
        core.list_namespaced_pod(namespace, label_selector="app in prod")
    assert (selector.value.status, _status(selector.value)["reason"]) == (400, "BadRequest")
    with pytest.raises(ApiException) as field:
        core.list_namespaced_pod(namespace, field_selector="spec.hostname=x")
    assert field.value.status == 400
    apps.create_namespaced_deployment(namespace, _deployment("bad", replicas=1))
    with pytest.raises(ApiException) as invalid:
        apps.patch_namespaced_deployment("bad", namespace, {"spec": {"replicas": -1}})
    causes = _status(invalid.value)["details"]["causes"]
    assert invalid.value.status == 422
    assert [c["field"] for c in causes] == ["spec.replicas"]
    assert apps.read_namespaced_deployment("bad", namespace).spec.replicas == 1
    with pytest.raises(ApiException) as immutable:
        apps.patch_namespaced_deployment(
            "bad", namespace, {"spec": {"selector": {"matchLabels": {"app": "x"}}}}
        )
    assert immutable.value.status == 422
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/bad"
    code, status = raw(cluster, "PATCH", path, {"spec": {}}, "application/apply-patch+yaml")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")


def test_unknown_fields_are_dropped_unless_strict_and_dry_runs_store_nothing(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    """The client refuses unknown fields itself, so they are sent as plain JSON here."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    code, created = raw(cluster, "POST", path, {"metadata": {"name": "loose"}, "colour": "red"})
    assert code == 201
    assert "colour" not in json.loads(created)
    code, strict = raw(
        cluster,
        "POST",
        path + "?fieldValidation=Strict",
        {"metadata": {"name": "strict"}, "colour": "red"},
    )
    assert code == 400
    assert 'unknown field "colour"' in strict["message"]
    dry = core.create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}}, dry_run="All")
    assert dry.metadata.name == "dry"
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["loose"]


def test_a_single_object_can_be_watched_by_its_legacy_watch_path(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="one"))
    )
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="other"))
    )
    _, body = raw(
        cluster, "GET", f"/api/v1/watch/namespaces/{namespace}/configmaps/one?timeoutSeconds=1"
    )
    events = [json.loads(line) for line in body.splitlines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one")]
