"""The deployment package carries checked-hash bytecode for every module, matching its source."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.bytecode import add_bytecode
from infra.packaging import package_cloudformation
from infra.stages import load_stage

# PEP 552: the flags word after the magic number; 0b11 = hash-based, checked against the source.
CHECKED_HASH_FLAGS = 0b11


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bytecode") / "prod"
    package_cloudformation(load_stage("prod"), out)
    return out / "deployment.zip"


def test_every_module_has_bytecode_of_its_own_source(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        sources = sorted(name for name in names if name.endswith(".py"))
        assert {"app.py", "chalice/app.py", "chalicelib/domain/service.py"} <= set(sources)
        for source in sources:
            pyc = importlib.util.cache_from_source(source)
            assert pyc in names, source
            data = archive.read(pyc)
            assert data[:4] == importlib.util.MAGIC_NUMBER
            assert int.from_bytes(data[4:8], "little") == CHECKED_HASH_FLAGS
            assert data[8:16] == importlib.util.source_hash(archive.read(source)), source
        assert all(name.endswith((".py", ".pyc")) for name in names)


def test_the_package_carries_no_local_stack_or_api_docs(package: Path) -> None:
    """Swagger UI (/docs) and the stack behind it are `make run`'s alone: the Lambda stays small."""
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
    assert [name for name in names if name.split("/")[0] in {"devstack", "swagger_ui", "websocket", "tests"}] == []
    assert [name for name in names if "swagger" in name.lower() or name.endswith((".js", ".css", ".html"))] == []


def test_python_loads_the_bytecode_instead_of_compiling(package: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        archive.extractall(tmp_path)
    # Poison the compiler: if any packaged module were compiled from source, the import would fail.
    program = (
        "import builtins, sys\n"
        "real = builtins.compile\n"
        "def refuse(source, filename, *a, **k):\n"
        "    if str(filename).startswith('/var/task/') or str(filename).startswith(sys.argv[1]):\n"
        "        raise SystemExit('compiled ' + str(filename))\n"
        "    return real(source, filename, *a, **k)\n"
        "builtins.compile = refuse\n"
        "import chalicelib.domain.service, chalicelib.domain.models\n"
        "print(chalicelib.domain.service.__cached__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-B", "-c", program, str(tmp_path)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "__pycache__" in result.stdout


def test_adding_bytecode_again_gives_the_same_package(package: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again.zip"
    copy.write_bytes(package.read_bytes())
    add_bytecode(copy)
    assert copy.read_bytes() == package.read_bytes()
