"""Section "Local stack": latency of `GET /users/{id}` over HTTP against the stack `make run` starts
(`python -m devstack run`: the Chalice app on its local server, with moto in the same process).

One client, sequential requests over one keep-alive session, as the admin: what a developer sees
locally, not what Lambda does (no API Gateway, the app verifies the token itself, DynamoDB is
moto in memory). The issue sets no target: the figures are for comparison between runs.

Sets in `context.measured`: "local_get_p50_ms", "local_get_p99_ms".
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from dataclasses import dataclass
from unittest import mock

import requests

from bench.context import Context
from bench.report import Figure
from devstack.process import Stack, start_stack, stop_stack
from loadtest.runner import percentile, require_loopback

SECTION = "Local stack"
WARMUP = 20
REQUESTS = 1000
QUICK_REQUESTS = 100
TIMEOUT_S = 15


def _create_user(session: requests.Session, url: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    response = session.post(f"{url}/users", json={"name": "Bench User", "email": email}, timeout=TIMEOUT_S)
    if response.status_code != 201:
        raise RuntimeError(f"POST /users answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["user"]["userId"])


@dataclass(frozen=True)
class Sample:
    latencies_ms: list[float]
    failures: int  # responses other than 200
    elapsed_s: float  # wall time of the measured requests


def measure(stack: Stack, count: int) -> Sample:
    """`count` sequential GETs of one user, after a warm-up."""
    url = stack.url.rstrip("/")
    require_loopback(url)
    with requests.Session() as session:
        # Loopback only: no proxy or netrc from the environment may reroute or decorate a request.
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {stack.token()}"
        target = f"{url}/users/{_create_user(session, url)}"
        for _ in range(WARMUP):
            session.get(target, timeout=TIMEOUT_S).raise_for_status()
        latencies: list[float] = []
        failures = 0
        began = time.perf_counter()
        for _ in range(count):
            started = time.perf_counter()
            response = session.get(target, timeout=TIMEOUT_S)
            latencies.append((time.perf_counter() - started) * 1000)
            failures += response.status_code != 200
        elapsed = time.perf_counter() - began
    return Sample(latencies, failures, elapsed)


def run(context: Context) -> list[Figure]:
    count = QUICK_REQUESTS if context.quick else REQUESTS
    folder = context.workdir / "stack"
    folder.mkdir(parents=True, exist_ok=True)
    # Fake credentials for this process's calls to the emulator (signing in); the stack takes its own.
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, fake):
        os.environ.pop("AWS_SESSION_TOKEN", None)
        stack = start_stack(folder)
        try:
            sample = measure(stack, count)
        finally:
            if stack.process.poll() is None:
                try:
                    stop_stack(stack)
                except Exception:
                    stack.process.kill()
                    stack.process.wait()
                    raise
    ordered = sorted(sample.latencies_ms)
    p50, p90, p99 = (percentile(ordered, p) or 0.0 for p in (50, 90, 99))
    context.measured["local_get_p50_ms"] = p50
    context.measured["local_get_p99_ms"] = p99
    how = (
        f"{count} sequential GET /users/{{id}} as the admin over one keep-alive connection after {WARMUP} "
        f"warm-up requests; nearest-rank percentiles. The local server verifies the RS256 token on every "
        f"request and serves DynamoDB from moto: a developer's view, not Lambda's."
    )
    return [
        Figure(SECTION, "GET /users/{id} p50", p50, "ms", note=how),
        Figure(SECTION, "GET /users/{id} p90", p90, "ms"),
        Figure(SECTION, "GET /users/{id} p99", p99, "ms"),
        Figure(SECTION, "GET /users/{id} mean", statistics.fmean(sample.latencies_ms), "ms"),
        Figure(SECTION, "throughput, one client", count / sample.elapsed_s, "requests/s"),
        Figure(
            SECTION,
            "responses other than 200",
            sample.failures,
            "responses",
            target="= 0",
            passed=sample.failures == 0,
            note="a latency of error responses would mean nothing",
        ),
    ]
