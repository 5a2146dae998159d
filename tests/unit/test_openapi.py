"""The OpenAPI document states the same bounds and patterns the server enforces."""

from __future__ import annotations

import re

import pytest

from chalicelib import models
from chalicelib.errors import ValidationError
from chalicelib.openapi import document

SCHEMAS = document()["components"]["schemas"]
NAME_SAMPLES = ["Ada", "  Ada  ", "Zoë", "x" * 100, "", "   ", "a\nb", "a\x01b", "a\x7fb", "a\x9bb", "\x9b", "a\u2028b"]
PHONE_SAMPLES = ["+14155550123", "+1", "+12", "14155550123", "+0123", "+1234567890123456", "+1415555012a"]


def server_accepts(**body: str) -> bool:
    try:
        models.parse_new_user({"name": "Ada", "email": "ada@example.com", **body})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", NAME_SAMPLES)
def test_documented_name_pattern_matches_the_server(name: str) -> None:
    schema = SCHEMAS["NewUser"]["properties"]["name"]
    documented = bool(re.search(schema["pattern"], name)) and len(name) <= schema["maxLength"]
    assert documented == server_accepts(name=name)


@pytest.mark.parametrize("phone", PHONE_SAMPLES)
def test_documented_phone_pattern_matches_the_server(phone: str) -> None:
    documented = bool(re.search(SCHEMAS["NewUser"]["properties"]["phone"]["pattern"], phone))
    assert documented == server_accepts(phone=phone)


def test_documented_page_bounds_are_the_parser_bounds() -> None:
    (limit,) = [p for p in document()["paths"]["/users"]["get"]["parameters"] if p["name"] == "limit"]
    schema = limit["schema"]
    assert models.parse_limit(None) == schema["default"]
    assert models.parse_limit(str(schema["maximum"])) == schema["maximum"]
    with pytest.raises(ValidationError):
        models.parse_limit(str(schema["maximum"] + 1))
