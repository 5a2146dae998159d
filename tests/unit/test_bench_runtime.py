"""The cold start and request overhead benchmarks measure what they claim: the implementations
they compare answer their events with success, the app takes the Lambda path on them, the
child's result is read back, and the cold start programs find what the package imports.
No timing is asserted: timings belong to `make bench`, not to tests."""

from __future__ import annotations

# The environment app.py reads at import, as the functional tests set it (before `app`).
from tests.support.app_env import ORIGIN  # isort: skip

import json
import py_compile
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bench import cold_start, lambda_events, request_overhead
from bench.context import Context
from chalicelib import bootstrap
from chalicelib.config import load_settings
from chalicelib.dynamodb import item_to_user

CONTEXT = lambda_events.LambdaContext()


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.mark.parametrize("make", [request_overhead.handwritten_handler, request_overhead.bare_chalice_app])
def test_the_compared_implementations_answer_get_and_post(make):
    users = request_overhead.seeded_users()
    handler = make(users)

    got = handler(lambda_events.get_user_event(), CONTEXT)
    created = handler(lambda_events.post_user_event("new@example.com"), CONTEXT)

    assert got["statusCode"] == 200
    assert body(got)["userId"] == lambda_events.OWNER_SUB
    assert created["statusCode"] == 201
    assert body(created)["email"] == "new@example.com"
    assert body(created)["userId"] in users


def test_post_events_differ_only_in_a_fresh_email():
    events = request_overhead.post_events(3, "p")

    emails = [json.loads(event["body"])["email"] for event in events]
    assert emails == ["p-0@example.com", "p-1@example.com", "p-2@example.com"]
    assert events[0]["requestContext"] == lambda_events.post_user_event("x@example.com")["requestContext"]


