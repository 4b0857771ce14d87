"""Which cluster the platform tests run against: kubesim, started per platform, by default; the
cluster AKROS_TEST_KUBECONFIG names when it is set (the real-cluster tier, `make test-cluster`).

Against a named cluster the tests only hold its kubeconfig: kubesim is never started, its faults
and internals are out of reach (tests that need them are marked ``kubesim_only`` and deselected
there, with the reason). The tier leaves the cluster as it found it: it creates what the
platform needs from deploy/ only where it is absent, and removes only what it created, each
time a platform stops and once more at the end of the session, failures included.
"""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import NotFoundError

from akros_devtools import wait_until
from akros_devtools.platform import Platform, PlatformOptions

KUBECONFIG_VARIABLE = "AKROS_TEST_KUBECONFIG"
DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "base"
# What the platform expects to find in a cluster, in creation order (deploy/base is the source:
# the worker would create its two namespaces itself, but then the tier could not tell they
# were its own to remove).
NEEDED_MANIFESTS = (
    DEPLOY / "namespaces.yaml",
    DEPLOY / "inference" / "namespace.yaml",
    DEPLOY / "inference" / "priorityclass.yaml",
    DEPLOY / "inference" / "deployment.yaml",
)
# akros-system runs the platform's own pods in deploy/; the tests run the services locally.
NOT_NEEDED = frozenset({("Namespace", "akros-system")})
CREATED_BY_LABEL = "akros.io/created-by"
CREATED_BY = "akros-test-cluster"
"""On what the tier created: a later run adopts (and removes) what a killed run left."""
# What the platform creates in its namespaces; their pods and ReplicaSets go with them.
PLATFORM_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
)
TIDY_TIMEOUT_S = 120.0
INFERENCE = ("auto-inference", "akros-inference")


def _inference_pod(found: Any) -> bool:
    labels = found.metadata.labels or {}
    return bool(
        found.kind == "Pod"
        and found.metadata.namespace == INFERENCE[1]
        and labels.get("akros.io/kind") == "inference"
    )


def configured_kubeconfig() -> Path | None:
    """The cluster the tier is pointed at, or None for kubesim."""
    value = os.environ.get(KUBECONFIG_VARIABLE, "").strip()
    return Path(value).expanduser().resolve() if value else None


def manifest_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_key(document: dict[str, Any]) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def needed_objects() -> set[tuple[str, str]]:
    """(kind, name) of every object the platform expects to find in a cluster."""
    found = {manifest_key(d) for path in NEEDED_MANIFESTS for d in manifest_documents(path)}
    return found - NOT_NEEDED


