"""The shared runtime every Akros service uses for the event backbone."""

from akros_bus.bus import Bus, ensure_group, should_dead_letter
from akros_bus.logs import configure_logging, get_logger
from akros_bus.settings import BusSettings

__all__ = [
    "Bus",
    "BusSettings",
    "configure_logging",
    "ensure_group",
    "get_logger",
    "should_dead_letter",
]
