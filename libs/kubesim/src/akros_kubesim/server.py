"""The HTTP front: routes Kubernetes REST paths to the API machinery. Handlers stay thin."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from akros_kubesim import (
    errors,
    event_views,
    gpu_operator,
    media,
    patch,
    protobuf,
    resources,
    tables,
    usage,
)
from akros_kubesim.api import Api
from akros_kubesim.cluster import ClusterConfig, node_object, version_document
from akros_kubesim.controllers import Simulation
from akros_kubesim.errors import ApiError
from akros_kubesim.faults import FaultInjector, FaultSettings
from akros_kubesim.kubelet import ContainerRun
from akros_kubesim.resources import (
    EVENT,
    EVENTS_V1,
    NAMESPACE,
    NODE,
    POD,
    PRIORITY_CLASS,
    ResourceType,
)
from akros_kubesim.selectors import object_filter, parse_field_selector, parse_label_selector
from akros_kubesim.store import (
    Change,
    Store,
    decode_continue,
    encode_continue,
    now_rfc3339,
    parse_resource_version,
)

JSON = "application/json"
_BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_BUILTIN_PRIORITY_CLASSES = (
    ("system-cluster-critical", 2000000000),
    ("system-node-critical", 2000001000),
)


@dataclass(frozen=True)
class ServerOptions:
    bookmark_seconds: float = 5.0
    watch_history: int = 20_000
    max_watch_seconds: int = 1800
    event_ttl_seconds: float = 3600.0
    hpa_sync_seconds: float = 15.0
    # Scales the durations a real cluster takes (grace periods, image pulls, back-offs) so
    # tests keep a real cluster's sequence of states without its minutes: 0.01 turns the
    # default 30 s grace period into 0.3 s.
    time_factor: float = 1.0
    # metrics-server's --metric-resolution: a pod appears in metrics.k8s.io only once a scrape
    # after its start has been taken (scaled by the time factor too).
    metrics_resolution_seconds: float = 15.0


class Kubesim:
    """The whole simulated cluster: store, API machinery, control plane and fault injector."""

    def __init__(self, config: ClusterConfig, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self.version = version_document(config.kubernetes_version)
        self.store = Store(self.options.watch_history)
        self.api = Api(self.store)
        self.simulation = Simulation(
            self.api,
            config,
            self.options.event_ttl_seconds,
            self.options.hpa_sync_seconds,
            self.options.time_factor,
        )
        self.faults = FaultInjector()
        # Nodes whose dcgm-exporter does not answer (set through /_kubesim/dcgm/silent).
        self.silent_exporters: set[str] = set()
        self._seed(config)

    def _seed(self, config: ClusterConfig) -> None:
        for name in _BUILTIN_NAMESPACES:
            self.api.create(NAMESPACE, "", {"metadata": {"name": name}})
        for name, value in _BUILTIN_PRIORITY_CLASSES:
            body = {
                "metadata": {"name": name},
                "value": value,
                "description": "Built-in priority class.",
            }
            self.api.create(PRIORITY_CLASS, "", body)
        servers = [spec.name for spec in config.nodes if spec.role == "server"]
        if servers:
            self.api.control_plane_node = servers[0]
        for index, spec in enumerate(config.nodes):
            self.api.create(NODE, "", node_object(spec, index, config.kubernetes_version))
        if config.gpu_operator and any(spec.gpus for spec in config.nodes):
            for manifest in gpu_operator.gpu_operator_objects():
                self._create_manifest(manifest)
        for manifest in config.objects:
            self._create_manifest(manifest)

    def _create_manifest(self, manifest: dict[str, Any]) -> None:
        kind = resources.BY_KIND.get((manifest["apiVersion"], manifest["kind"]))
        if kind is None:
            name = f"{manifest['apiVersion']} {manifest['kind']}"
            raise errors.ApiError(400, f"kubesim does not serve {name}")
        namespace = (manifest.get("metadata") or {}).get("namespace") or "default"
        kind, manifest = _stored(kind, manifest)
        self.api.create(kind, namespace if kind.namespaced else "", manifest)


# --- requests and responses ------------------------------------------------------------


def _encoded(document: Any) -> bytes:
    """JSON as the API server writes it: Go's json.Encoder ends every document with a newline."""
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)


