"""A redis-server of our own on a free loopback port, with AOF on, for tests and `make run`."""

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from akros_devtools.processes import ChildProcess, free_port
from akros_devtools.waiting import wait_until


def find_redis_server() -> str:
    """AKROS_REDIS_SERVER if set (make writes it), else redis-server on PATH."""
    configured = os.environ.get("AKROS_REDIS_SERVER")
    if configured:
        return configured
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError(
            "redis-server is not installed; run scripts/ensure-tools.sh (make test does)"
        )
    return found


class LocalRedis:
    """redis-server in ``directory`` on ``port`` (free one if 0), durable with AOF."""

    def __init__(self, directory: Path, *, port: int = 0, appendonly: bool = True) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.appendonly = appendonly
        self.child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.child = ChildProcess(
            [
                find_redis_server(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            log_path=self.directory / "redis.log",
        ).start()
        client = redis.Redis.from_url(self.url)
        try:
            wait_until(self._answers(client), timeout_s=10, what=f"redis-server on {self.port}")
        finally:
            client.close()
        return self

    def _answers(self, client: "redis.Redis") -> Callable[[], bool]:
        def check() -> bool:
            if self.child is not None and not self.child.alive():
                raise RuntimeError(f"redis-server exited:\n{self.child.log_text()}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        return check

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

    def restart(self) -> None:
        """Stop and start again on the same port and directory (AOF replays the data)."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
