"""The local API Gateway stand-in, fixed where Chalice's differs from the real one in ways that matter.

- Chalice's local authorizer base64-decodes Cognito tokens into claims without checking them
  and, on a malformed token, raises, so the server drops the connection with no response.
  Here Cognito routes pass through untouched and the app verifies the token itself.
- /docs serves Swagger UI for /openapi.json (devstack/docs.py): locally only, never packaged.
- Unknown paths get the 404 JSON that the deployed API's gateway response gives, not a 403.
- The listen backlog is raised from socketserver's 5, so bursts of connections are queued.
- TRACE and QUERY reach the app (a 405 like any undeclared method), not http.server's 501 HTML page.
- Requests run concurrently, as they do across Lambda environments; the app keeps Chalice's
  `current_request` per thread (chalicelib/web/application.py), so they don't mix (aws/chalice#759).
"""

from __future__ import annotations

import functools
from http.server import BaseHTTPRequestHandler
from typing import Any

from chalice.app import Chalice, CognitoUserPoolAuthorizer  # type: ignore[attr-defined]
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LambdaContext,
    LocalGateway,
    LocalGatewayAuthorizer,
    RouteMatcher,
    ThreadedHTTPServer,
)

from chalicelib.config import cors_allow_origins
from chalicelib.web.cors import CorsOrigins
from chalicelib.web.errors import error_json
from devstack import docs

LISTEN_BACKLOG = 256


class AppVerifiesCognitoTokens(LocalGatewayAuthorizer):
    def authorize(self, raw_path: str, lambda_event: Any, lambda_context: LambdaContext) -> Any:
        route = self._route_for_event(lambda_event)
        if route is not None and isinstance(route.authorizer, CognitoUserPoolAuthorizer):
            return lambda_event, lambda_context
        return super().authorize(raw_path, lambda_event, lambda_context)


class AppGateway(LocalGateway):
    def __init__(self, app_object: Chalice, config: Config) -> None:
        super().__init__(app_object, config)
        self._authorizer = AppVerifiesCognitoTokens(app_object)
        self._routes = RouteMatcher(list(app_object.routes))
        self._cors_headers = _cors_headers(app_object)
        self._cors = CorsOrigins(cors_allow_origins())

    def handle_request(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        response = self._respond(method, path, headers, body)
        # Preflights and 404s are answered here, not by the app: they name the request's origin
        # too when it is one of the local stage's allowed origins.
        self._cors.apply(response["headers"], headers)
        return response

    def _respond(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        if docs.serves(method, path):
            return docs.response(path)
        try:
            self._routes.match_route(path)
        except ValueError:
            return {
                "statusCode": 404,
                # What the deployed gateway response sends (infra/limits.json gateway_response_headers).
                "headers": {
                    "Content-Type": "application/json",
                    "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "no-store",
                    **self._cors_headers,
                },
                "multiValueHeaders": {},
                "body": error_json("Not found"),
            }
        return super().handle_request(method, path, headers, body)


def _cors_headers(app_object: Chalice) -> dict[str, str]:
    for methods in app_object.routes.values():
        for entry in methods.values():
            if entry.cors is not None:
                return dict(entry.cors.get_access_control_headers())
    return {}


class AppRequestHandler(ChaliceRequestHandler):
    # Chalice's server writes a response's headers and body separately; with Nagle's algorithm on,
    # a kept-alive connection then waits ~40 ms for the client's delayed ACK on every response.
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config) -> None:
        self.local_gateway = AppGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    # Chalice's handler has no TRACE or QUERY method, so http.server answered them with a 501 HTML
    # page; routed to the app they get the same JSON 405 with an Allow header as any undeclared method.
    do_TRACE = do_QUERY = ChaliceRequestHandler._generic_handle  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """The app logs every request as JSON already."""


class BackloggedServer(ThreadedHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    allow_reuse_address = True


def bind(host: str, port: int) -> BackloggedServer:
    """The listening server, bound before the app exists (so a taken port is refused before the
    emulator starts); it serves nothing until serve_app gives it the app."""
    return BackloggedServer((host, port), BaseHTTPRequestHandler)


def serve_app(server: BackloggedServer, app_object: Chalice, config: Config) -> None:
    """Requests queued in the listen backlog meanwhile are answered once serve_forever runs."""
    server.RequestHandlerClass = functools.partial(AppRequestHandler, app_object=app_object, config=config)
