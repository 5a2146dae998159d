"""Request overhead: the first request after import, and what a warm request costs in this API's
full pipeline, against a bare Chalice route and a hand-written `lambda_handler`.

Everything is measured in one fresh interpreter (`python -m bench.request_overhead --child`) in
AWS mode, fed API Gateway REST events as Lambda is. The child sends its stdout (JSON log lines,
metric lines) to /dev/null at the file-descriptor level: formatting them is part of the cost,
a terminal is not. It prints its result as one JSON line at the end.

- First request: `import app`, then GET /users/{id} with the real DynamoDB adapter (boto3
  import, client creation, signing, one round trip) against a DynamoDB stub this process serves
  on localhost (here, not in the child, so the stub's imports and thread do not run there),
  then a POST /users with the client already made.
- Warm: the service on an in-memory repository; GET as the owner, POST as an admin with a new
  email each time; the three implementations interleaved within each repeat; medians of repeats.

Sets in context.measured: warm_get_us, warm_post_us (this API, µs per request), bare_get_us,
bare_post_us, handwritten_get_us, handwritten_post_us, first_get_ms, first_get_client_ms (of it,
boto3 import and client creation), first_post_ms, import_app_ms.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import lambda_events

if TYPE_CHECKING:
    from bench.context import Context
    from bench.report import Figure

SECTION = "Request overhead"
TARGET_RATIO = 3.0
ITERATIONS, QUICK_ITERATIONS = 3000, 100
REPEATS, QUICK_REPEATS = 5, 3
IMPLEMENTATIONS = ("ours", "bare_chalice", "handwritten")
OPERATIONS = ("get", "post")
LABELS = {"ours": "this API", "bare_chalice": "bare Chalice route", "handwritten": "hand-written lambda_handler"}
ROUTES = {"get": "GET /users/{id}", "post": "POST /users"}
PIPELINE_EXTRAS = (
    "per request the pipeline also does what the bare routes do not: identity from the authorizer's "
    "claims, the access check, id and body validation, ETag (and Location on create), CORS and "
    "security headers, Cache-Control, the correlation id, and one JSON line that is the request log and its EMF metrics"
)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


# --- the implementations compared -------------------------------------------------------------


def public(user_id: str, name: str, email: str, phone: str | None, now: str) -> dict[str, Any]:
    """A user as the API shows it (the bare routes store exactly this)."""
    return {"userId": user_id, "name": name, "email": email, "phone": phone, "createdAt": now, "updatedAt": now}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def bare_chalice_app(users: dict[str, dict[str, Any]]) -> Handler:
    """The same two routes in plain Chalice: no authorizer declared (API Gateway runs a Cognito
    authorizer, so declaring one changes nothing at run time), no CORS, no middleware."""
    from chalice import Chalice, Response  # type: ignore[attr-defined]

    app = Chalice(app_name="bare")

    @app.route("/users/{userId}", methods=["GET"])
    def get_user(userId: str) -> Any:  # noqa: N803 - Chalice passes the path parameter by name
        return users[userId]

    @app.route("/users", methods=["POST"])
    def create_user() -> Any:
        request = app.current_request
        assert request is not None  # set while a view runs
        body = request.json_body
        user = public(str(uuid.uuid4()), body["name"], body["email"], body.get("phone"), _now())
        users[user["userId"]] = user
        return Response(body=user, status_code=201)

    handler: Handler = app
    return handler


def handwritten_handler(users: dict[str, dict[str, Any]]) -> Handler:
    """A `lambda_handler` with an if/elif router: about the least a Python function can do."""
    json_headers = {"Content-Type": "application/json"}

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        method, resource = event["httpMethod"], event["resource"]
        if method == "GET" and resource == "/users/{userId}":
            user = users.get(event["pathParameters"]["userId"])
            if user is None:
                return {"statusCode": 404, "headers": json_headers, "body": '{"error":"User not found"}'}
            return {"statusCode": 200, "headers": json_headers, "body": json.dumps(user)}
        elif method == "POST" and resource == "/users":
            body = json.loads(event["body"] or "{}")
            user = public(str(uuid.uuid4()), body["name"], body["email"], body.get("phone"), _now())
            users[user["userId"]] = user
            return {"statusCode": 201, "headers": json_headers, "body": json.dumps(user)}
        return {"statusCode": 404, "headers": json_headers, "body": '{"error":"Not found"}'}

    return lambda_handler


def seeded_users() -> dict[str, dict[str, Any]]:
    """The bare routes' store, holding the owner the GET events ask for."""
    user = public(lambda_events.OWNER_SUB, "Owner", "owner@example.com", None, "2024-01-01T00:00:00.000Z")
    return {user["userId"]: user}


