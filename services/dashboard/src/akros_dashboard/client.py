"""The gateway's HTTP API as the dashboard uses it: a thin, typed-enough client.

Everything the dashboard shows comes through here; it never reads Redis or the cluster.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

JSON = dict[str, Any]


@dataclass
class GatewayError(Exception):
    """An answer other than success: the status, the gateway's ``detail`` and field errors."""

    status: int
    detail: str
    errors: list[JSON] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.detail} (HTTP {self.status})"


class GatewayClient:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self._http = httpx2.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **options: Any) -> Any:
        try:
            answer = self._http.request(method, path, **options)
        except httpx2.HTTPError as error:
            raise GatewayError(0, f"The gateway did not answer: {error}") from error
        if answer.status_code >= 400:
            try:
                body = answer.json()
            except ValueError:
                body = {"detail": answer.text}
            raise GatewayError(
                answer.status_code, str(body.get("detail", "")), list(body.get("errors") or [])
            )
        return answer.json()

    def me(self) -> JSON:
        return dict(self._call("GET", "/v1/me"))

    def cluster(self) -> JSON:
        return dict(self._call("GET", "/v1/cluster"))

    def environments(self, user: str | None = None) -> list[JSON]:
        params = {"user": user} if user else None
        return list(self._call("GET", "/v1/environments", params=params)["environments"])

    def delete_environment(self, owner: str, name: str, *, purge_volume: bool = False) -> str:
        params = {"user": owner, "purge_volume": str(purge_volume).lower()}
        answer = self._call("DELETE", f"/v1/environments/{name}", params=params)
        return str(answer["request_id"])

    def stop_environment(self, owner: str, name: str) -> str:
        """Queue the stop of a ready environment (409 otherwise); its request id."""
        answer = self._call("POST", f"/v1/environments/{name}/stop", params={"user": owner})
        return str(answer["request_id"])

    def start_environment(self, owner: str, name: str) -> str:
        """Queue the start of a stopped environment (409 otherwise, 403 over quota)."""
        answer = self._call("POST", f"/v1/environments/{name}/start", params={"user": owner})
        return str(answer["request_id"])

    def environment_events(self, owner: str, name: str) -> JSON:
        """What the cluster said about an environment, and why it is pending (if it is)."""
        return dict(self._call("GET", f"/v1/environments/{name}/events", params={"user": owner}))

    def usage_by_user(self) -> list[JSON]:
        """Per user, the latest use of all their environments (admins)."""
        return list(self._call("GET", "/v1/usage")["users"])

    def environment_usage(self, owner: str, name: str) -> list[JSON]:
        """One environment's history, oldest first."""
        answer = self._call("GET", f"/v1/environments/{name}/usage", params={"user": owner})
        return list(answer["points"])

    def services(self) -> list[JSON]:
        return list(self._call("GET", "/v1/services")["services"])

    def service_schema(self) -> JSON:
        return dict(self._call("GET", "/v1/services/schema"))

    def deploy_service(self, spec: JSON, *, update: bool) -> str:
        if update:
            answer = self._call("PUT", f"/v1/services/{spec['name']}", json=spec)
        else:
            answer = self._call("POST", "/v1/services", json=spec)
        return str(answer["request_id"])

    def delete_service(self, name: str) -> str:
        return str(self._call("DELETE", f"/v1/services/{name}")["request_id"])

    def request(self, request_id: str) -> JSON:
        return dict(self._call("GET", f"/v1/requests/{request_id}"))

    def follow(self, request_id: str, timeout_s: float, interval_s: float = 0.25) -> JSON:
        """The request once it is applied or failed, or as it stands after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            document = self.request(request_id)
            if document["status"] != "pending" or time.monotonic() >= deadline:
                return document
            time.sleep(interval_s)
