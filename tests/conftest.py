"""Fixtures shared by every test tier: a real Redis, per test a clean database."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from akros_devtools import LocalRedis
from tests.cluster import configured_kubeconfig, release_foreign_cluster


def _docker_answers() -> bool:
    """True where a Docker daemon answers (it does not on the project's own machines)."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL if set; else testcontainers' Redis where Docker answers; else a local
    redis-server on a free port in a temporary directory, stopped afterwards."""
    if configured := os.environ.get("REDIS_URL"):
        yield configured
        return
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    with LocalRedis(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The shared Redis, emptied before each test so that tests never see each other."""
    client = redis.Redis.from_url(redis_server_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server_url


@pytest.fixture(scope="session", autouse=True)
def _leave_a_named_cluster_as_found() -> Iterator[None]:
    """Against AKROS_TEST_KUBECONFIG, remove at the very end (failures included) what the tier
    created there; against kubesim there is nothing to do."""
    try:
        yield
    finally:
        release_foreign_cluster()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cluster: the real-cluster tier (`make test-cluster`): the platform end to end, against "
        "AKROS_TEST_KUBECONFIG when it is set, else against kubesim",
    )
    config.addinivalue_line(
        "markers",
        "gpus: needs GPU nodes for auto-inference to fill (kubesim's default cluster has 16); "
        "`make test-cluster CLUSTER_TIER='cluster and not gpus'` leaves them out",
    )
    config.addinivalue_line(
        "markers",
        "kubesim_only(reason): needs kubesim itself (its faults, its default cluster's shape); "
        "deselected on a cluster AKROS_TEST_KUBECONFIG names",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a named cluster, tests that need kubesim itself are deselected, not skipped: they
    ran against kubesim, and a skip in the summary would read as something hidden. The
    marker's reason says in the source why each one cannot run elsewhere."""
    if configured_kubeconfig() is None:
        return
    kubesim_only = [item for item in items if item.get_closest_marker("kubesim_only")]
    if kubesim_only:
        config.hook.pytest_deselected(items=kubesim_only)
        items[:] = [item for item in items if item not in kubesim_only]
