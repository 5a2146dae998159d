"""The cold start and request overhead benchmarks measure what they claim: the contenders answer
their events with success through the same AWS stand-in, making the same AWS calls; the app takes
the Lambda path (its INIT's clients, the authorizer's claims) on them; the child's result is read
back; the cold start programs run the package, find what its INIT imports and compiles.
No timing is asserted: timings belong to `make bench`, not to tests."""

from __future__ import annotations

# The environment app.py reads at import, as the functional tests set it (before `app`).
from tests.support.app_env import ORIGIN  # isort: skip

import json
import py_compile
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import cold_start, lambda_events, request_overhead
from bench.context import Context
from bench.spread import Spread
from bench.stand_in import StandIn, owner_item
from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.dynamodb import item_to_user, user_to_item
from chalicelib.config import API_HANDLER, load_settings
from chalicelib.domain.models import User

CONTEXT = lambda_events.LambdaContext()
ONE_GET = {"GetItem": 1}
ONE_POST = {"AdminCreateUser": 2, "TransactWriteItems": 1}


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.fixture
def lambda_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-process app as Lambda's INIT leaves it: AWS mode (claims come from the authorizer,
    no token is verified) and every client made, here for the stand-in to answer."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", lambda_events.FUNCTION_NAME)
    monkeypatch.setenv("TABLE_NAME", "users-test")  # the test stage's, which Chalice's test client would set
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("AWS_CHALICE_CLI_MODE", raising=False)
    bootstrap.reset()
    aws.reset_clients()
    bootstrap.prepare()
    yield
    bootstrap.reset()
    aws.reset_clients()


@pytest.fixture
def contenders(lambda_mode: None) -> dict[str, request_overhead.Contender]:
    return request_overhead.contenders()


def test_the_stand_in_answers_through_botocore() -> None:
    import boto3

    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
    stand_in = StandIn()
    dynamodb = stand_in.install(session.client("dynamodb"))
    cognito = stand_in.install(session.client("cognito-idp"))

    owner = dynamodb.get_item(TableName="t", Key={"userId": {"S": lambda_events.OWNER_SUB}})["Item"]
    nobody = dynamodb.get_item(TableName="t", Key={"userId": {"S": lambda_events.ADMIN_SUB}})
    written = dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"userId": {"S": "a"}}}}])
    made = cognito.admin_create_user(UserPoolId="us-east-1_x", Username="a@example.com", MessageAction="SUPPRESS")

    created = "2024-01-01T00:00:00.000Z"
    app_encoding = user_to_item(User(lambda_events.OWNER_SUB, "Owner", "owner@example.com", created, created, 1))
    assert owner == owner_item() == app_encoding
    user = item_to_user(owner)
    assert user is not None and user.user_id == lambda_events.OWNER_SUB
    assert "Item" not in nobody
    assert set(written) == {"ResponseMetadata"}
    assert made["User"]["Attributes"][0]["Name"] == "sub"
    assert dict(stand_in.calls) == {"GetItem": 2, "TransactWriteItems": 1, "AdminCreateUser": 1}


def test_every_contender_answers_and_makes_the_same_aws_calls(contenders) -> None:
    # Warm first: the app's revocation check reads a caller once per container and 50 s.
    for contender in contenders.values():
        contender.handler(lambda_events.get_user_event(), CONTEXT)
        contender.handler(request_overhead.post_events(1, "warm")[0], CONTEXT)

    calls = request_overhead.calls_per_request(contenders, CONTEXT)  # raises unless 200 and 201

    assert set(calls) == set(request_overhead.CONTENDERS)
    assert all(made == {"get": ONE_GET, "post": ONE_POST} for made in calls.values())


def test_the_plain_contenders_read_the_owner_and_create_the_user(contenders) -> None:
    for name in ("bare_chalice", "handwritten"):
        handler = contenders[name].handler

        got = handler(lambda_events.get_user_event(), CONTEXT)
        created = handler(lambda_events.post_user_event("new@example.com"), CONTEXT)

        assert got["statusCode"] == 200
        assert body(got)["userId"] == lambda_events.OWNER_SUB
        assert created["statusCode"] == 201
        assert body(created)["email"] == "new@example.com"


