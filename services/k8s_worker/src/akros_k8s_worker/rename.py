"""The one-off migration to injective names (issue 18): environment objects named the old
way, "<owner>-<env>", get the name and host of akros_policy.naming, and keep everything.

Run once, with the worker stopped (it looks objects up by the new names only), before the
new worker starts: ``akros-k8s-worker-rename`` says what it would do, ``--apply`` does it.
It takes an object only when its labels say whose it is and its name is the old name of
exactly that environment (an object named otherwise is reported and left alone), so the
old scheme's collisions cannot make it move one researcher's object into another's name.

Per environment: the Service, Ingress (its host too) and NetworkPolicy are created under
the new name and the old ones deleted; a claim cannot be renamed, so its volume is kept
(reclaim policy Retain while it moves), the old Deployment and claim are deleted, the volume
pre-bound to the new claim and the new claim created naming it: the same volume, its data
untouched; then the Deployment is created under the new name, mounting the new claim, with
the replicas it had (a running environment restarts once, a stopped one stays stopped), and
the read model's view of it gets the new URL.
"""

import argparse
import asyncio
import copy
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from akros_bus import Bus
from akros_bus.settings import load_settings
from akros_k8s_worker.objects import Manifest, environment_url
from akros_k8s_worker.settings import WorkerSettings
from akros_kube import Cluster
from akros_policy.naming import (
    LABEL_KIND,
    WorkloadKind,
    environment_host,
    environment_labels,
    environment_object_name,
    environment_selector,
    labelled_environment,
    legacy_environment_object_name,
    split_environment_object_name,
)
from akros_policy.placement import claim_volume_name
from akros_readmodel import ReadModel, utc_now

RENAMED_KINDS = ("Service", "Ingress", "NetworkPolicy", "Deployment", "PersistentVolumeClaim")
_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "finalizers",
    "ownerReferences",
)
# What the API server sets on a Service and a claim, which a create must not name.
_SERVICE_ALLOCATED = ("clusterIP", "clusterIPs")
_CLAIM_ANNOTATIONS = (
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
)


@dataclass(frozen=True)
class Rename:
    """One environment's objects, named the old way, to be named the new way."""

    owner: str
    env: str
    old_name: str
    new_name: str
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class RenamePlan:
    renames: list[Rename] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)
    """Objects with environment labels named neither way, each with why."""


def _name(manifest: Manifest) -> str:
    return str((manifest.get("metadata") or {}).get("name", ""))


def plan_renames(
    objects: Iterable[tuple[str, Manifest]], half_moved: Iterable[tuple[str, Manifest]] = ()
) -> RenamePlan:
    """What to rename, from the (kind, object) pairs of the environments' namespace, and
    ``half_moved``'s: those a crashed run left between two names (a Deployment at zero until
    its claim moved, a volume marked for its new claim), whose environments are finished.

    Ordered by the old name's length, longest first: a new name can be an old name of
    another environment ("alice-exp-5" is alice's "exp" now and was alice's "exp-5"), but
    always a longer one (the new name of a pair is its old name and two characters), so by
    the time an environment moves, the old object under its new name has moved away."""
    found: dict[tuple[str, str], set[str]] = {}
    left_alone = []
    for kind, manifest in objects:
        belongs = labelled_environment((manifest.get("metadata") or {}).get("labels"))
        name = _name(manifest)
        if belongs is None:
            continue
        owner, env = belongs
        if name == environment_object_name(owner, env):
            continue
        if name != legacy_environment_object_name(owner, env):
            left_alone.append(
                f"{kind} {name}: labelled {owner}/{env}, whose names are "
                f"{environment_object_name(owner, env)} (new) and "
                f"{legacy_environment_object_name(owner, env)} (old)"
            )
            continue
        found.setdefault(belongs, set()).add(kind)
    for kind, manifest in half_moved:
        if (pair := _half_moved(kind, manifest)) is not None:
            found.setdefault(pair, set())
    renames = [
        Rename(
            owner=owner,
            env=env,
            old_name=legacy_environment_object_name(owner, env),
            new_name=environment_object_name(owner, env),
            kinds=tuple(kind for kind in RENAMED_KINDS if kind in kinds),
        )
        for (owner, env), kinds in found.items()
    ]
    renames.sort(key=lambda r: (-len(r.old_name), r.old_name))
    return RenamePlan(renames=renames, left_alone=sorted(left_alone))


