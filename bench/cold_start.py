"""Cold start: importing the deployed package as Lambda does, against importing boto3 and chalice.

Each import runs in a fresh interpreter with the prod package (deployment.zip, as `make package
STAGE=prod` builds it) unpacked as the task root, the function's environment (AWS mode: API
Gateway verifies tokens, so nothing local is imported) and `-B`: Lambda's /var/task is read-only,
so what the package holds as source only is compiled again on every cold start. boto3 comes from
the virtualenv's compiled site-packages, standing in for the runtime's own copy.

The app imports no boto3 itself (the first request does), so the fair comparison is the app
plus boto3 against boto3 plus chalice: the delta is what the app adds to every cold start.

Sets in context.measured:
- cold_baseline_ms: `import boto3, chalice` (median)
- cold_app_ms: `import app` alone (median)
- cold_app_boto3_ms: `import app` then `import boto3` (median)
- cold_import_delta_ms: cold_app_boto3_ms - cold_baseline_ms (the figure held to the target)
- cold_import_ratio: cold_app_boto3_ms / cold_baseline_ms
- cold_import_hygiene: how many watched modules `import app` loaded (target 0)
- cold_compiled_modules: how many of the package's modules `import app` compiled from source
  (target 0 when the package ships bytecode: its bytecode must be usable)
- cold_source_only_delta_ms, cold_source_only_app_ms: the same without the package's bytecode
  (what `chalice deploy` ships), when the package has bytecode
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import lambda_events
from bench.context import Context
from bench.report import Figure

SECTION = "Cold start"
TARGET_DELTA_MS = 25.0
RUNS, QUICK_RUNS = 15, 3

# Loaded by `import app` on Lambda, each of these would be a cost the deployed function does not
# need: token verification (API Gateway's authorizer does it), emulators, local servers, test
# code, the OpenAPI document (built on its route's first request), tracing (only for sampled
# requests), the DynamoDB adapter (wired by the first request), or an AWS client library,
# without which no network client can exist at import. tests/unit/test_lambda_import.py holds
# the app to this list on every `make test`.
WATCHED = (
    "jwt",
    "cryptography",
    "moto",
    "werkzeug",
    "requests",
    "boto3",
    "botocore",
    "urllib3",
    "urllib.request",
    "aws_xray_sdk",
    "chalicelib.tokens",
    "chalicelib.openapi",
    "chalicelib.xray",
    "chalicelib.dynamodb",
    "chalicelib.traffic_hook",
    # The stream consumer's and the history route's: loaded when first used, never at import.
    "chalicelib.change_consumer",
    "chalicelib.change_events",
    "chalicelib.audit_log",
    "chalicelib.event_bus",
    "chalicelib.history",
    "devstack",
    "tests",
)

# Only `time` is imported before the clock starts (and `sys`, always loaded); `json` after it.
BASELINE_PROGRAM = textwrap.dedent(
    """
    import time
    started = time.perf_counter()
    import boto3, chalice
    ms = (time.perf_counter() - started) * 1000
    import json, sys
    print(json.dumps({"baseline_ms": ms, "chalice_file": sys.modules["chalice"].__file__}))
    """
)
APP_PROGRAM = textwrap.dedent(
    """
    import time
    started = time.perf_counter()
    import app
    app_ms = (time.perf_counter() - started) * 1000
    import sys
    loaded = [name for name in {watched!r} if name in sys.modules]
    started = time.perf_counter()
    import boto3
    boto3_ms = (time.perf_counter() - started) * 1000
    import json
    print(json.dumps({{
        "app_ms": app_ms,
        "boto3_ms": boto3_ms,
        "loaded": loaded,
        "app_file": app.__file__,
        "chalice_file": sys.modules["chalice"].__file__,
    }}))
    """
).format(watched=WATCHED)


# How `python -v` reports each module's code: from a .pyc it used, or from the source it compiled.
_CODE_FROM = "# code object from "


@dataclass(frozen=True)
class Timings:
    baseline_ms: float
    app_ms: float
    app_boto3_ms: float
    loaded: tuple[str, ...]

    @property
    def delta_ms(self) -> float:
        return self.app_boto3_ms - self.baseline_ms

    @property
    def ratio(self) -> float:
        return self.app_boto3_ms / self.baseline_ms


def extract(package: Path, folder: Path, bytecode: bool = True) -> Path:
    """Unpack `package` into a fresh `folder`; without `bytecode`, leave out every __pycache__ entry."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with zipfile.ZipFile(package) as archive:
        names = [name for name in archive.namelist() if bytecode or "__pycache__" not in name.split("/")]
        archive.extractall(folder, members=names)
    return folder


def has_bytecode(package: Path) -> bool:
    with zipfile.ZipFile(package) as archive:
        return any(name.endswith(".pyc") for name in archive.namelist())


