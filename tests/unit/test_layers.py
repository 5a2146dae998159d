"""The floors hold: every import runs down (tests/support/import_graph.py, docs/DESIGN.md "Project layout")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import Arrow, arrows, back_arrows, floor_of, runs_back


def test_no_import_runs_back_up_or_across() -> None:
    found = [
        f"{a.source} -> {a.target} (line {a.line}): {a.source_floor} may not import {a.target_floor}"
        for a in back_arrows()
    ]
    assert found == []


def test_every_module_is_on_a_floor_and_the_graph_is_not_empty() -> None:
    found = arrows()
    assert len(found) > 200
    assert {a.source_floor for a in found} >= {
        "domain",
        "adapters",
        "web",
        "bootstrap",
        "app",
        "infra",
        "devstack",
        "ops",
    }


@pytest.mark.parametrize(
    ("source", "target", "back"),
    [
        ("chalicelib.domain.history", "chalicelib.adapters.audit_log", True),  # domain up to adapters
        ("chalicelib.adapters.idempotency_store", "chalicelib.web.errors", True),  # across
        ("chalicelib.web.openapi", "chalicelib.adapters.avatars", True),  # across
        ("infra.packaging", "devstack.process", True),  # a generator up to the local stack
        ("chalicelib.adapters.dynamodb", "chalicelib.domain.models", False),
        ("chalicelib.bootstrap", "chalicelib.web.authentication", False),
        ("ops.drift", "devstack.resources", False),
        ("chalicelib.domain.service", "chalicelib.domain.models", False),
    ],
)
def test_the_rule_tells_arrows_down_from_arrows_back(source: str, target: str, back: bool) -> None:
    assert runs_back(Arrow(source, target, 1)) is back


def test_deferred_and_type_only_imports_count(tmp_path: Path) -> None:
    (tmp_path / "chalicelib" / "domain").mkdir(parents=True)
    (tmp_path / "chalicelib" / "adapters").mkdir()
    for package in ("chalicelib", "chalicelib/domain", "chalicelib/adapters"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "chalicelib" / "adapters" / "store.py").write_text("X = 1\n")
    (tmp_path / "chalicelib" / "domain" / "rules.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from chalicelib.adapters.store import X\n"
        "def f():\n    from chalicelib.adapters import store\n"
    )
    found = back_arrows(tmp_path)
    assert {(a.source, a.target, a.line) for a in found} == {
        ("chalicelib.domain.rules", "chalicelib.adapters.store", 3),
        ("chalicelib.domain.rules", "chalicelib.adapters.store", 5),
    }


def test_a_module_outside_every_floor_is_named() -> None:
    with pytest.raises(ValueError, match="no floor"):
        floor_of("somewhere.else")
