"""The consumer process of bench/backbone.py's latency run: records publish-to-handler delay."""

import time

from akros_bus import Bus, BusSettings
from akros_bus.runner import run
from akros_msgs import Message
from akros_msgs.streams import SCALE_COMMANDS

LATENCY_KEY = "bench:latency_ms"
bus = Bus(BusSettings(service_name="bench-latency"))


@bus.consume(SCALE_COMMANDS, "bench-latency")
async def record(message: Message) -> None:
    delay_ms = (time.time() - message.occurred_at.timestamp()) * 1000
    await bus.redis.rpush(LATENCY_KEY, f"{delay_ms:.4f}")


if __name__ == "__main__":
    run(bus)
