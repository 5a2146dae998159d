"""Import files: CSV (`name,email[,phone][,role]`) or JSON Lines, read as a stream of rows.

A file is read a line at a time, never whole, so a worker's memory does not grow with the file.
What is wrong with the file as a whole (no header, an unknown column, not UTF-8 at the start) is
a `FileRefused`; what is wrong with one row (bad JSON, a wrong number of fields, a row too long)
travels with the row, which then ends `failed` with that reason, and the rows around it go on.
Field values are checked later, by the very rules `POST /users` applies (models.parse_new_user).

Rows are numbered from 1: the first record after a CSV's header, the first line of a JSON Lines
file. Blank lines are not rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import ImportFileRefused

# What this module raises for a file that cannot be imported whole.
FileRefused = ImportFileRefused

CSV, JSONL = "csv", "jsonl"
FORMATS = (CSV, JSONL)
# The media type of each format: what an inline body is sent as, and what an upload form pins.
MEDIA_TYPES = {CSV: "text/csv", JSONL: "application/x-ndjson"}
# Also accepted for an inline JSON Lines body.
JSONL_ALIASES = ("application/jsonl", "application/x-jsonlines")
IMPORT_COLUMNS = ("name", "email", "phone", "role")
REQUIRED_COLUMNS = ("name", "email")
# What an export writes that nobody can set: accepted and ignored, so an export imports back.
EXPORT_ONLY_COLUMNS = ("userId", "enabled", "createdAt", "updatedAt", "version")
# A valid row is well under this (name 100, email 254, phone 16 and role 6 characters, quoted).
MAX_ROW_BYTES = 2048
# Longer lines are cut there, unread (their row fails): no line is ever held whole.
LINE_LIMIT = MAX_ROW_BYTES * 4
# Rows a job may have: a million users, about 80 MB of CSV.
MAX_ROWS = 1_000_000
# What a CSV cell an export neutralised starts with (OWASP's CSV injection advice: a spreadsheet
# runs a cell that starts with one of these as a formula). The import takes the quote off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BOM = "\ufeff"


@dataclass(frozen=True)
class Row:
    """One row of a file: its fields as read (strings for CSV, any JSON for JSON Lines), or why it
    could not be read (`problem`). `end` is the byte offset just after it in the file."""

    number: int
    fields: dict[str, Any] | None = None
    problem: str | None = None
    end: int = 0

    def to_message(self) -> dict[str, Any]:
        """The row as it travels in a queue message."""
        return (
            {"n": self.number, "p": self.problem} if self.problem is not None else {"n": self.number, "f": self.fields}
        )

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Row:
        return cls(number=int(data["n"]), fields=data.get("f"), problem=data.get("p"))


def format_of_media_type(media_type: str) -> str | None:
    """The format an inline body of this media type is in (None: not an import file)."""
    if media_type == MEDIA_TYPES[CSV]:
        return CSV
    if media_type == MEDIA_TYPES[JSONL] or media_type in JSONL_ALIASES:
        return JSONL
    return None


def lines(chunks: Iterable[bytes], start: int = 0) -> Iterator[tuple[bytes, int]]:
    """Each line of a byte stream (its newline kept) with the offset just after it; `start` is the
    offset of the stream's first byte. A line without a newline at the end of the stream is a line.
    A line longer than LINE_LIMIT is handed on as its first LINE_LIMIT + 1 bytes (its row fails as
    too long) with the offset after its end: memory stays bounded, and the next row is the next line."""
    pending = b""
    offset = start
    head: bytes | None = None  # the start of an over-long line being skipped
    for chunk in chunks:
        if not chunk:
            continue
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            offset += len(part) + 1
            if head is not None:
                yield head, offset
                head = None
            else:
                yield part + b"\n", offset
        if len(pending) > LINE_LIMIT:
            if head is None:
                head = pending[: LINE_LIMIT + 1]
            offset += len(pending)
            pending = b""
    if pending or head is not None:
        offset += len(pending)
        yield (head if head is not None else pending), offset


def _decode(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_header(first_line: bytes) -> list[str]:
    """The columns a CSV header names, checked: FileRefused says what is wrong with it."""
    text = _decode(first_line)
    if text is None:
        raise FileRefused("The file is not UTF-8 text")
    text = text.removeprefix(_BOM).strip("\r\n")
    if not text.strip():
        raise FileRefused("The CSV file has no header: its first line must name the columns, e.g. name,email")
    try:
        (names,) = list(csv.reader([text]))
    except (csv.Error, ValueError) as exc:
        raise FileRefused("The CSV header is not valid CSV") from exc
    columns = [name.strip() for name in names]
    problems = []
    known = {name.lower(): name for name in (*IMPORT_COLUMNS, *EXPORT_ONLY_COLUMNS)}
    normalised = []
    for column in columns:
        canonical = known.get(column.lower())
        if canonical is None:
            problems.append({"field": column[:64] or "(empty)", "message": "unknown column"})
        normalised.append(canonical or column)
    for name in REQUIRED_COLUMNS:
        if name not in normalised:
            problems.append({"field": name, "message": "column is required"})
    duplicates = sorted({name for name in normalised if normalised.count(name) > 1})
    problems += [{"field": name, "message": "column appears more than once"} for name in duplicates]
    if problems:
        raise FileRefused(
            f"The CSV header must name the columns {','.join(IMPORT_COLUMNS)} (name and email required)",
            details=problems,
        )
    return normalised


def _csv_fields(header: list[str], values: list[str]) -> dict[str, Any]:
    """A CSV record as the fields of a new user: read-only columns dropped, empty optional cells
    left out (CSV cannot say "absent" otherwise), an export's neutralised cells restored."""
    fields: dict[str, Any] = {}
    for name, value in zip(header, values, strict=True):
        if name in EXPORT_ONLY_COLUMNS:
            continue
        if name not in REQUIRED_COLUMNS and value == "":
            continue
        if value.startswith("'") and value[1:2] in FORMULA_STARTS and value[1:2] != "":
            value = value[1:]
        fields[name] = value
    return fields