def use_in_memory_service() -> None:
    """Wire the app's service to an in-memory repository holding the owner."""
    from chalicelib import bootstrap
    from chalicelib.cursor import CursorCodec
    from chalicelib.service import UserService
    from chalicelib.standing import StandingCheck

    # A dev tool may borrow the tests' fake: it follows the DynamoDB adapter's semantics, and
    # what it adds per call (a call counter) is well under a microsecond.
    from tests.unit.fakes import FakeIdentityProvider, FakeUserRepository, make_user

    repository = FakeUserRepository()
    repository.seed(make_user(user_id=lambda_events.OWNER_SUB, name="Owner", email="owner@example.com"))
    service = UserService(repository, CursorCodec(b"bench-cursor-secret-0123456789ab"), FakeIdentityProvider())
    bootstrap.override(service=service, standing=StandingCheck(repository.standing))


def post_events(count: int, prefix: str) -> list[dict[str, Any]]:
    """POST /users events, each with a new email (the body is all that differs)."""
    template = lambda_events.post_user_event("template@example.com")
    events = []
    for index in range(count):
        body = {"name": "Bench User", "email": f"{prefix}-{index}@example.com", "phone": "+14155550123"}
        events.append({**template, "body": json.dumps(body, separators=(",", ":"))})
    return events


def expect(response: dict[str, Any], status: int, what: str) -> None:
    """Timing an error response would measure the wrong thing: stop instead."""
    if response.get("statusCode") != status:
        raise RuntimeError(f"{what}: expected {status}, got {response.get('statusCode')}: {response.get('body')}")


# --- the child ----------------------------------------------------------------------------------


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null, so that handlers holding sys.stdout write there too."""
    sys.stdout.flush()
    real = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)


def _per_request_us(handler: Handler, events: list[dict[str, Any]], context: Any) -> float:
    started = time.perf_counter()
    for event in events:
        handler(event, context)
    return (time.perf_counter() - started) / len(events) * 1e6


def _first_requests(context: Any) -> dict[str, float]:
    """Import the app and serve its first requests with the real adapters (AWS_ENDPOINT_URL: the stub)."""
    started = time.perf_counter()
    import app

    import_ms = (time.perf_counter() - started) * 1000
    from chalicelib import aws

    creating: list[float] = []
    create_client = aws.client

    def timed_client(service: str) -> Any:
        began = time.perf_counter()
        try:
            return create_client(service)
        finally:
            creating.append(time.perf_counter() - began)

    setattr(aws, "client", timed_client)  # noqa: B010 - a module global the adapters look up on each call
    try:
        started = time.perf_counter()
        response = app.app(lambda_events.get_user_event(), context)
        first_get_ms = (time.perf_counter() - started) * 1000
        client_ms = sum(creating) * 1000
    finally:
        setattr(aws, "client", create_client)  # noqa: B010
    expect(response, 200, "first GET /users/{id}")
    started = time.perf_counter()
    response = app.app(lambda_events.post_user_event("first-post@example.com"), context)
    first_post_ms = (time.perf_counter() - started) * 1000
    expect(response, 201, "first POST /users")
    return {
        "import_app_ms": import_ms,
        "first_get_ms": first_get_ms,
        "first_get_client_ms": client_ms,
        "first_post_ms": first_post_ms,
    }


def handlers() -> dict[str, Handler]:
    """The three implementations, each holding the owner; the app wired to memory."""
    import app

    use_in_memory_service()
    ours: Handler = app.app
    return {
        "ours": ours,
        "bare_chalice": bare_chalice_app(seeded_users()),
        "handwritten": handwritten_handler(seeded_users()),
    }


def check_handlers(implementations: dict[str, Handler], context: Any) -> None:
    """Every implementation answers the benchmark's events with success, before any timing."""
    for name, handler in implementations.items():
        expect(handler(lambda_events.get_user_event(), context), 200, f"{name} GET /users/{{id}}")
        expect(handler(post_events(1, f"check-{name}")[0], context), 201, f"{name} POST /users")


