"""Access-Control-Allow-Origin per request: a deployed stage's one origin as is; from a local
stage's list, the request's own origin when listed, with Vary: Origin."""

from __future__ import annotations

from chalicelib.web.cors import ALLOW_ORIGIN, CorsOrigins

LOCAL = CorsOrigins(("http://localhost:3000", "http://127.0.0.1:3000"))
DEPLOYED = CorsOrigins(("https://app.example.com",))


def answered(cors: CorsOrigins, origin: str | None, headers: dict[str, str] | None = None) -> dict[str, str]:
    response = {ALLOW_ORIGIN: cors.allowed[0], "Content-Type": "application/json", **(headers or {})}
    cors.apply(response, {} if origin is None else {"origin": origin})
    return response


def test_each_allowed_local_origin_is_answered_with_itself() -> None:
    for origin in LOCAL.allowed:
        response = answered(LOCAL, origin)
        assert response[ALLOW_ORIGIN] == origin
        assert response["Vary"] == "Origin"


def test_another_origin_gets_no_allow_origin_so_the_browser_refuses_it() -> None:
    for origin in ("http://evil.example", "http://localhost:3001", None):
        response = answered(LOCAL, origin)
        assert ALLOW_ORIGIN not in response
        assert response["Vary"] == "Origin"  # the answer depends on Origin even when it names none


def test_the_request_header_is_found_whatever_its_case_and_vary_is_merged_once() -> None:
    response = {"access-control-allow-origin": "http://localhost:3000", "vary": "Accept-Encoding"}
    LOCAL.apply(response, {"Origin": "http://127.0.0.1:3000"})
    LOCAL.apply(response, {"Origin": "http://127.0.0.1:3000"})
    assert response == {ALLOW_ORIGIN: "http://127.0.0.1:3000", "vary": "Accept-Encoding, Origin"}


def test_a_deployed_stage_keeps_its_one_origin_whatever_the_request_says() -> None:
    for origin in ("https://app.example.com", "https://evil.example", None):
        assert answered(DEPLOYED, origin) == {
            ALLOW_ORIGIN: "https://app.example.com",
            "Content-Type": "application/json",
        }
    assert not DEPLOYED.per_request and LOCAL.per_request
