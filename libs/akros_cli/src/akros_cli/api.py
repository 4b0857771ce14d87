"""The gateway's HTTP API as the CLI uses it: one small client, errors in the API's words."""

import json
import os
from collections.abc import Iterator
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

    def _unreachable(self, error: httpx2.HTTPError) -> ApiError:
        return ApiError(0, f"cannot reach the gateway at {self.http.base_url}: {error}")

    @staticmethod
    def _refusal(answer: httpx2.Response) -> ApiError:
        try:
            detail = str(answer.json().get("detail", answer.text))
        except ValueError:
            detail = answer.text
        return ApiError(answer.status_code, detail)

    def call(self, method: str, path: str, **options: Any) -> Any:
        try:
            answer = self.http.request(method, path, **options)
        except httpx2.HTTPError as error:
            raise self._unreachable(error) from error
        if answer.status_code >= 400:
            raise self._refusal(answer)
        return answer.json() if answer.content else None

    def text(self, path: str, **options: Any) -> str:
        """A GET whose answer is text (a log)."""
        try:
            answer = self.http.get(path, **options)
        except httpx2.HTTPError as error:
            raise self._unreachable(error) from error
        if answer.status_code >= 400:
            raise self._refusal(answer)
        return answer.text

    def lines(self, path: str, **options: Any) -> Iterator[str]:
        """A GET answered by a stream of text, line by line as it comes, until the gateway
        ends it (a followed log: the program ended) or the caller stops reading."""
        try:
            # No read timeout: a quiet program writes nothing for as long as it likes.
            with self.http.stream(
                "GET", path, timeout=httpx2.Timeout(10, read=None), **options
            ) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise self._refusal(answer)
                yield from answer.iter_lines()
        except httpx2.HTTPError as error:
            raise self._unreachable(error) from error
