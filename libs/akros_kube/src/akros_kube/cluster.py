"""The Cluster adapter: requests, watches and error translation over the official client.

Wraps the official client (kubernetes.aio) and translates its ApiException into the
platform's own errors, so no service knows the client exists. Objects go in
and come out as plain dicts in the API's JSON shape.
"""

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException
from kubernetes.aio.config.config_exception import ConfigException

from akros_bus import get_logger

T = TypeVar("T")
_log = get_logger("akros.kube")


class KubeError(Exception):
    """An answer of the API server that the caller must act on."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class NotFoundError(KubeError):
    """The object does not exist (404)."""


class AlreadyExistsError(KubeError):
    """An object of that name exists already (409 AlreadyExists)."""


class ConflictError(KubeError):
    """A write lost a race with another (409 Conflict, stale resourceVersion)."""


class InvalidError(KubeError):
    """The API server refused the object as invalid (422, 400): permanent."""


class ForbiddenError(KubeError):
    """Not allowed: missing RBAC, admission refusal, resource quota (401, 403): permanent."""


class TransientError(KubeError):
    """Worth retrying: 5xx, 429, timeouts, connection errors."""


class GoneError(KubeError):
    """A watch's resourceVersion is too old (410): list again."""


class NoClusterConfigError(KubeError):
    """Neither an in-cluster service account nor a kubeconfig says how to reach a cluster."""


def translate(error: ApiException) -> KubeError:
    """Our error type for the client's ApiException."""
    return error_for_status(error.status or 0, error.reason or "", error.body or "")