def _warning_headers(warnings: list[str] | None) -> dict[str, str] | None:
    """The API server's warnings as HTTP Warning headers (code 299, as in RFC 7234)."""
    return {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)} if warnings else None


def _json(document: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = _warning_headers(warnings)
    return web.Response(body=_encoded(document), status=status, content_type=JSON, headers=headers)


def _respond(
    request: web.Request, document: Any, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    """The document in the media type the client's Accept prefers: protobuf or JSON."""
    accept = request.headers.get("Accept", "")
    if media.PROTOBUF not in accept:
        return _json(document, status, warnings)
    has_protobuf = isinstance(document, dict) and _protobuf_kind(document)
    if media.output_media_type(accept, has_protobuf) == media.JSON:
        return _json(document, status, warnings)
    headers = _warning_headers(warnings)
    return web.Response(
        body=protobuf.encode(document),
        status=status,
        content_type=media.PROTOBUF,
        headers=headers,
    )


def _protobuf_kind(document: dict[str, Any]) -> bool:
    """Whether the document's kind has a protobuf form (built-in kinds do, metrics not)."""
    api_version, kind = document.get("apiVersion", ""), document.get("kind", "")
    return protobuf.tables().for_kind(api_version, kind) is not None


def _error(error: ApiError, request: web.Request | None = None) -> web.Response:
    headers = {"Retry-After": "1"} if error.code == 429 else None
    status = error.status()
    if request is not None and media.PROTOBUF in request.headers.get("Accept", ""):
        with contextlib.suppress(ApiError):
            if media.output_media_type(request.headers["Accept"], True) == media.PROTOBUF:
                return web.Response(
                    body=protobuf.encode(status),
                    status=error.code,
                    content_type=media.PROTOBUF,
                    headers=headers,
                )
    return web.Response(
        body=_encoded(status), status=error.code, content_type=JSON, headers=headers
    )


async def _body(request: web.Request, target: "Target | None" = None) -> Any:
    raw = await request.read()
    if not raw:
        return None
    if media.is_protobuf(request.headers.get("Content-Type", "")):
        return _protobuf_body(raw, target)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise errors.bad_request(
            f"the body of the request could not be decoded as JSON: {error}"
        ) from error


def _protobuf_body(raw: bytes, target: "Target | None") -> dict[str, Any]:
    """A protobuf request body as its JSON-shaped dict; 415 where the API server has no
    protobuf decoder (metrics, kubesim's own endpoints)."""
    if target is None or target.resource.computed:
        raise errors.ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types "
            f"include: {JSON}",
        )
    try:
        return protobuf.decode(raw)
    except protobuf.ProtobufError as error:
        raise errors.bad_request(
            f"the body of the request could not be decoded as protobuf: {error}"
        ) from error


def _watch_in_protobuf(request: web.Request, resource: ResourceType) -> bool:
    """Whether a watch streams protobuf frames (`application/vnd.kubernetes.protobuf;
    stream=watch`, each a length-prefixed WatchEvent), as a client preferring it gets."""
    accept = request.headers.get("Accept", "")
    if media.PROTOBUF not in accept:
        return False
    available = protobuf.tables().for_kind(resource.api_version, resource.kind) is not None
    return media.output_media_type(accept, available, watch=True) == media.PROTOBUF


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _present(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A stored object as the resource's version presents it (views convert, others pass)."""
    if resource is EVENTS_V1 and obj.get("kind") == "Event":
        return event_views.to_events_v1(obj)
    return obj


def _stored(resource: ResourceType, body: Any) -> tuple[ResourceType, Any]:
    """The resource a write goes to, and the body in its stored form."""
    if resource is EVENTS_V1:
        return EVENT, event_views.to_core(body) if isinstance(body, dict) else body
    return resource, body


@dataclass(frozen=True)
class Target:
    resource: ResourceType
    namespace: str
    name: str
    subresource: str
    watch: bool


def _resolve(path: str) -> Target | None:
    """Maps a REST path to the resource, namespace, name and subresource it addresses."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and (group, version, rest[2]) in resources.BY_PATH
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    resource = resources.BY_PATH.get((group, version, rest[0]))
    if resource is None or (namespace and not resource.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and subresource not in resource.subresources:
        return None
    return Target(resource, namespace, name, subresource, watch)


# --- the application --------------------------------------------------------------------


def build_app(sim: Kubesim) -> web.Application:
    app = web.Application(client_max_size=32 * 2**20, middlewares=[_fault_middleware(sim)])
    handlers = _Handlers(sim)
    app.router.add_route("*", "/_kubesim/faults", handlers.faults)
    app.router.add_post("/_kubesim/compact", handlers.compact)
    app.router.add_get("/_kubesim/dcgm/metrics", handlers.dcgm)
    app.router.add_get("/_kubesim/log-follows", handlers.log_follows)
    app.router.add_route("*", "/_kubesim/dcgm/silent", handlers.silent_exporters)
    for probe in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(probe, handlers.healthy)
    app.router.add_get("/version", handlers.version)
    app.router.add_get("/api", handlers.core_versions)
    app.router.add_get("/apis", handlers.groups)
    app.router.add_get("/openapi/v2", handlers.openapi_v2)
    app.router.add_get("/openapi/v3", handlers.openapi_v3)
    pod_proxy = "/api/v1/namespaces/{namespace}/pods/{target}/proxy"
    app.router.add_route("*", pod_proxy, handlers.pod_proxy)
    app.router.add_route("*", pod_proxy + "/{tail:.*}", handlers.pod_proxy)
    app.router.add_route("*", "/{path:api/.*|apis/.*}", handlers.rest)

    async def start_simulation(app: web.Application) -> Any:
        task = asyncio.create_task(sim.simulation.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(start_simulation)
    return app


def _fault_middleware(sim: Kubesim) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(("/api/", "/apis/")) or request.path in ("/api", "/apis"):
            try:
                await sim.faults.before_request(request.method)
            except ApiError as error:
                return _error(error, request)
        return await handler(request)

    return middleware


class _Handlers:
    def __init__(self, sim: Kubesim) -> None:
        self.sim = sim
        self._usage = usage.UsageCache()
        # Logs being followed now: a test sees a client's hang-up end its follow here.
        self._log_follows = 0

    # --- admin and discovery ---------------------------------------------------------

    async def log_follows(self, request: web.Request) -> web.Response:
        return _json({"open": self._log_follows})

    async def faults(self, request: web.Request) -> web.Response:
        try:
            if request.method in ("PUT", "POST"):
                self.sim.faults.configure(FaultSettings.from_json(await _body(request)))
            elif request.method == "DELETE":
                self.sim.faults.configure(FaultSettings())
            elif request.method != "GET":
                raise errors.method_not_allowed()
        except (ApiError, TypeError, ValueError) as error:
            return _error(error if isinstance(error, ApiError) else errors.bad_request(str(error)))
        return _json(self.sim.faults.describe())

    async def compact(self, request: web.Request) -> web.Response:
        self.sim.store.compact()
        return _json({"compactedThrough": self.sim.store.resource_version})

    async def dcgm(self, request: web.Request) -> web.Response:
        pods = {p["metadata"]["uid"]: p for p in self.sim.store.all(POD.key)}
        nodes = sorted(self.sim.store.all(NODE.key), key=lambda n: n["metadata"]["name"])
        text = usage.dcgm_exposition(nodes, pods, self.sim.simulation.gpu_assignments)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def silent_exporters(self, request: web.Request) -> web.Response:
        """GET lists, PUT replaces ({"nodes": [...]}) the nodes whose exporter does not answer."""
        try:
            if request.method == "PUT":
                body = await _body(request)
                nodes = (body or {}).get("nodes") if isinstance(body, dict) else None
                if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
                    raise errors.bad_request('expected {"nodes": [node names]}')
                self.sim.silent_exporters = set(nodes)
            elif request.method != "GET":
                raise errors.method_not_allowed()
        except ApiError as error:
            return _error(error)
        return _json({"nodes": sorted(self.sim.silent_exporters)})

    async def pod_proxy(self, request: web.Request) -> web.StreamResponse:
        """The API server's proxy to a pod's port: kubesim answers for dcgm-exporter pods only.

        Nothing else runs behind a simulated pod, so any other target is refused the way the
        API server reports a connection that the pod refused.
        """
        try:
            if request.method not in ("GET", "HEAD"):
                raise errors.method_not_allowed()
            namespace = request.match_info["namespace"]
            try:
                _, name, port = gpu_operator.parse_proxy_target(request.match_info["target"])
            except ValueError as error:
                raise errors.bad_request(str(error)) from error
            pod = self.sim.api.get(POD, namespace, name)
            status = pod.get("status") or {}
            node = (pod.get("spec") or {}).get("nodeName", "")
            answering = (
                gpu_operator.is_exporter_pod(pod)
                and status.get("phase") == "Running"
                and not pod["metadata"].get("deletionTimestamp")
                and port in (None, gpu_operator.EXPORTER_PORT)
                and node not in self.sim.silent_exporters
            )
            if not answering:
                address = f"{status.get('podIP', '')}:{port or 80}"
                raise errors.ApiError(
                    503,
                    f"error trying to reach service: dial tcp {address}: connect: "
                    "connection refused",
                )
            if request.match_info.get("tail", "") != "metrics":
                raise errors.ApiError(404, "404 page not found")
        except ApiError as error:
            return _error(error)
        pods = {p["metadata"]["uid"]: p for p in self.sim.store.all(POD.key)}
        own_node = [n for n in self.sim.store.all(NODE.key) if n["metadata"]["name"] == node]
        text = usage.dcgm_exposition(own_node, pods, self.sim.simulation.gpu_assignments)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def version(self, request: web.Request) -> web.Response:
        return _json(
            self.sim.version
            | {
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def core_versions(self, request: web.Request) -> web.Response:
        return _json(resources.api_versions_document())

    async def groups(self, request: web.Request) -> web.Response:
        return _json(resources.api_group_list_document())

    async def openapi_v2(self, request: web.Request) -> web.Response:
        # An empty document tells kubectl there is no schema to validate against; kubectl then
        # uses its compiled-in types for validation and strategic-merge patches.
        return web.Response(body=b"", content_type=JSON)

    async def openapi_v3(self, request: web.Request) -> web.Response:
        return _json({"paths": {}})

    # --- REST ------------------------------------------------------------------------

    async def rest(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._rest(request)
        except ApiError as error:
            return _error(error, request)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["api", "v1"] or (parts[:1] == ["apis"] and len(parts) == 3):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            document = resources.api_resource_list_document(group, version)
            if document is None:
                raise errors.ApiError(404, "the server could not find the requested resource")
            return _json(document)
        if parts[:1] == ["apis"] and len(parts) == 2:
            group_document = resources.api_group_document(parts[1])
            if group_document is None:
                raise errors.ApiError(404, "the server could not find the requested resource")
            return _json(group_document)
        target = _resolve(request.path)
        if target is None:
            raise errors.ApiError(404, "the server could not find the requested resource")
        if target.resource.computed:
            return self._metrics(request, target)
        method = request.method
        if method == "GET":
            if (target.watch or _flag(request, "watch")) and not target.subresource:
                self._require_verb(target, "watch")
                return await self._watch(request, target)
            if target.subresource == "log" and _flag(request, "follow"):
                return await self._follow_log(request, target)
            if target.name:
                return self._get(request, target)
            self._require_verb(target, "list")
            return self._list(request, target)
        if method == "POST":
            return await self._post(request, target)
        if method == "PUT" and target.name:
            return await self._put(request, target)
        if method == "PATCH" and target.name:
            return await self._patch(request, target)
        if method == "DELETE":
            return await self._delete(request, target)
        raise errors.method_not_allowed()

    def _require_verb(self, target: Target, verb: str) -> None:
        if target.subresource:
            allowed = target.resource.subresources[target.subresource][1]
        else:
            allowed = target.resource.verbs
        if verb not in allowed:
            raise errors.method_not_allowed()

    def _render(
        self,
        request: web.Request,
        target: Target,
        obj: dict[str, Any],
        status: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        if _wants_table(request) and not target.subresource:
            document = tables.table(
                target.resource.kind, [obj], request.query.get("includeObject", "Metadata")
            )
            document["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion", "")
            return _respond(request, document, status)
        return _respond(request, _present(target.resource, obj), status, warnings)

    def _get(self, request: web.Request, target: Target) -> web.Response:
        self._require_verb(target, "get")
        api = self.sim.api
        if target.subresource == "scale":
            return _respond(request, api.scale(target.namespace, target.name, target.resource))
        obj = api.get(target.resource, target.namespace, target.name)
        if target.subresource == "log":
            runs = self.sim.simulation.container_runs.get(obj["metadata"]["uid"], [])
            tail = request.query.get("tailLines")
            text = container_log(
                obj,
                request.query.get("container", ""),
                runs,
                previous=_flag(request, "previous"),
                tail_lines=max(int(tail), 0) if tail and tail.lstrip("-").isdigit() else None,
            )
            return web.Response(text=text, content_type="text/plain", charset="utf-8")
        return self._render(request, target, obj)

    async def _follow_log(self, request: web.Request, target: Target) -> web.StreamResponse:
        """`logs -f`: the log so far (its last tailLines), then each line as the container
        writes it, until the container ends, its pod is gone or the client goes away; as the
        kubelet does, one that is not running has its log sent and the stream closed."""
        obj = self.sim.api.get(target.resource, target.namespace, target.name)
        uid = obj["metadata"]["uid"]
        runs = self.sim.simulation.container_runs.get(uid, [])
        container = request.query.get("container", "")
        previous = _flag(request, "previous")
        tail = request.query.get("tailLines")
        # Errors (no such container, not started yet) are answered before the stream opens.
        text = container_log(
            obj,
            container,
            runs,
            previous=previous,
            tail_lines=max(int(tail), 0) if tail and tail.lstrip("-").isdigit() else None,
        )
        response = web.StreamResponse(
            headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._log_follows += 1
        try:
            await response.write(text.encode())
            run = None if previous else _followed_run(obj, container, runs)
            if run is None:
                return response
            lines, sent = run.log, len(run.log)
            while True:
                await asyncio.sleep(LOG_FOLLOW_POLL_SECONDS)
                ended = run.phase in _ENDED_PHASES or lines is not run.log
                gone = uid not in self.sim.simulation.container_runs
                if sent < len(lines):
                    await response.write("".join(f"{line}\n" for line in lines[sent:]).encode())
                    sent = len(lines)
                if ended or gone or request.transport is None or request.transport.is_closing():
                    return response
        except ConnectionResetError:
            return response  # the client went away; nothing is left to send
        finally:
            self._log_follows -= 1

    def _selectors(
        self, request: web.Request, target: Target
    ) -> Callable[[Mapping[str, Any]], bool] | None:
        label_text = request.query.get("labelSelector", "")
        field_text = request.query.get("fieldSelector", "")
        if not label_text and not field_text:
            return None
        return object_filter(
            parse_label_selector(label_text), parse_field_selector(field_text, target.resource.kind)
        )

    def _list(self, request: web.Request, target: Target) -> web.Response:
        accepts = self._selectors(request, target)
        try:
            limit = int(request.query.get("limit", "0") or 0)
        except ValueError as error:
            raise errors.bad_request("limit must be an integer") from error
        token = request.query.get("continue", "")
        after = decode_continue(token) if token else None
        if _wants_table(request):
            # Tables (kubectl's human-readable output) are not chunked: the API lets a server
            # answer a list whole, and kubectl 1.20's client-side rate limit (5 requests/s)
            # would otherwise spend seconds on pages the server answers in milliseconds.
            # JSON lists, which programs read, keep limit/continue.
            limit, after = 0, None
        store = self.sim.store
        items, last, remaining = store.list_page(
            target.resource.key, target.namespace, accepts, max(limit, 0), after
        )
        metadata: dict[str, Any] = {"resourceVersion": str(store.resource_version)}
        if last is not None:
            metadata["continue"] = encode_continue(last, store.resource_version)
            if remaining is not None:
                metadata["remainingItemCount"] = remaining
        if _wants_table(request):
            document = tables.table(
                target.resource.kind, items, request.query.get("includeObject", "Metadata")
            )
            document["metadata"] = metadata
            return _respond(request, document)
        resource = target.resource
        return _respond(
            request,
            {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": metadata,
                "items": [_present(resource, item) for item in items],
            },
        )

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        store = self.sim.store
        accepts = self._selectors(request, target)
        if target.name:
            by_name = parse_field_selector(f"metadata.name={target.name}", target.resource.kind)
            accepts = (
                object_filter((), by_name)
                if accepts is None
                else _both(accepts, object_filter((), by_name))
            )
        version_text = request.query.get("resourceVersion", "")
        since = parse_resource_version(version_text) if version_text not in ("", "0") else None
        bookmarks = _flag(request, "allowWatchBookmarks")
        # A streaming list (WatchList, what kubectl 1.37's informers use): the current state
        # as ADDED events, then a bookmark marking their end, then the changes after it.
        initial_events = _flag(request, "sendInitialEvents")
        if initial_events:
            if request.query.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks:
                requirement = errors.Cause(
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires allowWatchBookmarks=true and "
                    "resourceVersionMatch=NotOlderThan",
                    "sendInitialEvents",
                )
                raise errors.invalid("ListOptions", "meta.k8s.io", "", [requirement])
            since = None
        timeout = min(
            float(request.query.get("timeoutSeconds") or self.sim.options.max_watch_seconds),
            self.sim.options.max_watch_seconds,
        )
        as_table = _wants_table(request)
        include_object = request.query.get("includeObject", "Metadata")
        in_protobuf = not as_table and _watch_in_protobuf(request, target.resource)
        content_type = f"{media.PROTOBUF};stream=watch" if in_protobuf else JSON
        response = web.StreamResponse(
            headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(kind: str, obj: dict[str, Any]) -> None:
            body = obj
            if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                body = tables.table(target.resource.kind, [obj], include_object)
            elif kind in ("ADDED", "MODIFIED", "DELETED"):
                body = _present(target.resource, obj)
            if in_protobuf:
                await response.write(protobuf.encode_watch_event(kind, protobuf.encode(body)))
            else:
                await response.write(orjson.dumps({"type": kind, "object": body}) + b"\n")

        try:
            watcher, backlog = store.watch(target.resource.key, target.namespace, since)
        except ApiError as error:
            await send("ERROR", error.status())
            return response
        try:
            if since is None:
                initial, _, _ = store.list_page(
                    target.resource.key, target.namespace, accepts, 0, None
                )
                for obj in initial:
                    await send("ADDED", obj)
                if initial_events:
                    await send("BOOKMARK", _bookmark(target.resource, store.resource_version, True))
            for change in backlog:
                await self._send_change(send, change, accepts)
            deadline = time.monotonic() + timeout
            interval = self.sim.options.bookmark_seconds
            while (left := deadline - time.monotonic()) > 0:
                try:
                    # Not wait_for, which on Python 3.11 can swallow a cancellation.
                    async with asyncio.timeout(min(left, interval)):
                        change = await watcher.queue.get()
                except TimeoutError:
                    if bookmarks and time.monotonic() < deadline:
                        bookmark = _bookmark(target.resource, store.resource_version, False)
                        await send("BOOKMARK", bookmark)
                    continue
                await self._send_change(send, change, accepts)
        except ConnectionResetError:
            pass  # the client went away; nothing is left to send
        finally:
            store.unwatch(watcher)
        return response

    @staticmethod
    async def _send_change(
        send: Callable[[str, dict[str, Any]], Awaitable[None]],
        change: Change,
        accepts: Callable[[Mapping[str, Any]], bool] | None,
    ) -> None:
        if accepts is None:
            await send(change.type, change.obj)
            return
        now_matches = change.type != "DELETED" and accepts(change.obj)
        before_matches = change.previous is not None and accepts(change.previous)
        if change.type == "DELETED":
            if before_matches:
                await send("DELETED", change.obj)
        elif now_matches:
            await send("MODIFIED" if before_matches else "ADDED", change.obj)
        elif before_matches:
            await send("DELETED", change.obj)

    async def _post(self, request: web.Request, target: Target) -> web.Response:
        api = self.sim.api
        body = await _body(request, target)
        if target.subresource == "binding":
            return _respond(request, api.bind(target.namespace, target.name, body), 201)
        if target.name or target.subresource:
            raise errors.method_not_allowed()
        self._require_verb(target, "create")
        namespace = target.namespace
        if target.resource.namespaced and not namespace:
            namespace = ((body or {}).get("metadata") or {}).get("namespace") or "default"
        stored_resource, body = _stored(target.resource, body)
        obj, warnings = api.create(
            stored_resource,
            namespace,
            body,
            dry_run=_dry_run(request),
            strict_fields=_strict(request),
        )
        return self._render(request, target, obj, 201, warnings)

    async def _put(self, request: web.Request, target: Target) -> web.Response:
        api = self.sim.api
        self._require_verb(target, "update")
        body = await _body(request, target)
        if target.subresource == "scale":
            return _respond(
                request,
                api.update_scale(target.namespace, target.name, body, None, target.resource),
            )
        stored_resource, body = _stored(target.resource, body)
        obj, warnings = api.update(
            stored_resource,
            target.namespace,
            target.name,
            body,
            subresource=target.subresource,
            dry_run=_dry_run(request),
            strict_fields=_strict(request),
        )
        return self._render(request, target, obj, 200, warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        api = self.sim.api
        self._require_verb(target, "patch")
        body = await _body(request, target)
        content_type = request.headers.get("Content-Type", "")
        if target.subresource == "scale":
            return _respond(
                request,
                api.update_scale(
                    target.namespace, target.name, body, content_type, target.resource
                ),
            )
        if target.resource.stored_as:
            # A view is patched in the form it presents, then stored in its own.
            current = _present(target.resource, api.get(target.resource, *_named(target)))
            patched = patch.apply_patch(content_type, current, body)
            stored_resource, stored_body = _stored(target.resource, patched)
            obj, warnings = api.update(
                stored_resource,
                target.namespace,
                target.name,
                stored_body,
                dry_run=_dry_run(request),
                strict_fields=_strict(request),
            )
            return self._render(request, target, obj, 200, warnings)
        obj, warnings = api.patch(
            target.resource,
            target.namespace,
            target.name,
            content_type,
            body,
            subresource=target.subresource,
            dry_run=_dry_run(request),
            strict_fields=_strict(request),
        )
        return self._render(request, target, obj, 200, warnings)

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        api = self.sim.api
        body = await _body(request, target)
        options = dict(body) if isinstance(body, dict) else {}
        if "gracePeriodSeconds" in request.query:
            options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        if target.subresource:
            raise errors.method_not_allowed()
        if target.name:
            self._require_verb(target, "delete")
            deleted_object = api.delete(
                target.resource,
                target.namespace,
                target.name,
                options,
                dry_run=_dry_run(request),
            )
            return _respond(request, _present(target.resource, deleted_object))
        self._require_verb(target, "deletecollection")
        accepts = self._selectors(request, target)
        items, _, _ = self.sim.store.list_page(
            target.resource.key, target.namespace, accepts, 0, None
        )
        deleted = []
        for item in items:
            metadata = item["metadata"]
            with contextlib.suppress(ApiError):
                deleted.append(
                    api.delete(
                        target.resource,
                        metadata.get("namespace", ""),
                        metadata["name"],
                        options,
                        dry_run=_dry_run(request),
                    )
                )
        resource = target.resource
        return _respond(
            request,
            {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.sim.store.resource_version)},
                "items": [_present(resource, item) for item in deleted],
            },
        )

    # --- metrics.k8s.io ----------------------------------------------------------------

    def _metrics(self, request: web.Request, target: Target) -> web.Response:
        if request.method != "GET" or target.subresource:
            raise errors.method_not_allowed()
        if target.watch or _flag(request, "watch"):
            raise errors.method_not_allowed()
        store = self.sim.store
        timestamp = now_rfc3339()
        accepts = self._selectors(request, target)
        running = [
            p for p in store.all(POD.key) if (p.get("status") or {}).get("phase") == "Running"
        ]
        # Like metrics-server, which answers from its last scrape, a pod is missing until it
        # has run for a scrape interval; its node's figures count it from then too.
        resolution = self.sim.options.metrics_resolution_seconds * self.sim.options.time_factor
        horizon = time.monotonic() - resolution
        since = self.sim.simulation.running_since
        running = [p for p in running if since.get(p["metadata"]["uid"], horizon) <= horizon]
        if target.resource.kind == "NodeMetrics":
            by_node: dict[str, list[usage.PodUsage]] = {}
            usages = self._usage.usages(running, all_running=True)
            for pod, pod_usage in zip(running, usages, strict=True):
                by_node.setdefault(pod["spec"]["nodeName"], []).append(pod_usage)
            nodes, _, _ = store.list_page(NODE.key, "", accepts, 0, None)
            if target.name:
                nodes = [n for n in nodes if n["metadata"]["name"] == target.name]
                if not nodes:
                    raise errors.not_found("nodes", "metrics.k8s.io", target.name)
            items = [
                usage.node_metrics(n, by_node.get(n["metadata"]["name"], []), timestamp)
                for n in nodes
            ]
        else:
            chosen = [
                p
                for p in running
                if (not target.namespace or p["metadata"]["namespace"] == target.namespace)
                and (not target.name or p["metadata"]["name"] == target.name)
                and (accepts is None or accepts(p))
            ]
            if target.name and not chosen:
                raise errors.not_found("pods", "metrics.k8s.io", target.name)
            chosen.sort(key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
            usages = self._usage.usages(chosen, all_running=len(chosen) == len(running))
            items = [
                usage.pod_metrics(p, timestamp, u) for p, u in zip(chosen, usages, strict=True)
            ]
        if target.name:
            return _respond(request, items[0])
        kind = f"{target.resource.kind}List"
        return _respond(
            request,
            {"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items},
        )


# The kubelet's words for the common reasons a container has no log yet.
_WAITING_EXPLAINED = {
    "ErrImagePull": "image can't be pulled",
    "ImagePullBackOff": "trying and failing to pull image",
}


LOG_FOLLOW_POLL_SECONDS = 0.1
"""How often a followed log looks for new lines: the simulated containers write a line at a
pull, a start or an end, so a tenth of a second is as prompt as a reader can tell."""
# A container in these phases writes no more lines to the log being followed: it has ended
# for good, or ended and waits to be restarted (its next run starts a new log).
_ENDED_PHASES = frozenset({"done", "crash-backoff"})


def _followed_run(
    pod: Mapping[str, Any], container: str, runs: Sequence[ContainerRun]
) -> ContainerRun | None:
    """The container run a follow keeps reading, or None when it writes no more (ended)."""
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    wanted = container or (names[0] if len(names) == 1 else "")
    run = next((r for r in runs if r.name == wanted), None)
    if run is None or run.phase in _ENDED_PHASES:
        return None
    return run


def container_log(
    pod: Mapping[str, Any],
    container: str,
    runs: Sequence[ContainerRun],
    previous: bool = False,
    tail_lines: int | None = None,
) -> str:
    """The log the simulated kubelet kept for a container: its pulls, its start, how it ended.

    Errors match the kubelet's: a container name is needed when the pod has several, a
    container that never started has no log yet, and `previous` needs a restarted one.
    """
    name = pod["metadata"]["name"]
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    if not container:
        if len(names) != 1:
            choices = " ".join(names)
            raise errors.bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{choices}]"
            )
        container = names[0]
    if container not in names:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    run = next((r for r in runs if r.name == container), None)
    lines = run.log_lines(previous) if run is not None else None
    if lines is None and previous:
        raise errors.bad_request(
            f'previous terminated container "{container}" in pod "{name}" not found'
        )
    if lines is None:
        statuses = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        state = (statuses.get(container) or {}).get("state") or {}
        reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
        raise errors.bad_request(
            f'container "{container}" in pod "{name}" is waiting to start: '
            + _WAITING_EXPLAINED.get(reason, reason)
        )
    if tail_lines is not None:
        lines = lines[len(lines) - tail_lines :] if tail_lines < len(lines) else lines
    return "".join(f"{line}\n" for line in lines)


def _bookmark(resource: ResourceType, version: int, initial_events_end: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_events_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata}


def _named(target: Target) -> tuple[str, str]:
    return target.namespace, target.name


def _both(
    first: Callable[[Mapping[str, Any]], bool], second: Callable[[Mapping[str, Any]], bool]
) -> Callable[[Mapping[str, Any]], bool]:
    return lambda obj: first(obj) and second(obj)


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def _strict(request: web.Request) -> bool:
    return request.query.get("fieldValidation", "") == "Strict"


async def serve(
    sim: Kubesim, host: str, port: int, ready: Callable[[int], None] | None = None
) -> None:
    """Serves until cancelled; calls ready(port) once the socket listens (port 0 picks one)."""
    # Open watches never end by themselves: waiting long for them only delays the exit.
    runner = web.AppRunner(build_app(sim), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # With port 0 the OS picks the port; the runner knows the address it actually bound.
    bound_port = port
    for address in runner.addresses:
        bound_port = int(address[1])
    if ready is not None:
        ready(bound_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
