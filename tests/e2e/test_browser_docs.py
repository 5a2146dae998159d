"""Swagger UI on `make run`'s /docs, in headless Chromium: every operation of /openapi.json is
listed, the page loads nothing from outside the stack (it works offline), and the Authorize button
takes an ID token that "Try it out" then sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import Stack
from tests.support import routes
from tests.support.browser import Page, browser

TIMEOUT = 15
LISTED = """() => [...document.querySelectorAll(".opblock")].map((block) => [
  block.querySelector(".opblock-summary-method").textContent,
  block.querySelector(".opblock-summary-path").getAttribute("data-path"),
])"""
# Authorize with the token, then run one operation with "Try it out": what a developer clicks.
AUTHORIZE_AND_TRY = """async (token, operationId) => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const until = async (find) => {
    for (let i = 0; i < 200; i++) {
      const found = find();
      if (found) return found;
      await sleep(50);
    }
    throw new Error("never appeared: " + find);
  };
  // React reads the value through its own setter: set it as typing would.
  const type = (input, value) => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(input, value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };
  document.querySelector(".btn.authorize").click();
  const dialog = await until(() => document.querySelector(".dialog-ux .modal-ux"));
  const scheme = dialog.innerText;
  type(await until(() => dialog.querySelector("input")), token);
  dialog.querySelector(".auth-btn-wrapper .authorize").click();
  await until(() => dialog.querySelector(".auth-btn-wrapper .btn-done"));
  dialog.querySelector(".auth-btn-wrapper .btn-done").click();
  const operation = await until(() => document.getElementById("operations-default-" + operationId));
  operation.querySelector(".opblock-summary-control").click();
  (await until(() => operation.querySelector(".try-out__btn"))).click();
  (await until(() => operation.querySelector(".execute"))).click();
  const status = await until(() => operation.querySelector(".live-responses-table .response .response-col_status"));
  const body = operation.querySelector(".live-responses-table .response pre");
  return {
    scheme,
    locked: document.querySelector(".btn.authorize").classList.contains("locked"),
    status: status.innerText.trim(),
    body: body ? body.innerText : "",
  };
}"""


@pytest.fixture(scope="module")
def docs(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    with browser(tmp_path_factory.mktemp("chromium")) as page:
        page.goto(stack.url + "/docs")
        page.wait_for("document.querySelectorAll('.opblock').length > 0")
        yield page


def test_swagger_ui_lists_every_operation_of_the_document(stack: Stack, docs: Page) -> None:
    paths = requests.get(stack.url + "/openapi.json", timeout=TIMEOUT).json()["paths"]
    documented = sorted((method.upper(), path) for path, item in paths.items() for method in item)
    assert documented  # a document with no operation would make this test vacuous
    docs.wait_for(f"document.querySelectorAll('.opblock').length >= {len(documented)}")
    assert sorted(tuple(listed) for listed in docs.call(LISTED)) == documented


def test_swagger_ui_loads_only_from_the_stack_and_without_errors(stack: Stack, docs: Page) -> None:
    fetched = [url for url in docs.requested_urls() if not url.startswith("data:")]
    assert f"{stack.url}/docs/swagger-ui-bundle.js" in fetched and f"{stack.url}/openapi.json" in fetched
    assert [url for url in fetched if not url.startswith(stack.url + "/")] == []  # no CDN: works offline
    assert docs.errors() == []


def test_the_authorize_button_takes_an_id_token_that_try_it_out_sends(stack: Stack, docs: Page) -> None:
    result = docs.call(AUTHORIZE_AND_TRY, stack.token(), "getProfile")
    assert "cognito" in result["scheme"] and "Bearer" in result["scheme"]
    assert result["locked"] is True
    assert result["status"] == "200", result
    assert stack.info["admin_username"] in result["body"]


def test_the_docs_are_the_local_gateways_not_the_apps(stack: Stack) -> None:
    page = requests.get(stack.url + "/docs", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'self': no inline script
    assert requests.get(stack.url + "/docs/../app.py", timeout=TIMEOUT).status_code == 404
    assert requests.get(stack.url + "/docs/index.html", timeout=TIMEOUT).status_code == 404
    assert not [path for path, _ in routes.declared() if path.startswith("/docs")]
