"""app.py's user_changes as Lambda calls it: partial batch responses where the mapping takes them,
and where it does not (a mapping `chalice deploy` made), a failure fails the whole batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import tests.support.app_env  # noqa: F401  # isort: skip - the environment app.py reads at import

import pytest

from app import user_changes
from chalicelib import bootstrap
from chalicelib.domain.change_consumer import ChangeConsumer

FAILED = {"batchItemFailures": [{"itemIdentifier": "42"}]}


class Failing(ChangeConsumer):
    def __init__(self) -> None:
        pass

    def handle(self, records: Any) -> dict[str, list[dict[str, str]]]:
        assert list(records) == []
        return FAILED


@pytest.fixture(autouse=True)
def failing() -> Iterator[None]:
    bootstrap.reset()
    bootstrap.use_changes(Failing())
    yield
    bootstrap.reset()


def test_a_mapping_that_takes_partial_responses_gets_the_failed_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("REPORT_BATCH_ITEM_FAILURES", "true")
    assert user_changes({"Records": []}, None) == FAILED


def test_a_mapping_that_does_not_gets_an_error_so_nothing_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.delenv("REPORT_BATCH_ITEM_FAILURES", raising=False)
    with pytest.raises(RuntimeError, match="retried"):
        user_changes({"Records": []}, None)
