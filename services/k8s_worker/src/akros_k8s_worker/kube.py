"""The worker's only door to the Kubernetes API (DESIGN.md section 6.3).

Wraps the official client (kubernetes.aio) and translates its ApiException into the
platform's own errors, so nothing else in the worker knows the client exists. Objects go in
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
from kubernetes.aio import client, config, watch
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


def translate(error: ApiException) -> KubeError:
    """Our error type for an ApiException; the Kubernetes reason comes from the Status body,
    since the exception's own ``reason`` is only the HTTP phrase."""
    status = error.status or 0
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(error.body or "")
        if isinstance(parsed, dict):
            body = parsed
    except (TypeError, ValueError):
        pass
    reason = str(body.get("reason") or error.reason or "")
    message = str(body.get("message") or error.reason or f"HTTP {status}")
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


# kind -> (API class, snake-case resource name used in the client's method names, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("CoreV1Api", "namespace", False),
    "Node": ("CoreV1Api", "node", False),
    "Pod": ("CoreV1Api", "pod", True),
    "Service": ("CoreV1Api", "service", True),
    "PersistentVolumeClaim": ("CoreV1Api", "persistent_volume_claim", True),
    "Deployment": ("AppsV1Api", "deployment", True),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "horizontal_pod_autoscaler", True),
    "Ingress": ("NetworkingV1Api", "ingress", True),
    "NetworkPolicy": ("NetworkingV1Api", "network_policy", True),
}


class Cluster:
    """An async connection to one cluster."""

    def __init__(self, api_client: client.ApiClient, retry: RetryPolicy) -> None:
        self._api = api_client
        self._retry = retry
        self._apis: dict[str, Any] = {}

    @classmethod
    async def connect(cls, kubeconfig: Path | None, retry: RetryPolicy | None = None) -> "Cluster":
        """In-cluster configuration first (a pod's service account), the kubeconfig second."""
        configuration = client.Configuration()
        if kubeconfig is None:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                await config.load_kube_config(client_configuration=configuration)
        else:
            await config.load_kube_config(
                config_file=str(kubeconfig), client_configuration=configuration
            )
        return cls(client.ApiClient(configuration), retry or RetryPolicy())

    async def close(self) -> None:
        await self._api.close()

    def _method(self, kind: str, verb: str) -> tuple[Callable[..., Awaitable[Any]], bool]:
        api_name, resource, namespaced = _KINDS[kind]
        if api_name not in self._apis:
            self._apis[api_name] = getattr(client, api_name)(self._api)
        scope = "namespaced_" if namespaced else ""
        return getattr(self._apis[api_name], f"{verb}_{scope}{resource}"), namespaced

    def _plain(self, result: Any) -> dict[str, Any]:
        plain: dict[str, Any] = self._api.sanitize_for_serialization(result)
        return plain

    async def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> Any:
        method, namespaced = self._method(kind, verb)
        if not namespaced:
            kwargs.pop("namespace", None)
        return await with_retries(lambda: method(*args, **kwargs), self._retry)

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        kind, namespace = manifest["kind"], manifest["metadata"].get("namespace")
        result = await self._call(kind, "create", body=manifest, namespace=namespace)
        return self._plain(result)

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self._plain(await self._call(kind, "read", name=name, namespace=namespace))

    async def find(
        self, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return await self.get(kind, name, namespace)
        except NotFoundError:
            return None

    async def patch(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """A strategic-merge patch with the whole desired object (the client's default
        content type for a dict body), which keeps lists keyed by name intact."""
        metadata = manifest["metadata"]
        result = await self._call(
            manifest["kind"],
            "patch",
            name=metadata["name"],
            namespace=metadata.get("namespace"),
            body=manifest,
        )
        return self._plain(result)

    async def delete(
        self, kind: str, name: str, namespace: str | None = None, *, missing_ok: bool = True
    ) -> bool:
        """Delete in the background (owned objects are garbage-collected); False if absent."""
        try:
            await self._call(
                kind, "delete", name=name, namespace=namespace, propagation_policy="Background"
            )
        except NotFoundError:
            if missing_ok:
                return False
            raise
        return True

    async def list(
        self, kind: str, namespace: str | None = None, label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects and the list's resourceVersion (to watch from)."""
        result = self._plain(
            await self._call(kind, "list", namespace=namespace, label_selector=label_selector)
        )
        items: list[dict[str, Any]] = result.get("items") or []
        return items, str((result.get("metadata") or {}).get("resourceVersion", ""))

    async def ensure_namespace(self, name: str) -> None:
        if await self.find("Namespace", name) is None:
            with contextlib.suppress(AlreadyExistsError):  # created meanwhile: fine
                await self.create(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )

    async def scale(self, namespace: str, name: str, replicas: int) -> int:
        """Set a Deployment's replicas through the scale subresource; returns the previous."""
        apps = self._apis.setdefault("AppsV1Api", client.AppsV1Api(self._api))
        current = self._plain(
            await with_retries(
                lambda: apps.read_namespaced_deployment_scale(name, namespace), self._retry
            )
        )
        previous = int((current.get("spec") or {}).get("replicas") or 0)
        if previous != replicas:
            await with_retries(
                lambda: apps.patch_namespaced_deployment_scale(
                    name, namespace, {"spec": {"replicas": replicas}}
                ),
                self._retry,
            )
        return previous

    async def watch(
        self, kind: str, namespace: str | None, label_selector: str, *, timeout_s: int = 300
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event type, object) forever: a list first (as ADDED events), then a watch from its
        resourceVersion; resumes after a disconnect, lists again after 410 Gone."""
        method, namespaced = self._method(kind, "list")
        scope = {"namespace": namespace} if namespaced else {}
        while True:
            try:
                items, version = await self.list(kind, namespace, label_selector)
            except TransientError as error:
                _log.warning("list failed; retrying", kind=kind, error=str(error))
                await asyncio.sleep(1)
                continue
            for item in items:
                yield "ADDED", item
            while True:
                stream = watch.Watch()
                try:
                    async with stream:
                        async for event in stream.stream(
                            method,
                            label_selector=label_selector,
                            resource_version=version,
                            allow_watch_bookmarks=True,
                            timeout_seconds=timeout_s,
                            **scope,
                        ):
                            obj: dict[str, Any] = event["raw_object"]
                            version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
                            if event["type"] != "BOOKMARK":
                                yield event["type"], obj
                except ApiException as error:
                    if error.status == 410:
                        break  # too old: list again
                    _log.warning("watch failed; resuming", kind=kind, error=str(error))
                    await asyncio.sleep(1)
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    _log.warning("watch disconnected; resuming", kind=kind, error=repr(error))
                    await asyncio.sleep(1)
