"""A consumer process for the backbone tests: records in Redis what it starts and applies.

Commands whose name starts with "slow" take TEST_SLOW_S seconds; "fail" always raises.
"""

import asyncio
import os

from akros_bus import Bus, BusSettings
from akros_bus.runner import run
from akros_msgs import Message
from akros_msgs.streams import ENVIRONMENT_COMMANDS

GROUP = "test-group"

bus = Bus(BusSettings(service_name="test-consumer"))
slow_seconds = float(os.environ.get("TEST_SLOW_S", "0"))


@bus.consume(ENVIRONMENT_COMMANDS, GROUP)
async def record(message: Message) -> None:
    name = getattr(message, "name", "")
    await bus.redis.incr(f"test:started:{message.request_id}")
    if name.startswith("slow"):
        await asyncio.sleep(slow_seconds)
    if name.startswith("fail"):
        raise RuntimeError("this handler always fails")
    await bus.redis.incr(f"test:applied:{message.request_id}")


if __name__ == "__main__":
    run(bus)
