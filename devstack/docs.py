"""Swagger UI for /openapi.json at /docs: the local gateway's, never the app's (so the Lambda
package carries none of it), from the assets the pinned swagger-ui-py package ships (no CDN: it
works offline). The Authorize button takes an ID token: the document's security scheme is HTTP
bearer, so Swagger UI sends `Authorization: Bearer <token>`."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

PATH = "/docs"
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Our own start-up script rather than an inline one, so the page's policy allows no inline script.
INIT_JS = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  displayRequestDuration: true,
});
"""
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>User Management API (local)</title>
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""
# Scripts and calls from this origin only; Swagger UI sets inline styles and shows data: images.
POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"


@cache
def _static_dir() -> Path:
    # Located without importing the package: its __init__ loads web framework adapters we never use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make run`, which installs requirements-dev.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def serves(method: str, path: str) -> bool:
    route = path.split("?", 1)[0]
    return method in {"GET", "HEAD"} and (route in {PATH, PATH + "/"} or route.startswith(PATH + "/"))


def response(path: str) -> dict[str, Any]:
    """The page or one of its assets, as the local gateway's response; 404 for anything else."""
    name = path.split("?", 1)[0].removeprefix(PATH).strip("/")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    body: str | bytes
    if name == "":
        body, content_type = PAGE, "text/html; charset=utf-8"
        headers["Content-Security-Policy"] = POLICY
    elif name == "init.js":
        body, content_type = INIT_JS, "text/javascript; charset=utf-8"
    elif name in ASSETS:
        body, content_type = (_static_dir() / name).read_bytes(), ASSETS[name]
    else:
        body, content_type = '{"error": "Not found"}', "application/json"
        return {
            "statusCode": 404,
            "headers": {**headers, "Content-Type": content_type},
            "multiValueHeaders": {},
            "body": body,
        }
    return {
        "statusCode": 200,
        "headers": {**headers, "Content-Type": content_type},
        "multiValueHeaders": {},
        "body": body,
    }
