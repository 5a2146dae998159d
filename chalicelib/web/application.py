"""Chalice's classes as the app uses them: the app class, which answers every route's errors
through the one map (chalicelib/web/errors.py) and keeps the request being handled per thread,
and a CORS configuration worked out once.

Chalice turns any exception a view raises into its own 500 before middleware sees it, so the
mapping happens where each view is registered: a route needs no decorator of its own, and one
that forgot it cannot answer a domain error with Chalice's 500.

Chalice stores the current request and Lambda context as attributes of the app object. Lambda
runs one request per environment at a time, but `chalice local`'s server runs one thread per
connection, and concurrent requests overwrote each other's body and response (aws/chalice#759).
Per-thread values keep local concurrency real, as it is across Lambda environments, instead
of serialising every request behind one lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from chalice import Chalice, CORSConfig  # type: ignore[attr-defined]


class _PerThread:
    """A data descriptor holding one value per thread (so it wins over the instance dict)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return getattr(self._local, "value", None)

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


class Application(Chalice):  # type: ignore[misc]
    current_request = _PerThread()
    lambda_context = _PerThread()

    def route(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().route(path, **kwargs)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            return register(answers_errors(view))  # type: ignore[no-any-return]

        return decorator


def answers_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """`view`, answering the errors it raises (AppError) with their JSON error responses."""
    from chalicelib.domain.errors import AppError
    from chalicelib.web.errors import error_response

    @functools.wraps(view)
    def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except AppError as exc:
            return error_response(exc)

    return answered


class FixedCORSConfig(CORSConfig):  # type: ignore[misc]
    """A CORS configuration whose headers are worked out once: Chalice asks for them on every
    request to a route that has one, and built them anew each time (sorting the allowed headers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers: dict[str, str] = super().get_access_control_headers()

    def get_access_control_headers(self) -> dict[str, str]:
        # A copy: Chalice hands it to error responses, whose headers the pipeline then adds to.
        return dict(self._headers)