class _Lines:
    """The line iterator a csv.reader reads: it notes where each line ends, whether one was not
    UTF-8 and how many bytes the record being read has taken so far."""

    def __init__(self, source: Iterator[tuple[bytes, int]]):
        self._source = source
        self.end = 0
        self.bad_utf8 = False
        self.record_bytes = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line, self.end = next(self._source)
        self.record_bytes += len(line)
        text = _decode(line)
        if text is None:
            self.bad_utf8 = True
            text = line.decode("utf-8", errors="replace")
        return text


def _csv_rows(source: Iterator[tuple[bytes, int]], header: list[str], first_number: int) -> Iterator[Row]:
    feed = _Lines(source)
    reader = csv.reader(feed)
    number = first_number
    while True:
        feed.record_bytes = 0
        feed.bad_utf8 = False
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield Row(number, problem="is not valid CSV (an unclosed quote?)", end=feed.end)
            number += 1
            continue
        if not values or (len(values) == 1 and not values[0].strip() and feed.record_bytes <= LINE_LIMIT):
            continue  # a blank line is no row
        if feed.record_bytes > MAX_ROW_BYTES:
            yield Row(number, problem=f"is longer than {MAX_ROW_BYTES} bytes", end=feed.end)
        elif feed.bad_utf8:
            yield Row(number, problem="is not UTF-8 text", end=feed.end)
        elif len(values) != len(header):
            yield Row(number, problem=f"has {len(values)} fields; the header has {len(header)}", end=feed.end)
        else:
            yield Row(number, fields=_csv_fields(header, values), end=feed.end)
        number += 1


def _jsonl_rows(source: Iterator[tuple[bytes, int]], first_number: int) -> Iterator[Row]:
    number = first_number
    for line, end in source:
        if not line.strip():
            continue
        if len(line) > MAX_ROW_BYTES:
            yield Row(number, problem=f"is longer than {MAX_ROW_BYTES} bytes", end=end)
        else:
            yield _json_row(number, line, end)
        number += 1


def _json_row(number: int, line: bytes, end: int) -> Row:
    text = _decode(line)
    if text is None:
        return Row(number, problem="is not UTF-8 text", end=end)
    try:
        data = json.loads(text.removeprefix(_BOM))
    except (ValueError, RecursionError):
        return Row(number, problem="is not valid JSON", end=end)
    if not isinstance(data, dict):
        return Row(number, problem="is not a JSON object", end=end)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return Row(number, problem="holds a string that is not valid Unicode (a lone surrogate)", end=end)
    return Row(number, fields={k: v for k, v in data.items() if k not in EXPORT_ONLY_COLUMNS}, end=end)


@dataclass(frozen=True)
class Reader:
    """How to read a file from any point: its format and, for CSV, its header's columns and where
    the rows start. A planner that stops half-way resumes from a row's `end` with the same reader."""

    format: str
    header: tuple[str, ...] = ()
    rows_start: int = 0

    def rows(self, chunks: Iterable[bytes], offset: int | None = None, first_number: int = 1) -> Iterator[Row]:
        """The rows of the file from `offset` (a row's `end`; default: the first row), numbered
        from `first_number`. `chunks` is the file's content from that offset."""
        start = self.rows_start if offset is None else offset
        source = lines(chunks, start)
        if self.format == CSV:
            return _csv_rows(source, list(self.header), first_number)
        return _jsonl_rows(source, first_number)


def open_file(fmt: str, chunks: Iterable[bytes]) -> tuple[Reader, Iterator[Row]]:
    """Start reading a file: its reader (FileRefused for a bad header) and its rows."""
    if fmt not in FORMATS:
        raise FileRefused(f"format must be one of {', '.join(FORMATS)}")
    source = lines(chunks)
    if fmt == JSONL:
        return Reader(JSONL), _jsonl_rows(source, 1)
    for first, end in source:
        if first.strip():
            reader = Reader(CSV, tuple(read_header(first)), end)
            return reader, _csv_rows(source, list(reader.header), 1)
    raise FileRefused("The CSV file has no header: its first line must name the columns, e.g. name,email")


def count_rows(fmt: str, chunks: Iterable[bytes]) -> tuple[Reader, int]:
    """Read the whole file once: its reader and its number of rows (FileRefused for a bad header,
    an empty file or more than MAX_ROWS rows)."""
    reader, rows = open_file(fmt, chunks)
    total = 0
    for _ in rows:
        total += 1
        if total > MAX_ROWS:
            raise FileRefused(f"The file has more than {MAX_ROWS:,} rows; split it")
    if total == 0:
        raise FileRefused("The file has no rows")
    return reader, total
