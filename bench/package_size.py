"""Section "Package": the prod deployment.zip that `chalice package` builds (`make package STAGE=prod`),
its size against the 1 MB target, and what is in it.

boto3 and botocore come from the Lambda runtime and requirements.txt names no runtime dependency,
so the package should hold Chalice's runtime module, app.py, chalicelib/ and their bytecode only.
Sets nothing in `context.measured`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from bench.context import PACKAGE_STAGE, Context
from bench.report import Figure

SECTION = "Package"
LIMIT_BYTES = 1_000_000  # "under 1 MB zipped" (decimal megabyte: the stricter reading is 1 MiB's 1,048,576)
KB = 1000

# Parts of the package, in the order shown; anything else lands in OTHER.
RUNTIME, APP, LIB, BYTECODE, OTHER = "chalice/", "app.py", "chalicelib/", "bytecode", "other"
PARTS = {
    RUNTIME: "Chalice's runtime module (chalice/app.py), vendored by `chalice package`",
    APP: "the routes",
    LIB: "the application package, source",
    BYTECODE: "checked-hash .pyc files (infra/bytecode.py), so a cold start does not compile",
    OTHER: "anything else: a third-party library would show up here",
}


@dataclass
class Part:
    files: int = 0
    zipped: int = 0
    unzipped: int = 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def part_of(name: str) -> str:
    path = PurePosixPath(name)
    if "__pycache__" in path.parts or path.suffix == ".pyc":
        return BYTECODE
    if path.parts[0] == "chalice":
        return RUNTIME
    if name == APP:
        return APP
    if path.parts[0] == "chalicelib":
        return LIB
    return OTHER


def breakdown(infos: list[zipfile.ZipInfo]) -> dict[str, Part]:
    parts = {name: Part() for name in PARTS}
    for info in infos:
        if info.is_dir():
            continue
        part = parts[part_of(info.filename)]
        part.files += 1
        part.zipped += info.compress_size
        part.unzipped += info.file_size
    return parts


def run(context: Context) -> list[Figure]:
    package = context.package()
    size = package.stat().st_size
    with zipfile.ZipFile(package) as archive:
        infos = archive.infolist()
    parts = breakdown(infos)
    others = sorted(info.filename for info in infos if not info.is_dir() and part_of(info.filename) == OTHER)
    files = sum(part.files for part in parts.values())
    unzipped = sum(part.unzipped for part in parts.values())
    overhead = size - sum(part.zipped for part in parts.values())
    if others:
        shown = ", ".join(others[:20]) + (f" and {len(others) - 20} more" if len(others) > 20 else "")
        contents = f"Unexpected files, check for a bundled library: {shown}."
    else:
        contents = (
            "Only Chalice's runtime module, app.py and chalicelib/ (source and bytecode): no third-party "
            "library, since boto3 comes from the Lambda runtime and requirements.txt has no runtime dependency."
        )
    figures = [
        Figure(
            SECTION,
            "deployment.zip",
            size / KB,
            "KB",
            target=f"< {LIMIT_BYTES // KB:,} KB",
            passed=size < LIMIT_BYTES,
            note=f"{package.name} of stage {PACKAGE_STAGE} from `chalice package`, {size:,} bytes "
            f"(1 KB = 1,000 bytes; the target is 1 MB = {LIMIT_BYTES:,} bytes; {overhead / KB:,.1f} KB of it "
            f"zip headers and directory). {contents}",
        ),
        Figure(SECTION, "unzipped", unzipped / KB, "KB", note="what Lambda unpacks into /var/task"),
        Figure(SECTION, "files", files, "files"),
    ]
    for key, what in PARTS.items():
        part = parts[key]
        if key == OTHER and not part.files:
            continue
        if key == BYTECODE and not part.files:
            what = "none: the package holds source only, compiled again at every cold start"
        figures.append(
            Figure(
                SECTION,
                f"{key}, zipped",
                part.zipped / KB,
                "KB",
                note=f"{what}; {_count(part.files, 'file')}, {part.unzipped / KB:,.1f} KB unzipped",
            )
        )
    return figures
