"""The gateway's HTTP API as the CLI uses it: one small client, errors in the API's words."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_FILE = Path.home() / ".config" / "akros" / "token"


class ApiError(Exception):
    """The gateway refused; ``message`` is its ``detail``, written for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def gateway_url(explicit: str | None) -> str:
    """--url, else AKROS_URL, else the gateway `make run` started here, else the default."""
    if explicit:
        return explicit
    if env := os.environ.get("AKROS_URL"):
        return env
    endpoints = Path(".akros/endpoints.json")
    if endpoints.exists():
        return str(json.loads(endpoints.read_text()).get("gateway_url", DEFAULT_URL))
    return DEFAULT_URL


def token(explicit: str | None) -> str:
    """--token, else AKROS_TOKEN, else ~/.config/akros/token."""
    found = explicit or os.environ.get("AKROS_TOKEN")
    if not found and TOKEN_FILE.exists():
        found = TOKEN_FILE.read_text().strip()
    if not found:
        raise ApiError(
            401, "No token: pass --token, set AKROS_TOKEN or write ~/.config/akros/token."
        )
    return found


@dataclass
class Gateway:
    http: httpx2.Client

    @classmethod
    def connect(cls, url: str, bearer: str, timeout_s: float = 10) -> "Gateway":
        return cls(
            httpx2.Client(
                base_url=url, headers={"Authorization": f"Bearer {bearer}"}, timeout=timeout_s
            )
        )

    def call(self, method: str, path: str, **options: Any) -> Any:
        try:
            answer = self.http.request(method, path, **options)
        except httpx2.HTTPError as error:
            raise ApiError(
                0, f"cannot reach the gateway at {self.http.base_url}: {error}"
            ) from error
        if answer.status_code >= 400:
            try:
                detail = str(answer.json().get("detail", answer.text))
            except ValueError:
                detail = answer.text
            raise ApiError(answer.status_code, detail)
        return answer.json() if answer.content else None
