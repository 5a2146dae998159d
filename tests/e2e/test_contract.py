"""Contract test: Schemathesis against the running local stack, with the stack's own /openapi.json.

Every response to generated requests must be what the document says: no server error; a documented
status, content type, body and headers; schema-violating input refused with a 4xx and schema-valid
input accepted; an undeclared method answered 405 with a matching Allow header; a secured operation
refusing a request without (or with a bad) token; a created user readable, a deleted one not.

Schemathesis's pytest plugin does not work with pytest 9 (it sets `Function._nodeid`, which pytest 9
no longer has), so one run of its engine, its Python API, serves the tests below: all four phases
(explicit examples, coverage of boundaries and negations, Hypothesis fuzzing, stateful sequences
along links inferred from Location headers and from shapes), with a fixed seed, derandomized
generation and fixed example counts: the same inputs every run, except where a stateful step follows an
id the server generated (about 650 requests, ~35 s on 2 cores, plus the stack's start).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
import schemathesis
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.generation.meta import CoverageScenario
from schemathesis.openapi.checks import EnsureResourceAvailability, RejectedPositiveData, UseAfterFree

from chalicelib.domain.errors import AvatarNotFound, InvalidCursor, InvalidEmailCode, NoneMatchFailed, UserNotFound
from chalicelib.web.idempotency import REPLAYED_HEADER
from chalicelib.web.openapi import IF_MATCH_PATTERN
from tests.e2e.conftest import Stack, start_stack, stop_stack

SEED = 20260101
# Fuzzing examples per operation; the coverage, examples and stateful phases add their own cases.
MAX_EXAMPLES = 25
STATEFUL_MAX_STEPS = 8

# Each check run, with the situation it judges; every situation must have occurred at least once,
# so a check cannot pass only because nothing it looks at ever happened.
ENABLED_CHECKS = {
    "not_a_server_error": "response",
    "status_code_conformance": "response",
    "content_type_conformance": "response",
    "response_schema_conformance": "response",
    "response_headers_conformance": "response",
    "negative_data_rejection": "schema-violating request",
    "positive_data_acceptance": "schema-valid request",
    "missing_required_header": "request without Authorization",
    "unsupported_method": "undeclared method",
    "allow_header_conformance": "undeclared method",
    "ignored_auth": "2xx from a secured operation",
    "use_after_free": "stateful step after a successful DELETE",
    "ensure_resource_availability": "stateful step after a 201",
}
# Every other check Schemathesis has, and why it is not run.
DISABLED_CHECKS = {
    "max_response_time": "latency is not part of the document, and a fixed bound on a shared 2-core CI machine "
    "running the emulator would fail on load, not on a fault of the API",
    "object_level_authorization": "it replays one identity's reads as its peers, and here every read by id of a "
    "generated user is only admitted for the admin (who may read every user by design), so two member peers would "
    "give it nothing to compare; member-against-member access (OWASP API1) is asserted directly in "
    "tests/functional/test_owasp_api_top10.py and tests/e2e/test_local_stack.py",
}

PUBLIC_OPERATIONS = {"GET /hello", "GET /openapi.json"}
# Operations left out of generation, and why.
NOT_GENERATED = {"GET /openapi.json": "it serves the document under test, and Schemathesis skips that by design"}
# Operations that may end without a single 2xx, and why. Every other one must have succeeded at least
# once, so a run that only ever collected 401s or 400s (bad token, bad generation) cannot pass.
NO_SUCCESS_EXPECTED = {
    "GET /users/{userId}/avatar": "200 needs an avatar in S3, and uploads go from the client straight to S3 "
    "with the presigned form, outside the API that Schemathesis drives",
    "POST /users/me/email-verification": "200 needs the code mailed to the pending address, which generated requests "
    "cannot know (the confirmation is tested end to end in tests/e2e/test_sign_in_actions.py)",
}


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _header(case: schemathesis.Case[Any], name: str) -> str | None:
    return next((str(value) for key, value in (case.headers or {}).items() if key.lower() == name.lower()), None)


def _json_body(response: schemathesis.Response) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


# Failures that are no fault: the answer depends on server state the document cannot express, or the
# "schema-valid" request was not. Each is matched narrowly (kind of failure, operation, status, error
# text, what was sent); anything else still fails, and the test prints how often each was waived.
def _waiver(
    failure: Failure, case: schemathesis.Case[Any], response: schemathesis.Response, replayed: set[str]
) -> str | None:
    label, status, body = case.operation.label, response.status_code, _json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(failure, RejectedPositiveData):
        if (
            label
            in (
                "GET /users",
                "GET /users/{userId}/history",
                "GET /users/imports/{jobId}",
                "GET /users/imports/{jobId}/rows",
            )
            and status == 400
            and "cursor" in (case.query or {})
            and error == InvalidCursor.message
        ):
            return "cursor: opaque and HMAC-signed, so a pattern-valid string the server never issued gets 400"
        if label == "POST /users/imports" and status == 400 and case.media_type in ("text/csv", "application/x-ndjson"):
            return (
                "import file: its content (a CSV header naming the columns, a JSON object a line) is checked as a "
                "file, which a string schema cannot express; the schema says so in words"
            )
        details = body.get("details", []) if isinstance(body, dict) else []
        if (
            label == "GET /users"
            and status == 400
            and details
            and all(str(detail.get("message", "")).startswith("cannot be combined") for detail in details)
        ):
            return (
                "q, email, sort: combinations the API refuses (documented on each parameter) and OpenAPI cannot "
                "express, having no dependencies between parameters; each alone is accepted"
            )
        if_match, if_none_match = _header(case, "If-Match"), _header(case, "If-None-Match")
        for name, value in (("If-Match", if_match), ("If-None-Match", if_none_match)):
            if status == 400 and value is not None and not re.fullmatch(IF_MATCH_PATTERN, value):
                return (
                    f"{name}: Schemathesis's coverage phase spells positive header values from letters and digits "
                    "only, so for a pattern that needs quotes or * it sends a placeholder the document rejects"
                )
        if status == 412 and if_match is not None:
            return "If-Match: a generated ETag names no current version of the user, so 412 as documented"
        if status == 412 and if_none_match is not None and error == NoneMatchFailed.message:
            return "If-None-Match: a generated `*` (or tag) met an existing user, so 412 as documented"
        if status == 422 and _header(case, "Idempotency-Key") is not None:
            return "Idempotency-Key: a generated key repeats an earlier case's key with another body, so 422"
        if (
            label == "POST /users/me/email-verification"
            and status == 400
            and (str(error or "").startswith(InvalidEmailCode.message) or str(error or "").startswith("Too many wrong"))
        ):
            return (
                "email code: only the code mailed to the new address confirms it; any other six digits get 400 "
                "(and after five, every code), as documented on EmailVerification"
            )
        no_name = not isinstance(case.body, dict) or "name" not in case.body
        if label == "PUT /users/me" and status == 400 and no_name and error == "Creating your profile requires a name":
            return "PUT /users/me: the first PUT creates the profile, which needs a name (documented on ProfileUpdate)"
    if (
        isinstance(failure, AcceptedNegativeData)
        and label == "POST /users/imports"
        and status == 202
        and case.media_type in ("text/csv", "application/x-ndjson")
        and not isinstance(case.body, (str, bytes))
    ):
        return (
            "import file: a file body is bytes, so a generated non-string (true, 7, a list) goes out as its JSON "
            "text (_file_body), a non-empty file the schema's string admits; its rows are judged in the job"
        )
    if (
        isinstance(failure, EnsureResourceAvailability)
        and status == 404
        and error == UserNotFound.message
        and (case.path_parameters or {}).get("userId") in replayed
    ):
        return (
            "Idempotency-Key: a generated key repeated an earlier create's key and body, so the API replayed that "
            "create's response (as documented) for a user a later DELETE had removed"
        )
    if isinstance(failure, UseAfterFree) and label.startswith("GET /users/imports/{jobId}") and status == 200:
        return "import: DELETE cancels the job, which stays readable with its report until it expires, as documented"
    if isinstance(failure, UseAfterFree) and label == "GET /users/{userId}/history" and status == 200:
        return "history: a deleted user's history stays readable for the retention period, as documented"
    if isinstance(failure, EnsureResourceAvailability) and label == "GET /users/{userId}/avatar":
        if status == 404 and error == AvatarNotFound.message:
            return "avatar: creating a user uploads no avatar, so reading it gets the documented 404 until one is"
    return None


def _status(recorder: Any, case_id: str | None) -> int | None:
    interaction = recorder.interactions.get(case_id) if case_id is not None else None
    return interaction.response.status_code if interaction is not None and interaction.response is not None else None


def _situations(recorder: Any, case_id: str, node: Any) -> set[str]:
    """The situations (values of ENABLED_CHECKS) that one recorded case puts a check in."""
    case, status = node.value, _status(recorder, case_id)
    if status is None:
        return set()
    found = {"response"}
    meta = case.meta
    if meta is not None:
        negative = meta.generation.mode == schemathesis.GenerationMode.NEGATIVE
        found.add("schema-violating request" if negative else "schema-valid request")
        data = meta.phase.data
        if getattr(data, "scenario", None) == CoverageScenario.UNSPECIFIED_HTTP_METHOD:
            found.add("undeclared method")
        if getattr(data, "scenario", None) == CoverageScenario.MISSING_PARAMETER:
            if str(getattr(data, "parameter", "")).lower() == "authorization":
                found.add("request without Authorization")
    if 200 <= status < 300 and case.operation.label not in PUBLIC_OPERATIONS:
        found.add("2xx from a secured operation")
    parent = recorder.cases.get(node.parent_id) if node.parent_id else None
    if parent is not None:
        parent_status = _status(recorder, node.parent_id) or 0
        if parent.value.method.upper() == "DELETE" and 200 <= parent_status < 300:
            found.add("stateful step after a successful DELETE")
        if parent_status == 201:
            found.add("stateful step after a 201")
    return found


def _describe(recorder: Any, case_id: str, check: str, info: Any) -> str:
    case = recorder.cases[case_id].value
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    answer = f"{response.status_code} {(response.content or b'')[:300]!r}" if response is not None else "no response"
    meta = case.meta
    how = "derived case"
    if meta is not None:
        scenario = getattr(meta.phase.data, "description", "")
        how = f"{meta.phase.name} phase, {meta.generation.mode} data{': ' + scenario if scenario else ''}"
    return (
        f"{case.operation.label}: {check}: {info.failure.title} ({how})\n{info.failure.message}\n"
        f"-> {answer}\n{info.code_sample}"
    )


@dataclass
class Outcome:
    cases: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)  # "<operation> <status>"
    answers: dict[str, str] = field(default_factory=dict)  # "<operation> <status>" -> the first answer's body
    situations: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    waived: Counter[str] = field(default_factory=Counter)
    replayed: set[str] = field(default_factory=set)
    stop_reason: StopReason | None = None

    def add(self, recorder: Any) -> None:
        for case_id, node in recorder.cases.items():
            label = node.value.operation.label
            self.cases[label] += 1
            self.phases[str(node.value.meta.phase.name) if node.value.meta else "derived"] += 1
            status = _status(recorder, case_id)
            self.statuses[f"{label} {status}"] += 1
            interaction = recorder.interactions.get(case_id)
            if interaction is not None and interaction.response is not None:
                self.answers.setdefault(f"{label} {status}", (interaction.response.content or b"")[:200].decode())
            if 200 <= (status or 0) < 300:
                self.successes[label] += 1
            self.situations.update(_situations(recorder, case_id, node))
        for case_id, checks in recorder.checks.items():
            for check in checks:
                self.checks[check.name] += 1
                if check.status == Status.FAILURE and check.failure_info is not None:
                    self.failures.append(_describe(recorder, case_id, check.name, check.failure_info))

    def summary(self) -> str:
        return json.dumps(
            {
                "cases per operation": self.cases,
                "cases per phase": self.phases,
                "check runs": self.checks,
                "situations": self.situations,
                "waived": self.waived,
                "users in replayed creates": len(self.replayed),
            },
            indent=1,
            sort_keys=True,
        )


@schemathesis.serializer("text/csv", "application/x-ndjson")
def _file_body(ctx: Any, value: Any) -> bytes:
    """POST /users/imports takes a file in the body (CSV or JSON Lines): its schema is a string,
    sent as its UTF-8 bytes, as a client sends a file (what text/plain gets from Schemathesis)."""
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


def _config() -> schemathesis.Config:
    checks: dict[str, Any] = {name: {"enabled": True} for name in ENABLED_CHECKS}
    # max_response_time is off unless given a limit, so it is simply not configured.
    checks.update({name: {"enabled": False} for name in DISABLED_CHECKS if name != "max_response_time"})
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            # No example database and no Schemathesis cache: nothing from one run steers the next (Hypothesis
            # still keeps its constants cache in .hypothesis/, which ignores itself in git).
            "cache": {"enabled": False},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": checks,
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": STATEFUL_MAX_STEPS},
            },
        }
    )


def run_schemathesis(stack: Stack) -> Outcome:
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json", config=_config())

    # The admin's ID token, fetched again every second: generated requests include the admin signing
    # themselves out (POST /users/{userId}/sign-out with their own id, which is allowed), after which
    # every token issued until then is refused, as documented; a token issued later is accepted. The
    # admin may also have changed their own email (PUT /users/{userId}), so they sign in with the
    # address their sign-in has now.
    cognito, pool = stack.client("cognito-idp"), stack.info["user_pool_id"]
    admin_sub = _claims(stack.token())["sub"]

    @schema.auth(refresh_interval=1)
    class AdminToken:
        def get(self, case: schemathesis.Case[Any], context: Any) -> str:
            found = cognito.admin_get_user(UserPoolId=pool, Username=admin_sub)["UserAttributes"]
            email = next(a["Value"] for a in found if a["Name"] == "email")
            return stack.token(email, stack.info["admin_password"])

        def set(self, case: schemathesis.Case[Any], data: str, context: Any) -> None:
            case.headers["Authorization"] = f"Bearer {data}"

    outcome = Outcome()
    replayed = outcome.replayed  # ids of users in replayed (Idempotent-Replayed) create responses

    @schema.hook
    def after_call(context: schemathesis.HookContext, case: schemathesis.Case[Any], response: Any) -> None:
        values = response.headers.get(REPLAYED_HEADER.lower()) or []
        if "true" in (values if isinstance(values, list) else [values]):
            body = _json_body(response)
            user = body.get("user") if isinstance(body, dict) else None
            if isinstance(user, dict) and isinstance(user.get("userId"), str):
                replayed.add(user["userId"])

    @schema.hook
    def filter_failure(
        context: schemathesis.HookContext,
        failure: Failure,
        case: schemathesis.Case[Any],
        response: schemathesis.Response,
    ) -> bool:
        reason = _waiver(failure, case, response, replayed)
        if reason is not None:
            outcome.waived[reason] += 1
        return reason is None

    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.add(event.recorder)
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            outcome.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            outcome.stop_reason = event.stop_reason
    return outcome


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: the run changes whatever it can reach as the seeded admin (that admin's
    own email among it), which the other e2e tests, on the session's stack, sign in as."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    running = start_stack(tmp_path_factory.mktemp("contract-stack"))
    yield running
    if running.process.poll() is None:
        stop_stack(running)


@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    return run_schemathesis(stack)


def test_every_check_schemathesis_has_is_run_or_disabled_with_a_reason() -> None:
    load_all_checks()
    assert set(CHECKS.get_all_names()) | {"max_response_time"} == set(ENABLED_CHECKS) | set(DISABLED_CHECKS)
    assert not set(ENABLED_CHECKS) & set(DISABLED_CHECKS)


@pytest.mark.parametrize(
    ("media_type", "body", "waived"),
    [
        ("application/x-ndjson", True, True),  # seen in a stateful run: `true` went out as the file's text
        ("text/csv", 7, True),
        ("application/x-ndjson", "true", False),  # a string is not a negative case of a string
        ("application/json", True, False),  # the JSON form has a schema of its own that refuses it
    ],
)
def test_a_generated_non_string_file_body_accepted_as_a_file_is_waived_and_nothing_else(
    media_type: str, body: Any, waived: bool
) -> None:
    failure = AcceptedNegativeData(
        operation="POST /users/imports", message="accepted", status_code=202, expected_statuses=["400"]
    )
    case = SimpleNamespace(
        operation=SimpleNamespace(label="POST /users/imports"), media_type=media_type, body=body, headers={}
    )
    response = SimpleNamespace(status_code=202, content=b'{"jobId": "j", "status": "queued"}')
    assert (_waiver(failure, cast(Any, case), cast(Any, response), set()) is not None) is waived


def test_the_running_api_keeps_its_openapi_contract(outcome: Outcome) -> None:
    print(outcome.summary())
    assert outcome.stop_reason == StopReason.COMPLETED
    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, "\n\n".join(outcome.failures)


def test_every_phase_generated_requests(outcome: Outcome) -> None:
    assert {phase for phase in ("examples", "coverage", "fuzzing", "stateful") if not outcome.phases[phase]} == set()


def test_every_check_met_the_situation_it_judges(outcome: Outcome) -> None:
    assert {check: outcome.checks[check] for check in ENABLED_CHECKS if not outcome.checks[check]} == {}
    assert {situation for situation in ENABLED_CHECKS.values() if not outcome.situations[situation]} == set()


def test_every_documented_operation_was_exercised_and_succeeded(stack: Stack, outcome: Outcome) -> None:
    paths = requests.get(f"{stack.url}/openapi.json", timeout=10).json()["paths"]
    labels = {f"{method.upper()} {path}" for path, item in paths.items() for method in item} - set(NOT_GENERATED)
    assert labels - set(outcome.cases) == set()
    never = {label for label in labels - set(NO_SUCCESS_EXPECTED) if not outcome.successes[label]}
    seen = {key: (n, outcome.answers.get(key)) for key, n in outcome.statuses.items() if key.rsplit(" ", 1)[0] in never}
    assert never == set(), seen