@dataclass
class ForeignCluster:
    """A cluster the tests did not start, and what the tier found and made there."""

    kubeconfig: Path
    api: dynamic.DynamicClient
    created: list[dict[str, Any]] = field(default_factory=list)
    """Manifests from deploy/ that were absent, as created (removed last, in reverse)."""
    found_uids: set[str] = field(default_factory=set)
    """Every platform-kind object in the platform's namespaces before the tier's first run."""
    inference_replicas: int = 0
    """auto-inference's replica count as found (the poller moves it; each stop restores it)."""

    @classmethod
    def prepare(cls, kubeconfig: Path) -> "ForeignCluster":
        configuration = client.Configuration()
        config.load_kube_config(str(kubeconfig), client_configuration=configuration)
        cluster = cls(kubeconfig, dynamic.DynamicClient(client.ApiClient(configuration)))
        cluster._create_what_is_missing()
        cluster.found_uids = {o.metadata.uid for o in cluster._platform_objects()}
        cluster.inference_replicas = cluster._inference().spec.replicas or 0
        return cluster

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.api.resources.get(api_version=api_version, kind=kind)

    def _read(self, document: dict[str, Any]) -> Any | None:
        resource = self._resource(document["apiVersion"], document["kind"])
        metadata = document["metadata"]
        try:
            return resource.get(name=metadata["name"], namespace=metadata.get("namespace"))
        except NotFoundError:
            return None

    def _create_what_is_missing(self) -> None:
        for path in NEEDED_MANIFESTS:
            for document in manifest_documents(path):
                if manifest_key(document) in NOT_NEEDED:
                    continue
                found = self._read(document)
                labels = (found.metadata.labels or {}) if found is not None else {}
                if found is not None and labels.get(CREATED_BY_LABEL) != CREATED_BY:
                    continue  # the cluster's own: used, never removed
                if found is None:
                    metadata = document["metadata"]
                    metadata["labels"] = {
                        **metadata.get("labels", {}),
                        CREATED_BY_LABEL: CREATED_BY,
                    }
                    resource = self._resource(document["apiVersion"], document["kind"])
                    resource.create(body=document, namespace=metadata.get("namespace"))
                self.created.append(document)

    def namespaces(self) -> list[str]:
        return sorted(name for kind, name in needed_objects() if kind == "Namespace")

    def _inference(self) -> Any:
        deployment = self._resource("apps/v1", "Deployment")
        return deployment.get(name=INFERENCE[0], namespace=INFERENCE[1])

    def _platform_objects(self) -> Iterator[Any]:
        for api_version, kind in PLATFORM_KINDS:
            resource = self._resource(api_version, kind)
            for namespace in self.namespaces():
                yield from resource.get(namespace=namespace).items

    def _made_by_the_tests(self) -> list[Any]:
        """New objects, but not auto-inference's pods: restoring its replica count takes
        those (and where it runs replicas of its own, their replacements are not ours)."""
        return [
            o
            for o in self._platform_objects()
            if o.metadata.uid not in self.found_uids and not _inference_pod(o)
        ]

    def _inference_settled(self) -> bool:
        pods = self._resource("v1", "Pod").get(
            namespace=INFERENCE[1], label_selector="akros.io/kind=inference"
        )
        return len(pods.items) <= self.inference_replicas

    def tidy(self) -> None:
        """Back to how the tier found the cluster: what the tests' platforms made is deleted
        (and gone, pods and claims included), auto-inference at its replica count as found."""
        for made in self._made_by_the_tests():
            if made.kind == "Pod" and made.metadata.owner_references:
                continue  # its owner's deletion takes it
            resource = self._resource(made.apiVersion, made.kind)
            with contextlib.suppress(NotFoundError):  # gone meanwhile: fine
                resource.delete(
                    name=made.metadata.name,
                    namespace=made.metadata.namespace,
                    body={"propagationPolicy": "Background"},
                )
        inference = self._resource("apps/v1", "Deployment")
        inference.patch(
            name=INFERENCE[0],
            namespace=INFERENCE[1],
            body={"spec": {"replicas": self.inference_replicas}},
            content_type="application/merge-patch+json",
        )
        wait_until(
            lambda: not self._made_by_the_tests() and self._inference_settled(),
            timeout_s=TIDY_TIMEOUT_S,
            interval_s=0.2,
            what="what the tests made in the cluster to be gone",
        )

    def release(self) -> None:
        """Tidy, then remove what the tier created from deploy/, last created first."""
        try:
            self.tidy()
        finally:
            for document in reversed(self.created):
                resource = self._resource(document["apiVersion"], document["kind"])
                metadata = document["metadata"]
                with contextlib.suppress(NotFoundError):
                    resource.delete(name=metadata["name"], namespace=metadata.get("namespace"))
            wait_until(
                lambda: all(self._read(d) is None for d in self.created),
                timeout_s=TIDY_TIMEOUT_S,
                interval_s=0.2,
                what="the namespaces and objects the tier created to be gone",
            )
            self.api.client.close()


class ForeignClusterPlatform(Platform):
    """The platform's processes against a cluster that is already there: no kubesim is
    started, the services get the cluster's kubeconfig, and a stop tidies the cluster."""

    def __init__(self, options: PlatformOptions, cluster: ForeignCluster) -> None:
        super().__init__(options)
        self.cluster = cluster
        self.kubeconfig = cluster.kubeconfig

    @property
    def kubesim_url(self) -> str:
        raise RuntimeError(f"no kubesim to reach: the tests run against {KUBECONFIG_VARIABLE}")

    def start(self) -> None:
        self.redis.start()
        for service in self.options.services:
            self.start_service(service)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.cluster.tidy()


_prepared: ForeignCluster | None = None


def foreign_cluster() -> ForeignCluster | None:
    """The named cluster, prepared on first use; None when the tests run against kubesim."""
    global _prepared
    kubeconfig = configured_kubeconfig()
    if kubeconfig is None:
        return None
    if _prepared is None:
        _prepared = ForeignCluster.prepare(kubeconfig)
    return _prepared


def release_foreign_cluster() -> None:
    """End of the session: leave the named cluster as the tier found it."""
    global _prepared
    if _prepared is not None:
        prepared, _prepared = _prepared, None
        prepared.release()


def platform_for_tests(options: PlatformOptions) -> Platform:
    """A platform on kubesim, or on the named cluster when the tier is pointed at one."""
    cluster = foreign_cluster()
    return Platform(options) if cluster is None else ForeignClusterPlatform(options, cluster)


def runs_on_kubesim(platform: Platform) -> bool:
    return not isinstance(platform, ForeignClusterPlatform)