def _interpreter(python: str, folder: Path, program: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**lambda_events.lambda_environment(), "PYTHONPATH": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(  # noqa: S603 - our interpreter, our program
        [python, "-B", *flags, "-c", program], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"cold start program failed in {folder}:\n{completed.stderr}")
    return completed


def run_program(python: str, folder: Path, program: str) -> dict[str, Any]:
    """Run `program` in a fresh interpreter with `folder` as the task root; its JSON output line."""
    completed = _interpreter(python, folder, program)
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    for key in ("app_file", "chalice_file"):
        if key in result and not Path(result[key]).resolve().is_relative_to(folder.resolve()):
            raise RuntimeError(f"{key} {result[key]} is not from the package in {folder}: the measure would be wrong")
    return result


def compiled_from_source(python: str, folder: Path) -> list[str]:
    """The package's modules that `import app` compiles from source: no bytecode for them, or
    bytecode Python rejects (stale, or for another Python). From the import system's own account
    (`python -v`), in a run that is not timed."""
    stderr = _interpreter(python, folder, APP_PROGRAM, "-v").stderr
    root = folder.resolve()
    found = []
    for line in stderr.splitlines():
        if line.startswith(_CODE_FROM):
            path = Path(line[len(_CODE_FROM) :].strip("'"))
            if path.suffix == ".py" and path.resolve().is_relative_to(root):
                found.append(path.resolve().relative_to(root).as_posix())
    return sorted(found)


def measure(python: str, folder: Path, runs: int) -> Timings:
    """Baseline and app imports, alternated so that drift in the machine's load hits both alike."""
    baseline: list[float] = []
    app: list[float] = []
    app_boto3: list[float] = []
    loaded: set[str] = set()
    for _ in range(runs):
        baseline.append(float(run_program(python, folder, BASELINE_PROGRAM)["baseline_ms"]))
        result = run_program(python, folder, APP_PROGRAM)
        app.append(float(result["app_ms"]))
        app_boto3.append(float(result["app_ms"]) + float(result["boto3_ms"]))
        loaded.update(result["loaded"])
    return Timings(
        baseline_ms=statistics.median(baseline),
        app_ms=statistics.median(app),
        app_boto3_ms=statistics.median(app_boto3),
        loaded=tuple(name for name in WATCHED if name in loaded),
    )


def figures(timings: Timings, label: str, held: bool, runs: int) -> list[Figure]:
    """The figures of one variant; only a `held` variant is held to the target."""
    target = f"≤ {TARGET_DELTA_MS:.0f} ms over baseline"
    delta_note = (
        f"median of {runs} fresh interpreters each (python -B, AWS mode); app {timings.app_ms:.1f} ms "
        f"+ boto3 after it {timings.app_boto3_ms - timings.app_ms:.1f} ms, against boto3 + chalice "
        f"{timings.baseline_ms:.1f} ms"
    )
    if not held:
        delta_note += (
            "; the package without its __pycache__ entries: in effect what `chalice deploy` ships (Chalice builds"
            " that zip itself; the only .pyc files it holds are the developer's timestamp ones, which never match)"
        )
    return [
        Figure(SECTION, f"{label}: import boto3 + chalice (baseline)", timings.baseline_ms, "ms"),
        Figure(SECTION, f"{label}: import app alone", timings.app_ms, "ms"),
        Figure(SECTION, f"{label}: import app, then boto3", timings.app_boto3_ms, "ms"),
        Figure(
            SECTION,
            f"{label}: app + boto3 over baseline",
            timings.delta_ms,
            "ms",
            target=target if held else "",
            passed=(timings.delta_ms <= TARGET_DELTA_MS) if held else None,
            note=delta_note,
        ),
        Figure(SECTION, f"{label}: app + boto3 ÷ baseline", timings.ratio, "x"),
    ]


def hygiene_figure(loaded: tuple[str, ...]) -> Figure:
    note = (
        f"loaded by `import app`: {', '.join(loaded)}"
        if loaded
        else "none: no network client can exist at import since boto3/botocore are not loaded"
    )
    return Figure(
        SECTION,
        "modules only local/test code or a request needs, loaded at import",
        len(loaded),
        "",
        target="0",
        passed=not loaded,
        note=f"{note} (watched: {', '.join(WATCHED)})",
    )


def bytecode_figure(compiled: list[str], shipped_bytecode: bool) -> Figure:
    name = "package modules compiled at import (no usable bytecode)"
    if not shipped_bytecode:
        return Figure(SECTION, name, len(compiled), "", note="the package holds no bytecode")
    note = (
        f"compiled on every cold start (bytecode missing, stale or for another Python): {', '.join(compiled)}"
        if compiled
        else "every module `import app` loads from the package uses the package's bytecode"
    )
    return Figure(SECTION, name, len(compiled), "", target="0", passed=not compiled, note=note)


def run(context: Context) -> list[Figure]:
    package = context.package()
    runs = QUICK_RUNS if context.quick else RUNS
    root = context.workdir / "cold"
    folder = extract(package, root / "as-shipped")
    shipped = measure(context.python, folder, runs)
    compiled = compiled_from_source(context.python, folder)
    bytecode = has_bytecode(package)
    context.measured.update(
        {
            "cold_baseline_ms": shipped.baseline_ms,
            "cold_app_ms": shipped.app_ms,
            "cold_app_boto3_ms": shipped.app_boto3_ms,
            "cold_import_delta_ms": shipped.delta_ms,
            "cold_import_ratio": shipped.ratio,
            "cold_import_hygiene": float(len(shipped.loaded)),
            "cold_compiled_modules": float(len(compiled)),
        }
    )
    result = [
        *figures(shipped, "as packaged", held=True, runs=runs),
        hygiene_figure(shipped.loaded),
        bytecode_figure(compiled, bytecode),
    ]
    if bytecode:
        source_only = measure(context.python, extract(package, root / "source-only", bytecode=False), runs)
        context.measured["cold_source_only_delta_ms"] = source_only.delta_ms
        context.measured["cold_source_only_app_ms"] = source_only.app_ms
        result += figures(source_only, "source only", held=False, runs=runs)
    return result
