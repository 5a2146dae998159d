"""CORS as a browser enforces it: a page served from an allowed local origin calls the API with a
token in headless Chromium (preflights, POST, PUT with If-Match from the ETag header, a stale
If-Match's 412, the avatar through the presigned form to the local S3 and back), and a page from
an origin not allowed is refused by the browser.

The stack allows two origins on a port of this test's own page server, the first as
`localhost`, so a page on `127.0.0.1` is only served if the API answers each listed origin with
itself (Chalice's own CORS header names the first).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from devstack.process import Stack, running_stack
from tests.support.browser import Page, browser
from tests.support.presigned import tiny_png

PAGE = b"<!doctype html><html><head><meta charset='utf-8'><title>front end</title></head><body>app</body></html>"

# What a front end does with the API, step by step; each step's status and what the page could read.
FRONT_END = """async (api, token, email, png) => {
  const auth = { Authorization: "Bearer " + token };
  const json = { ...auth, "Content-Type": "application/json" };
  const steps = {};
  let response = await fetch(api + "/users", {
    method: "POST",
    headers: { ...json, "Idempotency-Key": crypto.randomUUID() },
    body: JSON.stringify({ name: "Browser User", email }),
  });
  const created = await response.json();
  steps.create = { status: response.status, etag: response.headers.get("ETag"),
                   location: response.headers.get("Location"), name: created.user.name };
  const id = created.user.userId;
  response = await fetch(api + "/users/" + id, {
    method: "PUT", headers: { ...json, "If-Match": steps.create.etag }, body: JSON.stringify({ name: "Renamed" }),
  });
  const updated = await response.json();
  steps.update = { status: response.status, etag: response.headers.get("ETag"), name: updated.user.name };
  response = await fetch(api + "/users/" + id, {
    method: "PUT", headers: { ...json, "If-Match": steps.create.etag }, body: JSON.stringify({ name: "Stale" }),
  });
  steps.stale = { status: response.status, error: (await response.json()).error };
  response = await fetch(api + "/users/" + id + "/avatar", {
    method: "POST", headers: json, body: JSON.stringify({ contentType: "image/png" }),
  });
  const form = await response.json();
  steps.form = { status: response.status };
  const upload = new FormData();
  for (const [name, value] of Object.entries(form.fields)) upload.append(name, value);
  upload.append("file", new Blob([new Uint8Array(png)], { type: "image/png" }), "avatar.png");
  response = await fetch(form.uploadUrl, { method: "POST", body: upload });
  steps.upload = { status: response.status };
  response = await fetch(api + "/users/" + id + "/avatar", { headers: auth });
  const download = await response.json();
  response = await fetch(download.downloadUrl);
  steps.download = { status: response.status, bytes: Array.from(new Uint8Array(await response.arrayBuffer())) };
  return steps;
}"""

# Each call's outcome as the page sees it: a status it may read, or the browser's refusal.
ATTEMPTS = """async (api, token, name) => {
  const attempt = async (path, init) => {
    try {
      const response = await fetch(api + path, init);
      return { status: response.status };
    } catch (error) {
      return { refused: String(error) };
    }
  };
  return {
    hello: await attempt("/hello", {}),
    list: await attempt("/users", { headers: { Authorization: "Bearer " + token } }),
    create: await attempt("/users", {
      method: "POST",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ name, email: crypto.randomUUID() + "@example.com" }),
    }),
  };
}"""


class FrontEnd(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet."""


@dataclass
class Origins:
    port: int  # the page server allowed as http://localhost:<port> and http://127.0.0.1:<port>
    other_port: int  # a page server on an origin the API does not allow


@pytest.fixture(scope="module")
def origins() -> Iterator[Origins]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), FrontEnd) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Origins(*(server.server_address[1] for server in servers))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def cors_stack(origins: Origins, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    allowed = f"http://localhost:{origins.port},http://127.0.0.1:{origins.port}"
    with running_stack(tmp_path_factory.mktemp("cors-stack"), {"CORS_ALLOW_ORIGIN": allowed}) as stack:
        yield stack


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    with browser(tmp_path_factory.mktemp("chromium")) as opened:
        yield opened


def preflights(page: Page, url_prefix: str) -> list[str]:
    """The methods the browser asked permission for before calling under `url_prefix`."""
    return [
        event["params"]["request"]["headers"].get("Access-Control-Request-Method", "")
        for event in page.events
        if event["method"] == "Network.requestWillBeSent"
        and event["params"]["request"]["method"] == "OPTIONS"
        and event["params"]["request"]["url"].startswith(url_prefix)
    ]


def test_a_page_from_an_allowed_origin_works_with_the_api_and_the_avatar_bucket(
    cors_stack: Stack, origins: Origins, page: Page
) -> None:
    page.goto(f"http://127.0.0.1:{origins.port}/")
    png = tiny_png()
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    steps = page.call(FRONT_END, cors_stack.url, cors_stack.token(), email, list(png))
    create, update, stale = steps["create"], steps["update"], steps["stale"]
    assert create["status"] == 201 and create["name"] == "Browser User"
    # Exposed headers the page may read: the ETag for If-Match, the new user's Location.
    assert create["etag"] and create["location"].startswith("/users/")
    assert update == {"status": 200, "etag": update["etag"], "name": "Renamed"} and update["etag"] != create["etag"]
    assert stale["status"] == 412 and stale["error"]
    assert steps["form"]["status"] == 200
    assert steps["upload"]["status"] == 204  # straight to the local S3, cross-origin
    assert steps["download"] == {"status": 200, "bytes": list(png)}
    # The browser asked first for the calls a plain form could not make.
    page.read_events_until(lambda: {"POST", "PUT"} <= set(preflights(page, cors_stack.url)))
    assert {"POST", "PUT"} <= set(preflights(page, cors_stack.url))


def test_a_page_from_the_other_allowed_origin_works_too(cors_stack: Stack, origins: Origins, page: Page) -> None:
    page.goto(f"http://localhost:{origins.port}/")
    assert page.evaluate("location.origin") == f"http://localhost:{origins.port}"
    outcome = page.call(ATTEMPTS, cors_stack.url, cors_stack.token(), "Friend")
    assert outcome["hello"] == {"status": 200} and outcome["list"] == {"status": 200}
    assert outcome["create"] == {"status": 201}


def test_a_page_from_an_origin_not_allowed_is_refused_by_the_browser(
    cors_stack: Stack, origins: Origins, page: Page
) -> None:
    page.goto(f"http://127.0.0.1:{origins.other_port}/")
    name = f"Mallory {uuid.uuid4().hex[:8]}"
    outcome = page.call(ATTEMPTS, cors_stack.url, cors_stack.token(), name)
    for call in ("hello", "list", "create"):
        assert "Failed to fetch" in outcome[call].get("refused", ""), (call, outcome)
    # The calls with a token were stopped at their preflight (so the create never reached the app);
    # the plain GET /hello was sent, but its answer names no origin, so the page may not read it.
    page.read_events_until(lambda: len(preflights(page, cors_stack.url)) >= 2)
    assert sorted(preflights(page, cors_stack.url)) == ["GET", "POST"]
    listed = requests.get(
        cors_stack.url + "/users?limit=100", headers={"Authorization": cors_stack.token()}, timeout=15
    ).json()
    assert [user for user in listed["users"] if user["name"] == name] == []
