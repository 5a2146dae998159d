"""Compiled bytecode in the deployment package, so a cold start does not compile the source.

Lambda's /var/task is read-only: Python cannot cache what it compiles there, so a package of
source only is compiled again on every cold start. The .pyc files added here use checked-hash
invalidation (PEP 552): Python hashes the source and uses the bytecode only if it matches, so
it never depends on file times in the zip and an edited source is never shadowed by stale bytecode.
Bytecode only serves the Python version that wrote it; Chalice sets the function's runtime from
the same interpreter, and any other version ignores these files and compiles the source.
"""

from __future__ import annotations

import importlib.util
import py_compile
import tempfile
import zipfile
from pathlib import Path

# Where Lambda unpacks the function: the path tracebacks show.
TASK_ROOT = "/var/task"


def add_bytecode(package: Path) -> None:
    """Rewrite `package` with a .pyc next to every .py it holds (chalicelib/__pycache__/x.cpython-311.pyc)."""
    with tempfile.TemporaryDirectory() as scratch:
        rewritten = Path(scratch) / "deployment.zip"
        with zipfile.ZipFile(package) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in source.infolist():
                # Chalice copies chalicelib/__pycache__ as it finds it: timestamp-checked bytecode of
                # the build machine, which never matches in Lambda and only adds bytes. Ours replaces it.
                if "__pycache__/" in entry.filename or entry.filename.endswith(".pyc"):
                    continue
                data = source.read(entry)
                target.writestr(entry, data)
                if not entry.filename.endswith(".py"):
                    continue
                staged = Path(scratch) / "src" / entry.filename
                staged.parent.mkdir(parents=True, exist_ok=True)
                staged.write_bytes(data)
                compiled = Path(scratch) / "pyc" / entry.filename
                py_compile.compile(
                    str(staged),
                    cfile=str(compiled),
                    dfile=f"{TASK_ROOT}/{entry.filename}",
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                )
                name = importlib.util.cache_from_source(entry.filename)
                info = zipfile.ZipInfo(name, date_time=entry.date_time)  # Chalice's fixed date: reproducible
                info.external_attr = entry.external_attr
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, compiled.read_bytes())
        rewritten.replace(package)