def _half_moved(kind: str, manifest: Manifest) -> tuple[str, str] | None:
    """The environment a crashed run left ``manifest`` half moved for, if it did."""
    metadata = manifest.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if kind == "Deployment" and ANNOTATION_RENAMED_REPLICAS in annotations:
        return labelled_environment(metadata.get("labels"))
    if kind == "PersistentVolume" and (target := annotations.get(ANNOTATION_RENAMING_TO)):
        return split_environment_object_name(str(target))
    return None


def named_the_old_way(manifests: Iterable[Manifest]) -> list[str]:
    """The names of those of ``manifests`` (environment objects) that still have their old
    names: the worker warns of them at start, since it looks objects up by the new names."""
    names = []
    for manifest in manifests:
        belongs = labelled_environment((manifest.get("metadata") or {}).get("labels"))
        if belongs is not None and _name(manifest) == legacy_environment_object_name(*belongs):
            names.append(_name(manifest))
    return sorted(names)


def renamed_copy(kind: str, manifest: Manifest, rename: Rename, domain: str) -> Manifest:
    """``manifest`` as a new object under ``rename.new_name``: what the server set dropped,
    the Ingress's host (its TLS host too) and backend and the Deployment's claim the new
    names."""
    renamed = copy.deepcopy(manifest)
    renamed.pop("status", None)
    metadata = renamed.setdefault("metadata", {})
    for server_field in _SERVER_FIELDS:
        metadata.pop(server_field, None)
    metadata["name"] = rename.new_name
    renamed["kind"] = kind
    spec = renamed.setdefault("spec", {})
    if kind == "Service":
        for allocated in _SERVICE_ALLOCATED:
            spec.pop(allocated, None)
    elif kind == "Ingress":
        for rule in spec.get("rules") or []:
            rule["host"] = environment_host(rename.owner, rename.env, domain)
            for path in (rule.get("http") or {}).get("paths") or []:
                service = (path.get("backend") or {}).get("service") or {}
                if service.get("name") == rename.old_name:
                    service["name"] = rename.new_name
        for tls in spec.get("tls") or []:
            tls["hosts"] = [environment_host(rename.owner, rename.env, domain)]
    elif kind == "Deployment":
        pod = (spec.get("template") or {}).get("spec") or {}
        for volume in pod.get("volumes") or []:
            claim = volume.get("persistentVolumeClaim") or {}
            if claim.get("claimName") == rename.old_name:
                claim["claimName"] = rename.new_name
    elif kind == "PersistentVolumeClaim":
        annotations = metadata.get("annotations") or {}
        for annotation in _CLAIM_ANNOTATIONS:
            annotations.pop(annotation, None)
    return renamed


def prebound_volume(volume: Manifest, namespace: str, claim: str) -> Manifest:
    """``volume`` reserved for the claim ``claim`` not yet created (a claimRef with no uid),
    so that it binds to that claim and no other."""
    prebound = copy.deepcopy(volume)
    prebound.pop("status", None)
    prebound["spec"]["claimRef"] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": namespace,
        "name": claim,
    }
    return prebound


ANNOTATION_RENAMED_REPLICAS = "akros.io/renamed-replicas"
"""On a Deployment created under its new name at zero replicas: the replicas it had, given
back once its claim is in place (a rerun after a crash finishes from here)."""
ANNOTATION_RENAMING_TO = "akros.io/renaming-to"
"""On a volume between its old claim and its new one: the new claim's name."""
ANNOTATION_RECLAIM_POLICY = "akros.io/reclaim-policy"
"""On a volume being moved: its reclaim policy, Retain while it moves, restored after."""
ANNOTATION_CLAIM_REQUEST = "akros.io/claim-request"
"""On a volume being moved: the storage its old claim requested (the size the view shows)."""

Say = Callable[[str], None]


