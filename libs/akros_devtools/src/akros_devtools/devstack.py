"""`make run`: the whole platform on embedded defaults, in the foreground, until Ctrl-C.

Starts each part as a child process with its state under .akros/, writes where each part
listens to .akros/endpoints.json, and stops everything it started (by pid) on Ctrl-C.
"""

import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from akros_devtools.processes import ChildProcess, free_port
from akros_devtools.redis_server import LocalRedis

STATE = Path(".akros")
PREFERRED_REDIS_PORT = 6390


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(preferred: int) -> int:
    return preferred if _port_free(preferred) else free_port()


class Devstack:
    """The running platform: each part started in order and stopped in reverse."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.redis = LocalRedis(state / "redis", port=_choose_port(PREFERRED_REDIS_PORT))
        self.children: list[ChildProcess] = []
        self.endpoints: dict[str, Any] = {}

    def start(self) -> None:
        self.redis.start()
        self.endpoints["redis_url"] = self.redis.url
        self._write_endpoints()

    def _write_endpoints(self) -> None:
        path = self.state / "endpoints.json"
        path.write_text(json.dumps(self.endpoints, indent=2, sort_keys=True) + "\n")

    def failed_child(self) -> ChildProcess | None:
        return next((child for child in self.children if not child.alive()), None)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.redis.stop()
        (self.state / "endpoints.json").unlink(missing_ok=True)


def main() -> int:
    STATE.mkdir(exist_ok=True)
    stack = Devstack(STATE)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack.start()
        print("Akros is running on embedded defaults. Ctrl-C stops everything.")
        print(f"  Redis:      {stack.redis.url}  (data in {stack.redis.directory}, AOF on)")
        print(f"  Endpoints:  {STATE / 'endpoints.json'}")
        sys.stdout.flush()
        while not stopping:
            if failed := stack.failed_child():
                print(f"{failed.args[0]} exited; see {failed.log_path}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        print("Stopping...")
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
