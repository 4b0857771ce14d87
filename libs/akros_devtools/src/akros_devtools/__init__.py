"""Development-only helpers: a local redis-server, free ports and child processes."""

from akros_devtools.processes import ChildProcess, free_port, wait_until
from akros_devtools.redis_server import LocalRedis, find_redis_server

__all__ = ["ChildProcess", "LocalRedis", "find_redis_server", "free_port", "wait_until"]
