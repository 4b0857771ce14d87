"""The watch-fed index of environment Deployments the quota check reads."""

from akros_k8s_worker.index import EnvironmentIndex
from akros_kube import LISTING, SYNCED


def _deployment(owner: str, name: str) -> dict[str, object]:
    return {"metadata": {"name": f"{name}-{owner}", "labels": {"akros.io/owner": owner}}}


def test_an_owner_sees_only_their_own_deployments() -> None:
    index = EnvironmentIndex()
    index.observe("ADDED", _deployment("ana", "a"))
    index.observe("ADDED", _deployment("ana", "b"))
    index.observe("ADDED", _deployment("bo", "c"))
    assert sorted(d["metadata"]["name"] for d in index.owned_by("ana")) == ["a-ana", "b-ana"]
    assert index.owned_by("nobody") == []


def test_deleted_and_forgotten_deployments_no_longer_count() -> None:
    index = EnvironmentIndex()
    index.remember(_deployment("ana", "a"))
    index.remember(_deployment("ana", "b"))
    index.observe("DELETED", _deployment("ana", "a"))
    index.forget("b-ana", "ana")
    assert index.owned_by("ana") == []


def test_a_relist_replaces_the_contents_and_marks_the_index_synced() -> None:
    index = EnvironmentIndex()
    index.remember(_deployment("ana", "gone"))
    index.observe(LISTING, {})
    index.observe("ADDED", _deployment("bo", "kept"))
    assert not index.synced.is_set()
    index.observe(SYNCED, {})
    assert index.synced.is_set()
    assert index.owned_by("ana") == []
    assert [d["metadata"]["name"] for d in index.owned_by("bo")] == ["kept-bo"]


def test_withdrawing_a_create_that_failed_forgets_a_new_deployment() -> None:
    index = EnvironmentIndex()
    planned = _deployment("ana", "a")
    index.withdraw(planned, index.remember(planned))
    assert index.owned_by("ana") == []


def test_withdrawing_a_redelivered_create_keeps_the_deployment_that_exists() -> None:
    index = EnvironmentIndex()
    existing = {**_deployment("ana", "a"), "status": {"readyReplicas": 1}}
    index.observe("ADDED", existing)
    planned = _deployment("ana", "a")
    index.withdraw(planned, index.remember(planned))
    assert index.owned_by("ana") == [existing]


def test_withdrawing_leaves_what_the_watch_brought_in_the_meantime() -> None:
    index = EnvironmentIndex()
    planned = _deployment("ana", "a")
    replaced = index.remember(planned)
    created = {**_deployment("ana", "a"), "status": {"replicas": 1}}
    index.observe("ADDED", created)
    index.withdraw(planned, replaced)
    assert index.owned_by("ana") == [created]
