"""The app's routes, read from the app itself so tests pick up routes added later."""

from __future__ import annotations

import re
from typing import Any

import tests.support.app_env  # noqa: F401  # isort: skip - the environment app.py reads at import
from app import app


def declared(protected: bool | None = None) -> list[tuple[str, str]]:
    """(path, method) of every route; only the protected (or public) ones if asked."""
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if method == "OPTIONS":
                continue
            if protected is None or (entry.authorizer is not None) == protected:
                found.append((path, method))
    return sorted(found)


def concrete(path: str, user_id: str) -> str:
    """The path with every `{parameter}` filled in (all of them name a user here)."""
    return re.sub(r"\{[^}]+\}", user_id, path)


def entry(path: str, method: str) -> Any:
    return app.routes[path][method]
