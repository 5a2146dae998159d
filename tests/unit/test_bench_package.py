"""How the benchmark sorts the deployment package's files: a bundled library must show up as "other"."""

from __future__ import annotations

import zipfile

from bench.package_size import APP, BYTECODE, LIB, OTHER, RUNTIME, breakdown, part_of


def test_package_parts() -> None:
    assert part_of("chalice/app.py") == RUNTIME
    assert part_of("chalice/__pycache__/app.cpython-311.pyc") == BYTECODE
    assert part_of("__pycache__/app.cpython-311.pyc") == BYTECODE
    assert part_of("app.py") == APP
    assert part_of("chalicelib/domain/models.py") == LIB
    assert part_of("jwt/__init__.py") == OTHER
    assert part_of("requests-2.32.0.dist-info/METADATA") == OTHER
    infos = [zipfile.ZipInfo("chalicelib/a.py"), zipfile.ZipInfo("chalicelib/"), zipfile.ZipInfo("jwt/api.py")]
    infos[0].file_size, infos[0].compress_size = 1000, 400
    parts = breakdown(infos)
    assert (parts[LIB].files, parts[LIB].zipped, parts[LIB].unzipped) == (1, 400, 1000)
    assert parts[OTHER].files == 1
