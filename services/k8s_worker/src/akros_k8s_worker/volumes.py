"""Where a reattached work volume lets its environment run: pure functions, no I/O.

On local storage (local-path) a kept volume lives on the disk of the node its first pod ran
on, and the volume's node affinity keeps every later pod there; a re-created environment
that needs what that node does not have (a GPU, when the volume is on a CPU node) would wait
forever, so the never-fits check counts only those nodes.
"""

from typing import Any

from akros_policy.placement import nodes_allowed, volume_node_selector


def volume_nodes(
    volume: dict[str, Any] | None, nodes: list[dict[str, Any]]
) -> frozenset[str] | None:
    """The names of the nodes that can mount ``volume`` (the claim's bound volume); None when
    there is no bound volume or it is not pinned to nodes."""
    selector = None if volume is None else volume_node_selector(volume)
    if selector is None:
        return None
    named = (
        (
            str((node.get("metadata") or {}).get("name", "")),
            dict((node.get("metadata") or {}).get("labels") or {}),
        )
        for node in nodes
    )
    return nodes_allowed([selector], named)
