"""The cluster's environment Deployments, kept current by a watch, so that the quota and
name checks before a create need no API call on the hot path.

What this worker creates or deletes is written through at once; what other replicas do
arrives with the watch, milliseconds later. Within a worker, the check and the count happen
with no await between them. Across replicas, the gateway's check, serialised per owner
against the read model's pending views, keeps concurrent requests within the quota; this
index re-checks against the cluster, so what could slip through is what two replicas admit
within one watch delay of each other after the read model and the cluster disagreed.
"""

import asyncio
from dataclasses import dataclass, field

from akros_k8s_worker.objects import Manifest
from akros_kube import LISTING, SYNCED
from akros_policy.naming import LABEL_OWNER


def _name(deployment: Manifest) -> str:
    return str((deployment.get("metadata") or {}).get("name", ""))


def _owner(deployment: Manifest) -> str:
    return str(((deployment.get("metadata") or {}).get("labels") or {}).get(LABEL_OWNER, ""))


@dataclass
class EnvironmentIndex:
    """Deployments by owner, then by name: a check reads one owner's, whatever the total."""

    _by_owner: dict[str, dict[str, Manifest]] = field(default_factory=dict)
    _listing: dict[str, dict[str, Manifest]] | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, event: str, deployment: Manifest) -> None:
        """Apply one event of Cluster.watch: a (re)list replaces the contents whole."""
        if event == LISTING:
            self._listing = {}
        elif event == SYNCED:
            self._by_owner, self._listing = self._listing or {}, None
            self.synced.set()
        elif self._listing is not None:
            self._listing.setdefault(_owner(deployment), {})[_name(deployment)] = deployment
        elif event == "DELETED":
            self.forget(_name(deployment), _owner(deployment))
        else:
            self.remember(deployment)

    def remember(self, deployment: Manifest) -> Manifest | None:
        """Count ``deployment`` from now on: one just created, or about to be. Returns the
        entry it replaces (a redelivered create's Deployment exists already)."""
        owned = self._by_owner.setdefault(_owner(deployment), {})
        previous = owned.get(_name(deployment))
        owned[_name(deployment)] = deployment
        return previous

    def withdraw(self, deployment: Manifest, previous: Manifest | None) -> None:
        """Take back ``remember(deployment)``, which returned ``previous``: the create did not
        happen after all. What it replaced counts again; an entry the watch has brought since
        is newer than both and stays."""
        name, owner = _name(deployment), _owner(deployment)
        owned = self._by_owner.get(owner)
        if owned is None or owned.get(name) is not deployment:
            return
        if previous is None:
            self.forget(name, owner)
        else:
            owned[name] = previous

    def forget(self, name: str, owner: str) -> None:
        owned = self._by_owner.get(owner)
        if owned is not None:
            owned.pop(name, None)
            if not owned:
                del self._by_owner[owner]

    def deployment(self, owner: str, name: str) -> Manifest | None:
        """The Deployment ``name`` of ``owner``, if the cluster has it."""
        return self._by_owner.get(owner, {}).get(name)

    def all(self) -> list[Manifest]:
        return [d for owned in self._by_owner.values() for d in owned.values()]

    def owned_by(self, owner: str) -> list[Manifest]:
        return list(self._by_owner.get(owner, {}).values())