@dataclass
class Renamer:
    """Applies a RenamePlan, one environment at a time, each step safe to run again: a
    crashed migration is finished by running it again (``plan`` finds the half-moved)."""

    cluster: Cluster
    namespace: str
    domain: str
    read_model: ReadModel | None
    say: Say = print
    timeout_s: float = 300.0
    poll_s: float = 0.2

    async def plan(self) -> RenamePlan:
        selector = f"{LABEL_KIND}={WorkloadKind.ENVIRONMENT.value}"
        objects: list[tuple[str, Manifest]] = []
        for kind in RENAMED_KINDS:
            items, _ = await self.cluster.list(kind, self.namespace, selector)
            objects.extend((kind, item) for item in items)
        volumes, _ = await self.cluster.list("PersistentVolume")
        return plan_renames(
            objects, half_moved=[*objects, *(("PersistentVolume", v) for v in volumes)]
        )

    async def apply(self, plan: RenamePlan) -> None:
        for rename in plan.renames:
            await self.rename(rename)

    async def rename(self, rename: Rename) -> None:
        self.say(f"{rename.owner}/{rename.env}: {rename.old_name} -> {rename.new_name}")
        old = {kind: await self._find_own(kind, rename.old_name, rename) for kind in rename.kinds}
        for kind in ("Service", "Ingress", "NetworkPolicy"):
            if (manifest := old.get(kind)) is not None:
                await self._create_once(renamed_copy(kind, manifest, rename, self.domain))
                await self._delete(kind, manifest)
        if (deployment := old.get("Deployment")) is not None:
            # The new one first, at zero, saying how many it had: nothing is lost if the
            # migration stops between here and its scale-up.
            stopped = renamed_copy("Deployment", deployment, rename, self.domain)
            replicas = int((deployment.get("spec") or {}).get("replicas", 1))
            stopped["spec"]["replicas"] = 0
            annotations = stopped["metadata"].setdefault("annotations", {})
            annotations[ANNOTATION_RENAMED_REPLICAS] = str(replicas)
            await self._create_once(stopped)
            await self._delete("Deployment", deployment)
        await self._until(lambda: self._no_pods(rename), f"the pods of {rename.old_name} to go")
        if (claim := old.get("PersistentVolumeClaim")) is not None:
            await self._release_claim(claim, rename)
        await self._claim_moved_volume(rename)
        await self._scale_back(rename)
        if self.read_model is not None:
            view = await self.read_model.environment(rename.owner, rename.env)
            if view is not None and view.url is not None:
                url = environment_url(rename.owner, rename.env, self.domain)
                await self.read_model.put_environment(
                    view.model_copy(update={"url": url, "updated_at": utc_now()})
                )

    async def _release_claim(self, claim: Manifest, rename: Rename) -> None:
        """Delete the old claim, its volume (if bound) kept and marked for the new claim."""
        volume_name = claim_volume_name(claim)
        if volume_name is not None:
            volume = await self.cluster.get("PersistentVolume", volume_name)
            annotations = volume.setdefault("metadata", {}).setdefault("annotations", {})
            policy = volume["spec"].get("persistentVolumeReclaimPolicy") or "Delete"
            annotations.setdefault(ANNOTATION_RECLAIM_POLICY, policy)
            annotations[ANNOTATION_RENAMING_TO] = rename.new_name
            requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
            if "storage" in requests:
                annotations[ANNOTATION_CLAIM_REQUEST] = str(requests["storage"])
            volume["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
            await self.cluster.replace(volume)
        else:
            # Never bound: nothing is stored yet; a new claim like it is all there is to do.
            await self._create_once(renamed_copy("PersistentVolumeClaim", claim, rename, ""))
        await self._delete("PersistentVolumeClaim", claim)
        await self._until(
            lambda: self._gone("PersistentVolumeClaim", rename.old_name),
            f"the claim {rename.old_name} to go",
        )

    async def _claim_moved_volume(self, rename: Rename) -> None:
        """The volume marked for ``rename.new_name`` (if one is), bound to a new claim of that
        name, its reclaim policy back as it was."""
        volumes, _ = await self.cluster.list("PersistentVolume")
        marked = [v for v in volumes if _renaming_to(v) == rename.new_name]
        for volume in marked:
            name = volume["metadata"]["name"]
            annotations = volume["metadata"]["annotations"]
            if (volume.get("status") or {}).get("phase") != "Bound":
                await self.cluster.replace(prebound_volume(volume, self.namespace, rename.new_name))
                await self._create_once(moved_claim(volume, rename, self.namespace))
                await self._until(
                    lambda: self._bound(rename.new_name), f"the claim {rename.new_name} to bind"
                )
            current = await self.cluster.get("PersistentVolume", name)
            current_annotations = current["metadata"].setdefault("annotations", {})
            policy = annotations.get(ANNOTATION_RECLAIM_POLICY) or "Delete"
            for moving in (
                ANNOTATION_RENAMING_TO,
                ANNOTATION_RECLAIM_POLICY,
                ANNOTATION_CLAIM_REQUEST,
            ):
                current_annotations.pop(moving, None)
            current["spec"]["persistentVolumeReclaimPolicy"] = policy
            await self.cluster.replace(current)
            self.say(f"  volume {name} kept, now claimed as {rename.new_name}")

    async def _scale_back(self, rename: Rename) -> None:
        """The new Deployment, at zero while its claim moved, back to the replicas it had."""
        deployment = await self._find_own("Deployment", rename.new_name, rename)
        if deployment is None:
            return
        annotations = (deployment.get("metadata") or {}).get("annotations") or {}
        if ANNOTATION_RENAMED_REPLICAS not in annotations:
            return
        replicas = int(annotations[ANNOTATION_RENAMED_REPLICAS])
        await self.cluster.patch(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": rename.new_name,
                    "namespace": self.namespace,
                    "annotations": {ANNOTATION_RENAMED_REPLICAS: None},
                },
                "spec": {"replicas": replicas},
            }
        )

    async def _find_own(self, kind: str, name: str, rename: Rename) -> Manifest | None:
        found = await self.cluster.find(kind, name, self.namespace)
        labels = None if found is None else (found.get("metadata") or {}).get("labels")
        if found is not None and labelled_environment(labels) != (rename.owner, rename.env):
            return None  # changed since the plan: not this environment's after all
        return found

    async def _create_once(self, manifest: Manifest) -> None:
        """Create ``manifest`` unless an object of its environment has the name (a rerun
        after a crash); another's under the name stops the migration, untouched."""
        metadata = manifest["metadata"]
        existing = await self.cluster.find(manifest["kind"], metadata["name"], self.namespace)
        if existing is None:
            await self.cluster.create(manifest)
            return
        theirs = labelled_environment((existing.get("metadata") or {}).get("labels"))
        if theirs != labelled_environment(metadata.get("labels")):
            raise RuntimeError(
                f"{manifest['kind']} {metadata['name']} exists and its labels are not "
                f"{metadata.get('labels')}; nothing of it was touched"
            )

    async def _delete(self, kind: str, manifest: Manifest) -> None:
        metadata = manifest.get("metadata") or {}
        await self.cluster.delete(kind, metadata["name"], self.namespace, uid=metadata.get("uid"))

    async def _gone(self, kind: str, name: str) -> bool:
        return await self.cluster.find(kind, name, self.namespace) is None

    async def _no_pods(self, rename: Rename) -> bool:
        """No pod of the environment is left but the new Deployment's (at zero, none)."""
        selector = environment_selector(rename.owner, rename.env)
        pods, _ = await self.cluster.list("Pod", self.namespace, selector)
        return not pods

    async def _bound(self, name: str) -> bool:
        claim = await self.cluster.find("PersistentVolumeClaim", name, self.namespace)
        return claim is not None and (claim.get("status") or {}).get("phase") == "Bound"

    async def _until(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not await done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}")
            await asyncio.sleep(self.poll_s)


