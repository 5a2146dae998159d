"""A class and every class below it, for tests that check each member of a hierarchy (the API's
error classes, moto's response classes)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def with_subclasses(cls: type[T]) -> list[type[T]]:
    """`cls` first, then every class below it, depth first (one reached through two bases comes twice)."""
    return [cls, *(sub for child in cls.__subclasses__() for sub in with_subclasses(child))]