def warm(iterations: int, repeats: int, context: Any) -> dict[str, dict[str, list[float]]]:
    """µs per request of each implementation and operation, one sample per repeat."""
    implementations = handlers()
    check_handlers(implementations, context)
    get_events = [lambda_events.get_user_event()] * iterations
    samples: dict[str, dict[str, list[float]]] = {name: {op: [] for op in OPERATIONS} for name in implementations}
    warmup = max(iterations // 10, 20)
    for name, handler in implementations.items():
        _per_request_us(handler, get_events[:warmup], context)
        _per_request_us(handler, post_events(warmup, f"warmup-{name}"), context)
    for repeat in range(repeats):
        # Rotated, so no implementation always runs right after the same other one.
        shift = repeat % len(implementations)
        order = list(implementations)[shift:] + list(implementations)[:shift]
        for name in order:
            samples[name]["get"].append(_per_request_us(implementations[name], get_events, context))
        for name in order:
            events = post_events(iterations, f"{name}-{repeat}")
            samples[name]["post"].append(_per_request_us(implementations[name], events, context))
    return samples


def child(iterations: int, repeats: int) -> dict[str, Any]:
    import statistics

    context = lambda_events.LambdaContext()
    first = _first_requests(context)
    samples = warm(iterations, repeats, context)
    medians = {name: {op: statistics.median(values) for op, values in ops.items()} for name, ops in samples.items()}
    return {**first, "warm_us": medians, "samples_us": samples, "iterations": iterations, "repeats": repeats}


# --- the parent ---------------------------------------------------------------------------------


def stub_answer(target: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the stub answers to an `X-Amz-Target`: for DynamoDB GetItem the owner (when the key
    names the owner; the admin caller has no record), for Cognito AdminCreateUser a new sign-in,
    {} otherwise."""
    operation = target.rpartition(".")[2]
    if operation == "AdminCreateUser":
        sub = str(uuid.uuid4())
        return {"User": {"Username": sub, "Attributes": [{"Name": "sub", "Value": sub}], "Enabled": True}}
    if operation != "GetItem":
        return {}
    key = ((request or {}).get("Key") or {}).get("userId", {}).get("S")
    if key is not None and key != lambda_events.OWNER_SUB:
        return {}
    from chalicelib.dynamodb import user_to_item
    from chalicelib.models import User

    now = "2024-01-01T00:00:00.000Z"
    owner = User(
        user_id=lambda_events.OWNER_SUB,
        name="Owner",
        email="owner@example.com",
        created_at=now,
        updated_at=now,
        version=1,
    )
    return {"Item": user_to_item(owner)}


@contextmanager
def dynamodb_stub() -> Iterator[str]:
    """A DynamoDB JSON endpoint on 127.0.0.1, served by a thread of this process; yields its URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as DynamoDB's endpoint
        # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
        # the client's delayed ACK (40 ms on Linux), which no real endpoint makes a client wait.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            body = json.dumps(stub_answer(self.headers.get("X-Amz-Target", ""), request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "bench")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Result:
    import_app_ms: float
    first_get_ms: float
    first_get_client_ms: float
    first_post_ms: float
    warm_us: dict[str, dict[str, float]]  # implementation -> operation -> median µs per request
    iterations: int
    repeats: int

    def ratio(self, operation: str, against: str) -> float:
        return self.warm_us["ours"][operation] / self.warm_us[against][operation]


def parse_result(stdout: str) -> Result:
    """The child's result: the JSON object on its last non-empty line of output."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("the request overhead child printed nothing")
    data = json.loads(lines[-1])
    warm_us = {name: {op: float(data["warm_us"][name][op]) for op in OPERATIONS} for name in IMPLEMENTATIONS}
    return Result(
        import_app_ms=float(data["import_app_ms"]),
        first_get_ms=float(data["first_get_ms"]),
        first_get_client_ms=float(data["first_get_client_ms"]),
        first_post_ms=float(data["first_post_ms"]),
        warm_us=warm_us,
        iterations=int(data["iterations"]),
        repeats=int(data["repeats"]),
    )


def figures(result: Result) -> list[Figure]:
    from bench.report import Figure

    shown: list[Figure] = [
        Figure(
            SECTION,
            "first GET /users/{id} after import",
            result.first_get_ms,
            "ms",
            note=(
                f"real DynamoDB adapter against a localhost stub: boto3 import and client creation "
                f"{result.first_get_client_ms:.1f} ms, then signing, one round trip and the pipeline; "
                f"`import app` before it took {result.import_app_ms:.1f} ms (not included)"
            ),
        ),
        Figure(SECTION, "first GET: of it, boto3 import + DynamoDB client", result.first_get_client_ms, "ms"),
        Figure(SECTION, "first POST /users (client made)", result.first_post_ms, "ms"),
    ]
    runs = f"median of {result.repeats} repeats of {result.iterations} requests, implementations interleaved"
    for op in OPERATIONS:
        route = ROUTES[op]
        for name in IMPLEMENTATIONS:
            note = runs if name == "ours" else ""
            shown.append(Figure(SECTION, f"{route}: {LABELS[name]}", result.warm_us[name][op], "µs", note=note))
        ratio = result.ratio(op, "bare_chalice")
        shown.append(
            Figure(
                SECTION,
                f"{route}: this API ÷ bare Chalice",
                ratio,
                "x",
                target=f"≤ {TARGET_RATIO:.0f}x",
                passed=ratio <= TARGET_RATIO,
                note=PIPELINE_EXTRAS,
            )
        )
        shown.append(Figure(SECTION, f"{route}: this API ÷ hand-written", result.ratio(op, "handwritten"), "x"))
    return shown


def run(context: Context) -> list[Figure]:
    import subprocess

    from bench.context import PROJECT_DIR

    iterations = QUICK_ITERATIONS if context.quick else ITERATIONS
    repeats = QUICK_REPEATS if context.quick else REPEATS
    command = [context.python, "-m", "bench.request_overhead", "--child", str(iterations), str(repeats)]
    with dynamodb_stub() as url:
        env = {**lambda_events.lambda_environment(), "AWS_ENDPOINT_URL": url}
        completed = subprocess.run(  # noqa: S603 - our interpreter, our module
            command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900, check=False
        )
    if completed.returncode != 0:
        raise RuntimeError(f"request overhead child failed:\n{completed.stderr}")
    result = parse_result(completed.stdout)
    context.measured.update(
        {
            "warm_get_us": result.warm_us["ours"]["get"],
            "warm_post_us": result.warm_us["ours"]["post"],
            "bare_get_us": result.warm_us["bare_chalice"]["get"],
            "bare_post_us": result.warm_us["bare_chalice"]["post"],
            "handwritten_get_us": result.warm_us["handwritten"]["get"],
            "handwritten_post_us": result.warm_us["handwritten"]["post"],
            "first_get_ms": result.first_get_ms,
            "first_get_client_ms": result.first_get_client_ms,
            "first_post_ms": result.first_post_ms,
            "import_app_ms": result.import_app_ms,
        }
    )
    return figures(result)


def main(argv: list[str]) -> int:
    """`--child ITERATIONS REPEATS`: measure, print the result as one JSON line."""
    if len(argv) != 3 or argv[0] != "--child":
        sys.stderr.write("usage: python -m bench.request_overhead --child ITERATIONS REPEATS\n")
        return 2
    with _stdout_discarded():
        result = child(int(argv[1]), int(argv[2]))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