def test_the_app_answers_the_benchmark_events_on_the_lambda_path(contenders) -> None:
    ours = contenders["ours"]

    got = ours.handler(lambda_events.get_user_event(), CONTEXT)
    created = ours.handler(lambda_events.post_user_event("second@example.com"), CONTEXT)

    # The events carry a bearer token nobody signed: a 200 proves the claims path was taken.
    assert bootstrap.current().verify is None
    assert got["statusCode"] == 200
    assert body(got)["userId"] == lambda_events.OWNER_SUB
    assert got["headers"]["ETag"]
    assert got["headers"]["Access-Control-Allow-Origin"] == ORIGIN
    assert created["statusCode"] == 201
    assert body(created)["user"]["email"] == "second@example.com"
    # The real adapters on the INIT's clients: each caller's revocation check, the read, the create.
    assert dict(ours.stand_in.calls) == {"GetItem": 3, "AdminCreateUser": 2, "TransactWriteItems": 1}


def test_a_member_event_for_someone_else_is_refused(contenders) -> None:
    """The claims in the events decide access, so the GET figure is of a real owner read."""
    response = contenders["ours"].handler(lambda_events.get_user_event(user_id=lambda_events.ADMIN_SUB), CONTEXT)

    assert response["statusCode"] == 403


def test_lambda_environment_is_the_deployed_prod_function() -> None:
    inherited = {
        "PATH": "/usr/bin",
        "AWS_ENDPOINT_URL": "http://localhost:4566",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:4566",
        "AWS_CHALICE_CLI_MODE": "true",
        "AWS_PROFILE": "dev",
        "PYTHONPATH": "/elsewhere",
        "JWKS_URL": "http://localhost/jwks.json",
        "STAGE": "test",
        "_HANDLER": "app.pre_traffic_hook",
    }

    env = lambda_events.lambda_environment(inherited)
    settings = load_settings(env)

    assert env["PATH"] == "/usr/bin"
    assert not {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CHALICE_CLI_MODE", "AWS_PROFILE"} & set(env)
    assert "PYTHONPATH" not in env and "JWKS_URL" not in env
    assert env["_HANDLER"] == lambda_events.API_HANDLER == API_HANDLER
    assert env["REQUIRE_API_KEY"] == "true"
    assert settings.stage == "prod"
    assert settings.verify_tokens is False
    assert settings.cursor_secret_arn


def test_post_events_differ_only_in_a_fresh_email() -> None:
    events = request_overhead.post_events(3, "p")

    emails = [json.loads(event["body"])["email"] for event in events]
    assert emails == ["p-0@example.com", "p-1@example.com", "p-2@example.com"]
    assert events[0]["requestContext"] == lambda_events.post_user_event("x@example.com")["requestContext"]


def child_output(samples: dict[str, dict[str, list[float]]], calls: dict[str, Any]) -> str:
    result = {"samples_us": samples, "calls": calls, "rounds": 2, "batch": {"get": 10, "post": 5}}
    return '{"level":"INFO","message":"request"}\n' + json.dumps(result) + "\n\n"


SAME_CALLS = {name: {"get": ONE_GET, "post": ONE_POST} for name in request_overhead.CONTENDERS}


def test_the_child_result_is_read_from_its_last_line() -> None:
    samples = {
        "ours": {"get": [30.0, 40.0], "post": [60.0, 90.0]},
        "bare_chalice": {"get": [20.0, 40.0], "post": [40.0, 60.0]},
        "handwritten": {"get": [10.0, 20.0], "post": [30.0, 30.0]},
    }

    parsed = request_overhead.parse_result(child_output(samples, SAME_CALLS))

    assert parsed.cpu("ours", "get").median == 35.0
    # Ratios are taken round by round: 30/20 and 40/40.
    assert parsed.ratio("get", "bare_chalice").median == pytest.approx(1.25)
    assert parsed.ratio("post", "handwritten").median == pytest.approx(2.5)
    assert parsed.unequal_calls() == []
    with pytest.raises(RuntimeError):
        request_overhead.parse_result("\n")


def test_contenders_making_other_calls_are_reported() -> None:
    calls = {**SAME_CALLS, "handwritten": {"get": {"GetItem": 2}, "post": ONE_POST}}
    samples = {name: {"get": [1.0], "post": [1.0]} for name in request_overhead.CONTENDERS}

    parsed = request_overhead.parse_result(child_output(samples, calls))

    assert parsed.unequal_calls() == ["handwritten get: {'GetItem': 2} against this API's {'GetItem': 1}"]


def test_ratio_figures_hold_the_targets_and_the_others_are_for_comparison() -> None:
    samples = {
        "ours": {"get": [13.5, 13.5], "post": [12.0, 12.0]},
        "bare_chalice": {"get": [10.0, 10.0], "post": [10.0, 10.0]},
        "handwritten": {"get": [5.0, 5.0], "post": [5.0, 5.0]},
    }
    result = request_overhead.Result(samples, SAME_CALLS, 2, {"get": 10, "post": 5})

    shown = {f.name: f for f in request_overhead.figures(result)}
    held = {name: (f.target, f.passed) for name, f in shown.items() if f.passed is not None}

    assert held == {
        "GET /users/{id}: this API ÷ bare Chalice": ("≤ 1.30x (issue: 1.10x)", False),  # 1.35x
        "POST /users: this API ÷ bare Chalice": ("≤ 1.30x (issue: 1.10x)", True),  # 1.2x
    }
    assert "the issue's 1.10x is NOT met" in shown["GET /users/{id}: this API ÷ bare Chalice"].note
    assert "the issue's 1.10x is NOT met" in shown["POST /users: this API ÷ bare Chalice"].note


def test_spread_reports_median_quartiles_and_extremes() -> None:
    spread = Spread.of([5.0, 1.0, 3.0, 2.0, 4.0])

    assert (spread.median, spread.low, spread.high, spread.q1, spread.q3) == (3.0, 1.0, 5.0, 2.0, 4.0)
    assert spread.describe(1) == "median 3.0 (IQR 2.0-4.0, min-max 1.0-5.0, 5 samples)"
    assert Spread.of([7.0]).describe(0, " ms") == "median 7 ms (IQR 7 ms-7 ms, min-max 7 ms-7 ms, 1 samples)"


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


# A package shaped like the app's for the cold start programs: an `app` with a handler and the
# chalicelib.adapters.aws the programs ask for the clients the INIT made.
FAKE_APP = {
    "chalicelib/__init__.py": "",
    "chalicelib/adapters/aws.py": (
        "def made_clients():\n    return {}\n\ndef client(service):\n    raise AssertionError\n"
    ),
    "app.py": "import chalice\nimport devstack\napp = lambda event, context: {'statusCode': 200}\n",
    "chalice/__init__.py": "",
    "devstack.py": "",
}


def test_source_only_extraction_leaves_out_bytecode(tmp_path: Path) -> None:
    files = {"app.py": "", "__pycache__/app.cpython-311.pyc": "", "lib/x.py": "", "lib/__pycache__/x.pyc": ""}
    zipped = package(tmp_path, files)

    shipped = cold_start.extract(zipped, tmp_path / "shipped")
    source = cold_start.extract(zipped, tmp_path / "source", bytecode=False)

    assert cold_start.has_bytecode(zipped)
    assert (shipped / "lib/__pycache__/x.pyc").exists()
    assert sorted(p.relative_to(source).as_posix() for p in source.rglob("*.py*")) == ["app.py", "lib/x.py"]


def test_the_app_program_reports_what_the_package_imports(tmp_path: Path) -> None:
    """A package whose app loads a local-only module is caught by the hygiene figure."""
    folder = cold_start.extract(package(tmp_path, FAKE_APP), tmp_path / "task")

    result = cold_start.run_program(sys.executable, folder, cold_start.APP_PROGRAM)

    assert result["loaded"] == ["devstack"]
    assert result["status"] == 200 and result["clients"] == []
    assert Path(result["file"]).parent == folder
    assert result["init_ms"] > 0 and result["first_get_ms"] >= 0
    figures = {f.name: f for f in cold_start.hygiene_figures(tuple(result["loaded"]), ())}
    assert figures["modules only local/test code needs, loaded by the INIT"].passed is False
    assert figures["AWS clients made by the INIT"].passed is False


def test_the_handwritten_program_serves_its_first_get_from_the_task_root(tmp_path: Path) -> None:
    folder = cold_start.extract(package(tmp_path, {"app.py": ""}), tmp_path / "task")
    cold_start.add_handwritten(folder)

    result = cold_start.run_program(sys.executable, folder, cold_start.HANDWRITTEN_PROGRAM)

    assert result["status"] == 200
    assert result["calls"] == ONE_GET
    assert Path(result["file"]).parent == folder
    # Its bytecode is used as the package's is: nothing of it is compiled on a cold start.
    assert cold_start.compiled_from_source(sys.executable, folder, cold_start.HANDWRITTEN_MODULE) == []


def checked_pyc(tmp_path: Path, source: str) -> bytes:
    staged = tmp_path / "staged.py"
    staged.write_text(source)
    compiled = tmp_path / "staged.pyc"
    py_compile.compile(
        str(staged), cfile=str(compiled), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
    return compiled.read_bytes()


def test_modules_whose_bytecode_python_rejects_are_reported_as_compiled(tmp_path: Path) -> None:
    files = {
        "chalice/__init__.py": "",
        "app.py": "import chalice, good, stale\n",
        "good.py": "X = 1\n",
        "stale.py": "Y = 2\n",
    }
    pyc = {
        "__pycache__/good.cpython-311.pyc": checked_pyc(tmp_path, "X = 1\n"),
        "__pycache__/stale.cpython-311.pyc": checked_pyc(tmp_path, "Y = 3\n"),  # of another source
    }
    zipped = package(tmp_path, files)
    with zipfile.ZipFile(zipped, "a") as archive:
        for name, data in pyc.items():
            archive.writestr(name.replace("311", f"{sys.version_info.major}{sys.version_info.minor}"), data)
    folder = cold_start.extract(zipped, tmp_path / "task")

    compiled = cold_start.compiled_from_source(sys.executable, folder)

    assert compiled == ["app.py", "chalice/__init__.py", "stale.py"]
    assert cold_start.bytecode_figure(compiled, shipped_bytecode=True).passed is False
    assert cold_start.bytecode_figure([], shipped_bytecode=True).passed is True
    assert cold_start.bytecode_figure(compiled, shipped_bytecode=False).passed is None


def test_a_chalice_from_outside_the_package_is_refused(tmp_path: Path) -> None:
    files = {name: text for name, text in FAKE_APP.items() if not name.startswith("chalice/")}
    folder = cold_start.extract(package(tmp_path, files), tmp_path / "task")

    with pytest.raises(RuntimeError, match="not from the package"):
        cold_start.run_program(sys.executable, folder, cold_start.APP_PROGRAM)


def test_the_cold_start_ratio_is_taken_turn_by_turn() -> None:
    app = [cold_start.Run(100.0, 2.0), cold_start.Run(150.0, 3.0)]
    handwritten = [cold_start.Run(100.0, 2.0), cold_start.Run(100.0, 2.0)]  # 102 ms: the first GET's gate is 2.04 ms
    lazy = [cold_start.Run(10.0, 50.0, more_clients_ms=(("s3", 20.0),))]
    avatar, listing = [cold_start.Run(100.0, 30.0)], [cold_start.Run(100.0, 4.0)]
    timings = cold_start.Timings(app, handwritten, lazy, avatar, listing)

    assert timings.ratio.low == pytest.approx(1.0) and timings.ratio.high == pytest.approx(1.5)
    assert timings.ratio.median == pytest.approx(1.25)
    assert timings.spread("app", "first_get_ms").median == 2.5
    assert timings.more_clients() == {"s3": [20.0]}
    held = {f.name: f.passed for f in cold_start.figures(timings, 2) if f.passed is not None}
    assert held == {
        "first GET /users/{id} after INIT": False,  # 2.5 ms: more than 2 % of the hand-written handler's 102 ms
        "first GET /users/{id}/avatar after INIT": False,  # 30 ms: more than 20 %
        "first GET /users?limit=1 after INIT": True,  # 4 ms: within 10 %
        "INIT + first GET: this API ÷ hand-written": True,
    }


def test_the_first_request_gates_move_with_the_machine_and_the_issues_5_ms_is_said_apart() -> None:
    """A machine twice as slow doubles both the app's figures and the hand-written handler's: the
    gates, shares of the latter, still hold, while the note says the issue's 5 ms was missed."""

    def figures(speed: float) -> dict[str, Any]:
        app = [cold_start.Run(260.0 * speed, 4.0 * speed)]
        handwritten = [cold_start.Run(248.0 * speed, 2.0 * speed)]  # 250 ms at speed 1
        avatar, listing = [cold_start.Run(260.0 * speed, 35.0 * speed)], [cold_start.Run(260.0 * speed, 15.0 * speed)]
        timings = cold_start.Timings(app, handwritten, [cold_start.Run(50.0, 100.0)], avatar, listing)
        return {f.name: f for f in cold_start.figures(timings, 1)}

    for speed in (1.0, 2.0):
        shown = figures(speed)
        first = shown["first GET /users/{id} after INIT"]
        assert first.passed is True
        assert first.target == f"≤ {5.0 * speed:.1f} ms, 2% of the hand-written (issue: 5 ms)"
        assert ("The issue's 5 ms is met" in first.note) is (speed == 1.0)
        assert shown["first GET /users/{id}/avatar after INIT"].passed is True
        assert shown["first GET /users?limit=1 after INIT"].passed is True


def test_request_overhead_quick_run_sets_what_the_cost_model_reads(tmp_path: Path) -> None:
    context = Context(workdir=tmp_path, quick=True)

    shown = request_overhead.run(context)

    assert {"warm_get_us", "warm_post_us", "ratio_get_bare", "ratio_post_bare"} <= set(context.measured)
    assert all(f.value > 0 for f in shown)
    assert [f.target for f in shown if f.target] == ["≤ 1.30x (issue: 1.10x)", "≤ 1.30x (issue: 1.10x)"]
