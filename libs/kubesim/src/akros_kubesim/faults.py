"""Fault injection, so that clients' retry and timeout paths can be tested for real.

Settings are replaced as a whole through the admin endpoint (`PUT /_kubesim/faults`):
  errorRate       fraction (0..1) of matching requests answered with errorStatus
  failNext        the next N matching requests fail, whatever errorRate says (deterministic)
  errorStatus     500 (InternalError), 429 (TooManyRequests, with Retry-After) or 503
  latencySeconds  delay added before every matching request is handled
  stall           true: matching requests are held unanswered until stall is cleared
  scope           "writes" (POST, PUT, PATCH, DELETE; the default) or "all"
"""

import asyncio
import random
from dataclasses import asdict, dataclass
from typing import Any

from akros_kubesim.errors import ApiError

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STATUSES = {500, 429, 503}


@dataclass
class FaultSettings:
    errorRate: float = 0.0  # noqa: N815 - the JSON field names of the admin endpoint
    failNext: int = 0  # noqa: N815 - JSON field name
    errorStatus: int = 500  # noqa: N815 - JSON field name
    latencySeconds: float = 0.0  # noqa: N815 - JSON field name
    stall: bool = False
    scope: str = "writes"

    @classmethod
    def from_json(cls, document: Any) -> "FaultSettings":
        if not isinstance(document, dict):
            raise ApiError(400, "fault settings must be a JSON object")
        unknown = set(document) - set(cls.__dataclass_fields__)
        if unknown:
            raise ApiError(400, f"unknown fault settings: {sorted(unknown)}")
        settings = cls(**document)
        if not 0.0 <= float(settings.errorRate) <= 1.0:
            raise ApiError(400, "errorRate must be between 0 and 1")
        if settings.errorStatus not in _STATUSES:
            raise ApiError(400, f"errorStatus must be one of {sorted(_STATUSES)}")
        if settings.scope not in ("writes", "all"):
            raise ApiError(400, 'scope must be "writes" or "all"')
        if settings.failNext < 0 or settings.latencySeconds < 0:
            raise ApiError(400, "failNext and latencySeconds must not be negative")
        return settings


class FaultInjector:
    def __init__(self) -> None:
        self.settings = FaultSettings()
        self.injected = 0
        self._resumed = asyncio.Event()
        self._resumed.set()

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        if settings.stall:
            self._resumed.clear()
        else:
            self._resumed.set()

    def describe(self) -> dict[str, Any]:
        return asdict(self.settings) | {"injected": self.injected}

    def _applies(self, method: str) -> bool:
        return self.settings.scope == "all" or method in WRITE_METHODS

    async def before_request(self, method: str) -> None:
        """Delays, holds or fails the request as configured; returns when it may proceed."""
        if not self._applies(method):
            return
        if self.settings.stall:
            await self._resumed.wait()
        if self.settings.latencySeconds:
            await asyncio.sleep(self.settings.latencySeconds)
        fail = False
        if self.settings.failNext > 0:
            self.settings.failNext -= 1
            fail = True
        elif self.settings.errorRate and random.random() < self.settings.errorRate:
            fail = True
        if fail:
            self.injected += 1
            status = self.settings.errorStatus
            if status == 429:
                raise ApiError(
                    429,
                    "the server has received too many requests and has asked us to try again later",
                    details={"retryAfterSeconds": 1},
                )
            if status == 503:
                raise ApiError(503, "the server is currently unable to handle the request")
            raise ApiError(
                500,
                'an error on the server ("injected by kubesim") '
                "has prevented the request from succeeding",
            )