def error_for_status(status: int, phrase: str, body: str | bytes) -> KubeError:
    """Our error type for an answer with ``status``; the Kubernetes reason comes from the
    Status body, since the HTTP phrase cannot tell AlreadyExists from Conflict."""
    document: dict[str, Any] = {}
    try:
        parsed = json.loads(body or "")
        if isinstance(parsed, dict):
            document = parsed
    except (TypeError, ValueError):
        pass
    reason = str(document.get("reason") or phrase or "")
    message = str(document.get("message") or phrase or f"HTTP {status}")
    kinds: dict[int, type[KubeError]] = {
        400: InvalidError,
        401: ForbiddenError,
        403: ForbiddenError,
        404: NotFoundError,
        410: GoneError,
        422: InvalidError,
    }
    if status == 409:
        kind: type[KubeError] = AlreadyExistsError if reason == "AlreadyExists" else ConflictError
    elif status == 429 or status >= 500 or status == 0:
        kind = TransientError
    else:
        kind = kinds.get(status, InvalidError)
    return kind(message, status=status, reason=reason)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run ``call``, retrying transient errors with backoff; others propagate at once."""
    for attempt in range(policy.attempts):
        try:
            return await _translated(call)
        except TransientError as error:
            if attempt == policy.attempts - 1:
                raise
            delay = policy.delay(attempt)
            _log.warning("transient API error, retrying", error=str(error), delay_s=delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


async def _translated(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except ApiException as error:
        raise translate(error) from error
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise TransientError(f"the API server did not answer: {error!r}") from error


# kind -> (API path prefix, plural resource, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True),
    "Event": ("/api/v1", "events", True),
    "Service": ("/api/v1", "services", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "NodeMetrics": ("/apis/metrics.k8s.io/v1beta1", "nodes", False),
    "PodMetrics": ("/apis/metrics.k8s.io/v1beta1", "pods", True),
}
_STRATEGIC_MERGE = "application/strategic-merge-patch+json"
LISTING = "LISTING"
LIST_PAGE_SIZE = 500
Page = list[dict[str, Any]]  # named here: inside Cluster, "list" is its method
"""Objects per page when a watch lists: a page is parsed and dropped before the next."""
SYNCED = "SYNCED"
_MERGE_PATCH = "application/merge-patch+json"
_TEXT = "text/plain, */*"
# A followed log lasts as long as its reader wants: no total time, but a connection that
# cannot be opened in 30 s fails as any request does.
_FOLLOW_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30)


def resource_path(kind: str, namespace: str | None, name: str | None = None) -> str:
    """The REST path of a collection, or of one object when ``name`` is given."""
    prefix, plural, namespaced = _KINDS[kind]
    if namespaced and namespace is not None:
        path = f"{prefix}/namespaces/{namespace}/{plural}"
    else:  # a cluster-scoped kind, or a namespaced one across all namespaces
        path = f"{prefix}/{plural}"
    return f"{path}/{name}" if name else path


class Cluster:
    """An async connection to one cluster.

    Requests go through the official client's ApiClient (its configuration, authentication
    and connection pool) with JSON bodies as they are: the typed API methods would validate
    every dict into pydantic models and back, which cost several milliseconds of CPU per call
    and made the worker the bottleneck of a burst of creates.
    """

    def __init__(self, api_client: client.ApiClient, retry: RetryPolicy) -> None:
        self._api = api_client
        self._retry = retry

    @classmethod
    async def connect(
        cls,
        kubeconfig: Path | None,
        retry: RetryPolicy | None = None,
        *,
        proxy_from_environment: bool = False,
    ) -> "Cluster":
        """In-cluster configuration first (a pod's service account), the kubeconfig second.

        The client's aiohttp session trusts the environment by default, which makes it look up
        ~/.netrc in a worker thread on every request: that cost half the worker's CPU in a
        burst. It is off unless a proxy from HTTPS_PROXY is really needed to reach the API.
        """
        configuration = client.Configuration()
        configuration.client_session_kwargs = {"trust_env": proxy_from_environment}
        try:
            if kubeconfig is None:
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except ConfigException:
                    await config.load_kube_config(client_configuration=configuration)
            else:
                await config.load_kube_config(
                    config_file=str(kubeconfig), client_configuration=configuration
                )
        except ConfigException as error:
            raise NoClusterConfigError(f"no cluster configuration: {error}") from error
        return cls(client.ApiClient(configuration), retry or RetryPolicy())

    async def close(self) -> None:
        await self._api.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float | aiohttp.ClientTimeout | None = None,
        accept: str = "application/json",
    ) -> Any:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        verb, url, headers, payload, _ = await self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return await self._api.call_api(verb, url, headers, payload, _request_timeout=timeout)

    async def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """One request, retried on transient errors; the answer's JSON, or our error."""

        async def attempt() -> dict[str, Any]:
            response = await self._send(method, path, **options)
            data = await response.read()
            if not 200 <= response.status <= 299:
                raise error_for_status(response.status, response.reason or "", data)
            document: dict[str, Any] = json.loads(data) if data else {}
            return document

        return await with_retries(attempt, self._retry)

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest["metadata"]
        path = resource_path(manifest["kind"], metadata.get("namespace"))
        return await self._json("POST", path, body=manifest)

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return await self._json("GET", resource_path(kind, namespace, name))

    async def find(
        self, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return await self.get(kind, name, namespace)
        except NotFoundError:
            return None

    async def patch(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """A strategic-merge patch with the whole desired object: lists keyed by name (ports,
        containers, env) merge instead of being replaced."""
        metadata = manifest["metadata"]
        path = resource_path(manifest["kind"], metadata.get("namespace"), metadata["name"])
        return await self._json("PATCH", path, body=manifest, content_type=_STRATEGIC_MERGE)

    async def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace an object whole (PUT): what ``manifest`` leaves out is removed, unlike a
        merge patch. With ``metadata.resourceVersion`` set, a concurrent write is a
        ConflictError instead of being overwritten."""
        metadata = manifest["metadata"]
        path = resource_path(manifest["kind"], metadata.get("namespace"), metadata["name"])
        return await self._json("PUT", path, body=manifest)

    async def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        missing_ok: bool = True,
        uid: str | None = None,
    ) -> bool:
        """Delete in the background (owned objects are garbage-collected); False if absent.
        With ``uid``, only that object: one re-created under the name since it was read is a
        ConflictError (a precondition), not deleted."""
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            await self._json("DELETE", resource_path(kind, namespace, name), body=options)
        except NotFoundError:
            if missing_ok:
                return False
            raise
        return True

    async def pod_proxy_text(
        self, namespace: str, pod: str, port: int, path: str, *, timeout: float
    ) -> str:
        """GET ``path`` from a pod's port through the API server's proxy (pods/proxy), once.

        Not retried: a scrape that fails says the endpoint does not answer now, which is what
        the caller reports; the next cycle asks again.
        """
        resource = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"

        async def attempt() -> str:
            response = await self._send("GET", resource, timeout=timeout)
            data = await response.read()
            if not 200 <= response.status <= 299:
                raise error_for_status(response.status, response.reason or "", data)
            return bytes(data).decode("utf-8", errors="replace")

        return await _translated(attempt)

    async def pod_log(self, namespace: str, pod: str, container: str, *, tail_lines: int) -> str:
        """The last ``tail_lines`` lines of a container's log (pods/log), as `kubectl logs`."""
        path = resource_path("Pod", namespace, pod) + "/log"
        query = [("container", container), ("tailLines", str(tail_lines))]

        async def attempt() -> str:
            response = await self._send("GET", path, query=query, accept=_TEXT)
            data = await response.read()
            if not 200 <= response.status <= 299:
                raise error_for_status(response.status, response.reason or "", data)
            return bytes(data).decode("utf-8", errors="replace")

        return await with_retries(attempt, self._retry)

    async def follow_pod_log(
        self, namespace: str, pod: str, container: str, *, tail_lines: int
    ) -> AsyncIterator[bytes]:
        """The last ``tail_lines`` lines of a container's log, then what it writes, as the API
        server sends it (`kubectl logs -f`), until the container ends or the caller closes the
        iterator (which closes the connection).

        Opened here, so that the API server's refusal (no such container, not started yet) is
        raised before the caller has sent anything; opening is retried like any request. A
        stream that breaks off is not resumed, since a log has no position to resume from: the
        caller sees it end.
        """
        path = resource_path("Pod", namespace, pod) + "/log"
        query = [("container", container), ("tailLines", str(tail_lines)), ("follow", "true")]

        async def opened() -> Any:
            response = await self._send(
                "GET", path, query=query, accept=_TEXT, timeout=_FOLLOW_TIMEOUT
            )
            if not 200 <= response.status <= 299:
                data = await response.read()
                raise error_for_status(response.status, response.reason or "", data)
            return response

        response = await with_retries(opened, self._retry)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.response.content.iter_any():
                    yield bytes(chunk)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                _log.info("log stream ended early", pod=pod, error=repr(error))
            finally:
                response.response.close()

        return chunks()

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str = "",
        *,
        field_selector: str = "",
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects and the list's resourceVersion (to watch from)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            query.append(("fieldSelector", field_selector))
        document = await self._json("GET", resource_path(kind, namespace), query=query or None)
        items: list[dict[str, Any]] = document.get("items") or []
        return items, str((document.get("metadata") or {}).get("resourceVersion", ""))

    async def list_pages(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str = "",
        *,
        page_size: int = LIST_PAGE_SIZE,
    ) -> AsyncIterator[tuple[Page, str]]:
        """The objects a page at a time (limit and continue), each page with its
        resourceVersion: a list of 20,000 pods never has to be in memory whole."""
        token = ""
        while True:
            query = [("limit", str(page_size))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            document = await self._json("GET", resource_path(kind, namespace), query=query)
            metadata = document.get("metadata") or {}
            yield document.get("items") or [], str(metadata.get("resourceVersion", ""))
            token = str(metadata.get("continue") or "")
            if not token:
                return

    async def ensure_namespace(self, name: str) -> None:
        if await self.find("Namespace", name) is None:
            with contextlib.suppress(AlreadyExistsError):  # created meanwhile: fine
                await self.create(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )

    async def scale(self, namespace: str, name: str, replicas: int) -> int:
        """Set a Deployment's replicas through the scale subresource; returns the previous."""
        path = resource_path("Deployment", namespace, name) + "/scale"
        current = await self._json("GET", path)
        previous = int((current.get("spec") or {}).get("replicas") or 0)
        if previous != replicas:
            await self._json(
                "PATCH", path, body={"spec": {"replicas": replicas}}, content_type=_MERGE_PATCH
            )
        return previous

    async def watch(
        self, kind: str, namespace: str | None, label_selector: str, *, timeout_s: int = 300
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event type, object) forever: a list first, then a watch from its resourceVersion;
        resumes after a disconnect, lists again after 410 Gone.

        Each list is framed by a LISTING event and a SYNCED event (both with an empty object),
        its items arriving as ADDED between them, so a cache can replace its contents whole.
        """
        path = resource_path(kind, namespace)
        while True:
            version = ""
            yield LISTING, {}
            try:
                async for items, page_version in self.list_pages(kind, namespace, label_selector):
                    # The first page's version: later events are replayed from there, and a
                    # replayed change applies to a cache as any other.
                    version = version or page_version
                    for item in items:
                        yield "ADDED", item
            except (TransientError, GoneError) as error:  # GoneError: the continue expired
                _log.warning("list failed; listing again", kind=kind, error=str(error))
                await asyncio.sleep(1)
                continue
            yield SYNCED, {}
            while True:
                query = [
                    ("watch", "true"),
                    ("resourceVersion", version),
                    ("allowWatchBookmarks", "true"),
                    ("timeoutSeconds", str(timeout_s)),
                ]
                if label_selector:
                    query.append(("labelSelector", label_selector))
                try:
                    response = await self._send("GET", path, query=query, timeout=timeout_s + 30)
                    if response.status == 410:
                        break
                    if not 200 <= response.status <= 299:
                        raise error_for_status(
                            response.status, response.reason or "", await response.read()
                        )
                    gone = False
                    async for line in response.response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        obj: dict[str, Any] = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            gone = obj.get("code") == 410
                            break
                        version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                        if event.get("type") != "BOOKMARK":
                            yield event["type"], obj
                    response.response.release()
                    if gone:
                        break  # too old: list again
                except (KubeError, aiohttp.ClientError, TimeoutError, OSError) as error:
                    _log.warning("watch interrupted; resuming", kind=kind, error=repr(error))
                    await asyncio.sleep(1)
