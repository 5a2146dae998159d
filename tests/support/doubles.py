"""Test doubles for proving what the app did not do: a service no request may reach, and a JWKS endpoint."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, cast

import pytest

from chalicelib.domain.service import UserService


class SpyService:
    """Stands in for UserService and records any use of it, so a test can prove no handler ran."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[str] = []
        self._error = error or AssertionError("a request reached the service")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise self._error

        return method

    def as_service(self) -> UserService:
        return cast(UserService, self)


class _Response(io.BytesIO):
    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeUrlopen:
    """Replaces urllib.request.urlopen for chalicelib.web.tokens: records every URL asked for and
    answers from `pages` (URL -> JSON document, raw bytes or an exception to raise)."""

    def __init__(self, pages: dict[str, Any]) -> None:
        self.pages = pages
        self.urls: list[str] = []
        self.timeouts: list[float] = []

    def __call__(self, url: str, timeout: float) -> _Response:
        self.urls.append(url)
        self.timeouts.append(timeout)
        page = self.pages.get(url, OSError(f"no route to {url}"))
        if isinstance(page, Exception):
            raise page
        return _Response(page if isinstance(page, bytes) else json.dumps(page).encode())

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeUrlopen:
        monkeypatch.setattr("chalicelib.web.tokens.urllib.request.urlopen", self)
        return self
