"""The cluster's environment Deployments, kept current by a watch, so that the quota and
name checks before a create need no API call on the hot path.

What this worker creates or deletes is written through at once; what other replicas do
arrives with the watch, milliseconds later. The per-owner lock in Redis serialises one
owner's creates across replicas, and the read model (updated under that lock) backs the
gateway's check, so the remaining window is a watch delay on a different replica.
"""

import asyncio
from dataclasses import dataclass, field

from akros_k8s_worker.objects import Manifest
from akros_kube import LISTING, SYNCED
from akros_policy.naming import LABEL_OWNER


@dataclass
class EnvironmentIndex:
    _by_name: dict[str, Manifest] = field(default_factory=dict)
    _listing: dict[str, Manifest] | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, event: str, deployment: Manifest) -> None:
        """Apply one event of Cluster.watch: a (re)list replaces the contents whole."""
        name = str((deployment.get("metadata") or {}).get("name", ""))
        if event == LISTING:
            self._listing = {}
        elif event == SYNCED:
            self._by_name, self._listing = self._listing or {}, None
            self.synced.set()
        elif self._listing is not None:
            self._listing[name] = deployment
        elif event == "DELETED":
            self._by_name.pop(name, None)
        else:
            self._by_name[name] = deployment

    def remember(self, deployment: Manifest) -> None:
        name = str(deployment["metadata"]["name"])
        self._by_name[name] = deployment

    def forget(self, name: str) -> None:
        self._by_name.pop(name, None)

    def owned_by(self, owner: str) -> list[Manifest]:
        return [
            deployment
            for deployment in self._by_name.values()
            if ((deployment.get("metadata") or {}).get("labels") or {}).get(LABEL_OWNER) == owner
        ]