@pytest.fixture
def lambda_mode(monkeypatch):
    """The in-process app in AWS mode: claims come from the authorizer, no token is verified."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", lambda_events.FUNCTION_NAME)
    monkeypatch.setenv("TABLE_NAME", "users-test")  # the test stage's, which Chalice's test client would set
    monkeypatch.delenv("AWS_CHALICE_CLI_MODE", raising=False)
    bootstrap.reset()
    yield
    bootstrap.reset()


def test_the_app_answers_the_benchmark_events_on_the_lambda_path(lambda_mode):
    implementations = request_overhead.handlers()
    ours = implementations["ours"]

    request_overhead.check_handlers(implementations, CONTEXT)  # raises unless 200 and 201
    got = ours(lambda_events.get_user_event(), CONTEXT)
    created = ours(lambda_events.post_user_event("second@example.com"), CONTEXT)

    # The events carry a bearer token nobody signed: a 200 proves the claims path was taken.
    assert bootstrap.get_verify() is None
    assert got["statusCode"] == 200
    assert body(got)["userId"] == lambda_events.OWNER_SUB
    assert got["headers"]["ETag"]
    assert got["headers"]["Access-Control-Allow-Origin"] == ORIGIN
    assert created["statusCode"] == 201
    assert body(created)["user"]["email"] == "second@example.com"


def test_a_member_event_for_someone_else_is_refused(lambda_mode):
    """The claims in the events decide access, so the GET figure is of a real owner read."""
    ours = request_overhead.handlers()["ours"]

    response = ours(lambda_events.get_user_event(user_id=lambda_events.ADMIN_SUB), CONTEXT)

    assert response["statusCode"] == 403


def test_lambda_environment_is_the_deployed_prod_function():
    inherited = {
        "PATH": "/usr/bin",
        "AWS_ENDPOINT_URL": "http://localhost:4566",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:4566",
        "AWS_CHALICE_CLI_MODE": "true",
        "AWS_PROFILE": "dev",
        "PYTHONPATH": "/elsewhere",
        "JWKS_URL": "http://localhost/jwks.json",
        "STAGE": "test",
    }

    env = lambda_events.lambda_environment(inherited)
    settings = load_settings(env)

    assert env["PATH"] == "/usr/bin"
    assert not {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CHALICE_CLI_MODE", "AWS_PROFILE"} & set(env)
    assert "PYTHONPATH" not in env and "JWKS_URL" not in env
    assert env["REQUIRE_API_KEY"] == "true"
    assert settings.stage == "prod"
    assert settings.verify_tokens is False
    assert settings.cursor_secret_arn


def test_the_stub_answers_getitem_with_the_owner_and_writes_with_nothing():
    item = request_overhead.stub_answer("DynamoDB_20120810.GetItem")["Item"]

    user = item_to_user(item)
    assert user is not None and user.user_id == lambda_events.OWNER_SUB
    assert request_overhead.stub_answer("DynamoDB_20120810.TransactWriteItems") == {}


def test_the_child_result_is_read_from_its_last_line():
    warm = {
        name: {"get": 10.0 * (i + 1), "post": 20.0 * (i + 1)} for i, name in enumerate(request_overhead.IMPLEMENTATIONS)
    }
    result = {
        "import_app_ms": 30,
        "first_get_ms": 200.5,
        "first_get_client_ms": 150,
        "first_post_ms": 5,
        "warm_us": warm,
        "samples_us": {},
        "iterations": 100,
        "repeats": 3,
    }
    stdout = '{"level":"INFO","message":"request"}\n' + json.dumps(result) + "\n\n"

    parsed = request_overhead.parse_result(stdout)

    assert parsed.first_get_ms == 200.5
    assert parsed.warm_us["ours"] == {"get": 10.0, "post": 20.0}
    assert parsed.ratio("get", "bare_chalice") == pytest.approx(0.5)
    assert parsed.ratio("post", "handwritten") == pytest.approx(1 / 3)
    with pytest.raises(RuntimeError):
        request_overhead.parse_result("\n")


def test_ratio_figures_hold_the_target_and_the_others_are_for_comparison():
    warm = {"ours": {"get": 31.0, "post": 20.0}, "bare_chalice": {"get": 10.0, "post": 10.0}}
    warm["handwritten"] = {"get": 1.0, "post": 1.0}
    result = request_overhead.Result(1, 2, 1, 1, warm, 10, 1)

    held = {f.name: f.passed for f in request_overhead.figures(result) if f.passed is not None}

    assert held == {"GET /users/{id}: this API ÷ bare Chalice": False, "POST /users: this API ÷ bare Chalice": True}


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_source_only_extraction_leaves_out_bytecode(tmp_path):
    files = {"app.py": "", "__pycache__/app.cpython-311.pyc": "", "lib/x.py": "", "lib/__pycache__/x.pyc": ""}
    zipped = package(tmp_path, files)

    shipped = cold_start.extract(zipped, tmp_path / "shipped")
    source = cold_start.extract(zipped, tmp_path / "source", bytecode=False)

    assert cold_start.has_bytecode(zipped)
    assert (shipped / "lib/__pycache__/x.pyc").exists()
    assert sorted(p.relative_to(source).as_posix() for p in source.rglob("*.py*")) == ["app.py", "lib/x.py"]


def test_the_app_program_reports_what_the_package_imports(tmp_path):
    """A package whose app loads a local-only module is caught by the hygiene list."""
    zipped = package(
        tmp_path,
        {"chalice/__init__.py": "", "devstack.py": "", "app.py": "import chalice\nimport devstack\n"},
    )
    folder = cold_start.extract(zipped, tmp_path / "task")

    result = cold_start.run_program(sys.executable, folder, cold_start.APP_PROGRAM)

    assert result["loaded"] == ["devstack"]
    assert Path(result["app_file"]).parent == folder
    assert not cold_start.hygiene_figure(tuple(result["loaded"])).passed


def checked_pyc(tmp_path: Path, source: str) -> bytes:
    staged = tmp_path / "staged.py"
    staged.write_text(source)
    compiled = tmp_path / "staged.pyc"
    py_compile.compile(
        str(staged), cfile=str(compiled), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
    return compiled.read_bytes()


def test_modules_whose_bytecode_python_rejects_are_reported_as_compiled(tmp_path):
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


def test_a_chalice_from_outside_the_package_is_refused(tmp_path):
    folder = cold_start.extract(package(tmp_path, {"app.py": ""}), tmp_path / "task")

    with pytest.raises(RuntimeError, match="not from the package"):
        cold_start.run_program(sys.executable, folder, cold_start.BASELINE_PROGRAM)


def test_request_overhead_quick_run_sets_what_the_cost_model_reads(tmp_path):
    context = Context(workdir=tmp_path, quick=True)

    shown = request_overhead.run(context)

    assert {"warm_get_us", "warm_post_us", "first_get_ms"} <= set(context.measured)
    assert all(f.value > 0 for f in shown)
    assert [f.target for f in shown if f.target] == ["≤ 3x", "≤ 3x"]
