"""Import files read as a stream: headers, rows, row problems, and resuming from any row's end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import bulk_files
from chalicelib.domain.bulk_files import CSV, JSONL, FileRefused, Reader, count_rows, lines, open_file, read_header
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import email_key
from chalicelib.web.inputs import parse_new_user
from devstack.sample_users import csv_text

PROJECT_DIR = Path(__file__).resolve().parents[2]


def read(fmt: str, data: bytes, chunk: int = 5) -> list[bulk_files.Row]:
    _, rows = open_file(fmt, [data[i : i + chunk] for i in range(0, len(data), chunk)])
    return list(rows)


def test_the_header_names_columns_in_any_order_and_case_and_a_bom_is_no_column() -> None:
    assert read_header("\ufeffEmail, NAME ,role\r\n".encode()) == ["email", "name", "role"]
    assert read_header(b"userId,name,email,createdAt\n") == ["userId", "name", "email", "createdAt"]


@pytest.mark.parametrize(
    ("header", "problems"),
    [
        (b"name\n", [{"field": "email", "message": "column is required"}]),
        (b"name,email,age\n", [{"field": "age", "message": "unknown column"}]),
        (b"name,email,Email\n", [{"field": "email", "message": "column appears more than once"}]),
        (b"Ada,ada@example.com\n", None),
    ],
)
def test_a_bad_header_refuses_the_file_saying_why(header: bytes, problems: list[dict[str, str]] | None) -> None:
    with pytest.raises(FileRefused) as refused:
        read_header(header)
    assert isinstance(refused.value, ValidationError)
    if problems is not None:
        assert refused.value.details == problems
    else:
        assert {"field": "name", "message": "column is required"} in refused.value.details


def test_csv_rows_are_numbered_from_one_after_the_header_and_blank_lines_are_no_rows() -> None:
    data = b'name,email,phone,role\r\nAda,ada@example.com,,\r\n\r\n"Lin, ""L""",lin@example.com,+14155550123,admin\n'
    rows = read(CSV, data)
    assert [(r.number, r.fields) for r in rows] == [
        (1, {"name": "Ada", "email": "ada@example.com"}),  # empty optional cells are absent
        (2, {"name": 'Lin, "L"', "email": "lin@example.com", "phone": "+14155550123", "role": "admin"}),
    ]
    assert rows[-1].end == len(data)


def test_csv_row_problems_stay_with_their_row() -> None:
    long_name = "x" * (bulk_files.MAX_ROW_BYTES + 10)
    data = (
        b"name,email\n"
        b"Ada,ada@example.com,extra\n" + f"{long_name},long@example.com\n".encode() + b"Bad \xff,bad@example.com\n"
        b"Ok,ok@example.com\n"
    )
    rows = read(CSV, data)
    assert [(r.number, r.problem) for r in rows] == [
        (1, "has 3 fields; the header has 2"),
        (2, f"is longer than {bulk_files.MAX_ROW_BYTES} bytes"),
        (3, "is not UTF-8 text"),
        (4, None),
    ]


def test_an_exports_columns_are_ignored_and_its_quoted_formulas_restored() -> None:
    data = b"userId,name,email,enabled,version\nu-1,'=SUM(A1),'@x@example.com,false,3\n"
    (row,) = read(CSV, data)
    assert row.fields == {"name": "=SUM(A1)", "email": "@x@example.com"}


def test_json_lines_rows() -> None:
    data = b'{"name": "Ada", "email": "a@example.com", "userId": "x"}\n\nnot json\n[1]\n{"name": 1}'
    rows = read(JSONL, data)
    assert [(r.number, r.fields, r.problem) for r in rows] == [
        (1, {"name": "Ada", "email": "a@example.com"}, None),
        (2, None, "is not valid JSON"),
        (3, None, "is not a JSON object"),
        (4, {"name": 1}, None),
    ]


def test_a_line_far_too_long_is_one_failed_row_and_never_held_whole() -> None:
    huge = b"x" * (bulk_files.LINE_LIMIT * 10)
    out = list(lines([b"a\n", huge[:1000], huge[1000:], b"\nb\n"]))
    assert [len(line) for line, _ in out] == [2, bulk_files.LINE_LIMIT + 1, 2]
    assert [end for _, end in out] == [2, 2 + len(huge) + 1, 2 + len(huge) + 3]


def test_count_rows_refuses_an_empty_or_too_long_file(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileRefused, match="no rows"):
        count_rows(CSV, [b"name,email\n\n"])
    with pytest.raises(FileRefused, match="no header"):
        count_rows(CSV, [b"\n\n"])
    monkeypatch.setattr(bulk_files, "MAX_ROWS", 2)
    with pytest.raises(FileRefused, match="more than 2 rows"):
        count_rows(JSONL, [b"{}\n{}\n{}\n"])
    reader, total = count_rows(CSV, [b"name,email\na,b\nc,d\n"])
    assert total == 2 and reader.header == ("name", "email") and reader.rows_start == len(b"name,email\n")


_cells = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.tuples(_cells, _cells), min_size=1, max_size=12),
    chunk=st.integers(min_value=1, max_value=40),
    fmt=st.sampled_from([CSV, JSONL]),
)
def test_reading_from_any_rows_end_gives_the_rest_of_the_rows_as_reading_on_does(
    values: list[tuple[str, str]], chunk: int, fmt: str
) -> None:
    """What the planner relies on to resume: the rows after a row's `end` are the same rows, with the
    same numbers, whatever the chunking and whatever the quoting and newlines inside the cells."""
    import csv
    import io

    if fmt == CSV:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["name", "email"])
        writer.writerows(values)
        data = out.getvalue().encode()
    else:
        data = "".join(json.dumps({"name": a, "email": b}) + "\n" for a, b in values).encode()
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    reader, rows = open_file(fmt, pieces)
    everything = list(rows)
    for index, row in enumerate(everything):
        rest = data[row.end :]
        resumed = list(Reader(fmt, reader.header, reader.rows_start).rows([rest], row.end, row.number + 1))
        assert resumed == everything[index + 1 :]


def test_the_sample_file_is_the_generators_and_imports_cleanly() -> None:
    """docs/users-sample.csv: 1,000 rows, as `python -m devstack sample-users` writes them, every row
    valid by POST /users's rules and no two with one email."""
    data = (PROJECT_DIR / "docs" / "users-sample.csv").read_bytes()
    assert data.decode() == csv_text(1000)
    rows = read(CSV, data, chunk=4096)
    assert len(rows) == 1000 and all(row.problem is None for row in rows)
    emails = [email_key(parse_new_user(row.fields or {}).email) for row in rows]
    assert len(set(emails)) == 1000
