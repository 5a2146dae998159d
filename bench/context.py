"""What every benchmark section receives: options, a work folder, the built package, and the
figures earlier sections measured (the cost model prices what the others timed)."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The stage whose package is measured: the one users deploy to production.
PACKAGE_STAGE = "prod"


@dataclass
class Context:
    workdir: Path
    quick: bool = False
    python: str = sys.executable
    # Shared between sections, by name: see each section's docstring for what it sets and reads.
    measured: dict[str, float] = field(default_factory=dict)
    _package: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def package(self) -> Path:
        """The deployment.zip `make package STAGE=prod` builds (built once per run)."""
        with self._lock:
            if self._package is None:
                from infra.packaging import package_cloudformation
                from infra.stages import load_stage

                out = self.workdir / "package"
                package_cloudformation(load_stage(PACKAGE_STAGE), out)
                self._package = out / "deployment.zip"
            return self._package
