"""Fixtures shared by every test tier: a real Redis, per test a clean database."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from akros_devtools import LocalRedis


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