def _renaming_to(volume: Manifest) -> str | None:
    return ((volume.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_RENAMING_TO)


def moved_claim(volume: Manifest, rename: Rename, namespace: str) -> Manifest:
    """The new claim of a moved volume: the environment's labels, the volume's class and
    access modes, the storage the old claim requested, naming the volume."""
    spec = volume.get("spec") or {}
    annotations = (volume.get("metadata") or {}).get("annotations") or {}
    storage = annotations.get(ANNOTATION_CLAIM_REQUEST) or (spec.get("capacity") or {}).get(
        "storage"
    )
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": rename.new_name,
            "namespace": namespace,
            "labels": environment_labels(rename.owner, rename.env),
        },
        "spec": {
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "resources": {"requests": {"storage": storage}},
            "storageClassName": spec.get("storageClassName") or "",
            "volumeName": volume["metadata"]["name"],
        },
    }


async def run(settings: WorkerSettings, *, apply: bool, say: Say = print) -> RenamePlan:
    cluster = await Cluster.connect(
        settings.kubeconfig, proxy_from_environment=settings.kube_proxy_from_environment
    )
    bus = Bus(settings)
    await bus.connect()
    try:
        renamer = Renamer(
            cluster,
            settings.environments_namespace,
            settings.platform().domain,
            ReadModel(bus.redis),
            say,
        )
        plan = await renamer.plan()
        for reason in plan.left_alone:
            say(f"left alone: {reason}")
        if not apply:
            for rename in plan.renames:
                say(
                    f"would rename {rename.owner}/{rename.env}: {rename.old_name} -> "
                    f"{rename.new_name} ({', '.join(rename.kinds)})"
                )
            say(f"{len(plan.renames)} environment(s) to rename; run with --apply to do it")
            return plan
        await renamer.apply(plan)
        say(f"{len(plan.renames)} environment(s) renamed")
        return plan
    finally:
        await bus.stop()
        await cluster.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="akros-k8s-worker-rename",
        description="Give environment objects named <owner>-<env> their injective names "
        "(run once, with the worker stopped, before the new worker starts).",
    )
    parser.add_argument("--apply", action="store_true", help="rename; without it, only say what")
    arguments = parser.parse_args(argv)
    settings = load_settings(WorkerSettings)
    asyncio.run(run(settings, apply=arguments.apply))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
