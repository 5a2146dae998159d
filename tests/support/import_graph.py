"""The project's import graph, read with `ast` (nothing is imported), and the floors it must keep.

Run `python -m tests.support.import_graph` for the floors, the arrows between them and every arrow
that runs back up (or sideways between the adapters and the web layer); tests/unit/test_layers.py
holds the same rule. Every import counts, including those inside functions and `TYPE_CHECKING`
blocks: a deferred import is still a dependency, only a cheaper one.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What is walked: the runtime and the tools on top of it (tests may import anything).
SOURCES = ("app.py", "chalicelib", "devstack", "infra", "ops", "bench", "loadtest")
FIRST_PARTY = ("app", "chalicelib", "devstack", "infra", "ops", "bench", "loadtest")

# Floors, lowest first: a module may import its own floor's modules and those of floors below,
# never above. Floors that share a number are side by side and may not import each other (the
# adapters and the web layer meet only in the bootstrap). The tools form their own storeys: the
# template generators know nothing of the local stack, which uses them; the operator tools, the
# bench and the load test may use both.
FLOORS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("config", 0, ("chalicelib.config", "chalicelib.cache")),
    ("telemetry", 1, ("chalicelib.telemetry",)),
    ("domain", 2, ("chalicelib.domain",)),
    ("adapters", 3, ("chalicelib.adapters",)),
    ("web", 3, ("chalicelib.web",)),
    ("bootstrap", 4, ("chalicelib.bootstrap", "chalicelib.job_wiring", "chalicelib.job_settings")),
    ("app", 5, ("app", "chalicelib.traffic_hook", "chalicelib")),
    ("infra", 6, ("infra",)),
    ("devstack", 7, ("devstack",)),
    ("ops", 8, ("ops",)),
    ("loadtest", 9, ("loadtest",)),
    ("bench", 10, ("bench",)),
)


@dataclass(frozen=True)
class Arrow:
    source: str  # module that imports
    target: str  # module imported
    line: int

    @property
    def source_floor(self) -> str:
        return floor_of(self.source)

    @property
    def target_floor(self) -> str:
        return floor_of(self.target)


def floor_of(module: str) -> str:
    """The floor a module lives on: the longest matching prefix."""
    best, best_len = "", -1
    for name, _, prefixes in FLOORS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    if not best:
        raise ValueError(f"{module} is on no floor: add it to FLOORS in tests/support/import_graph.py")
    return best


_LEVEL = {name: level for name, level, _ in FLOORS}


def runs_back(arrow: Arrow) -> bool:
    """An arrow up to a higher floor, or across to a side-by-side floor."""
    source, target = arrow.source_floor, arrow.target_floor
    if source == target:
        return False
    return _LEVEL[target] >= _LEVEL[source]


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files(root: Path = ROOT) -> Iterator[Path]:
    for source in SOURCES:
        path = root / source
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _known(name: str, modules: set[str]) -> str | None:
    """The first-party module `name` names (a module, or a package's `__init__`), if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def arrows(root: Path = ROOT) -> list[Arrow]:
    files = list(_files(root))
    names = {_module_name(path, root) for path in files}
    found: list[Arrow] = []
    for path in files:
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                # `from package import module` names a module; `from module import name` does not.
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
                targets = [t if _known(t, names) == t else base for t in targets]
            for target in targets:
                if target.split(".")[0] not in FIRST_PARTY:
                    continue
                known = _known(target, names)
                if known is not None and known != module:
                    found.append(Arrow(module, known, node.lineno))
    return sorted(set(found), key=lambda a: (a.source, a.target, a.line))


def back_arrows(root: Path = ROOT) -> list[Arrow]:
    return [arrow for arrow in arrows(root) if runs_back(arrow)]


def main() -> int:
    found = arrows()
    print("Floors (lowest first; same number: side by side):")
    for name, level, prefixes in FLOORS:
        print(f"  {level:>2} {name:<10} {', '.join(prefixes)}")
    print("\nArrows between floors (imports counted once per module pair):")
    pairs = Counter((a.source_floor, a.target_floor) for a in {(a.source, a.target): a for a in found}.values())
    for (source, target), count in sorted(pairs.items(), key=lambda kv: (_LEVEL[kv[0][0]], kv[0])):
        if source != target:
            mark = "  BACK" if _LEVEL[target] >= _LEVEL[source] else ""
            print(f"  {source:>10} -> {target:<10} {count:>3}{mark}")
    back = [a for a in found if runs_back(a)]
    modules = sorted({(a.source, a.target) for a in back})
    print(f"\nArrows that run back up or across: {len(modules)} (module pairs), {len(back)} import statements")
    for source, target in modules:
        lines = ", ".join(str(a.line) for a in back if (a.source, a.target) == (source, target))
        print(f"  {source} -> {target}  (line {lines})")
    return 1 if back else 0


if __name__ == "__main__":
    sys.exit(main())
