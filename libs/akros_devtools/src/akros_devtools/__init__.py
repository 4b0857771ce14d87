"""Development-only helpers: a local redis-server, free ports, child processes, waiting."""

from akros_devtools.processes import ChildProcess, free_port
from akros_devtools.redis_server import LocalRedis, find_redis_server
from akros_devtools.waiting import wait_for, wait_until, wait_until_async

__all__ = [
    "ChildProcess",
    "LocalRedis",
    "find_redis_server",
    "free_port",
    "wait_for",
    "wait_until",
    "wait_until_async",
]
