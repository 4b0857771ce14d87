"""Prometheus metrics: HTTP requests by route and status, their latency, commands published.

Each app has its own registry, so several apps in one process (tests) never collide, and
/metrics shows exactly this gateway's figures.
"""

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as render_registry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from akros_bus.collector import Activity

# Label value for requests no route matched, so that scanners probing random paths cannot
# create one time series per path.
UNMATCHED_ROUTE = "unmatched"
# Latency buckets from 1 ms: the gateway's own work is a few milliseconds (DESIGN.md 5).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "akros_gateway_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "akros_gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.commands = Counter(
            "akros_gateway_commands_published",
            "Commands published on the event backbone, by message type",
            ["type"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return render_registry(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (/v1/environments/{name}),
    never its concrete path, so the number of time series stays bounded."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, activity: Activity) -> None:
        self.app = app
        self.metrics = metrics
        self.activity = activity  # full garbage collections wait for a quiet moment

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.activity.note()
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED_ROUTE)
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
