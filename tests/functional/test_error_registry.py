"""One way out for errors: a route declared with no decoration of its own answers every error
through the one map (chalicelib/web/errors.py), not with Chalice's 500."""

from __future__ import annotations

import pytest
from chalice.test import Client

from chalicelib.domain import errors
from chalicelib.web import errors as web_errors
from chalicelib.web.application import Application
from tests.support.class_tree import with_subclasses


@pytest.fixture
def client() -> Client:
    app = Application(app_name="error-registry")

    @app.route("/fail/{kind}")
    def fail(kind: str) -> dict[str, str]:  # no decorator: the app class maps what it raises
        raise {
            "missing": errors.UserNotFound(),
            "taken": errors.EmailAlreadyExists(),
            "stale": errors.PreconditionFailed(),
            "down": errors.ServiceUnavailable(),
            "big": web_errors.PayloadTooLarge(),
        }[kind]

    @app.route("/crash")
    def crash() -> None:
        raise KeyError("an internal detail")

    return Client(app)


@pytest.mark.parametrize(
    ("kind", "status"), [("missing", 404), ("taken", 409), ("stale", 412), ("down", 503), ("big", 413)]
)
def test_a_route_without_decoration_answers_each_domain_error_with_its_status(
    client: Client, kind: str, status: int
) -> None:
    response = client.http.get(f"/fail/{kind}")
    assert (
        response.status_code
        == status
        == web_errors.status_for(
            {
                "missing": errors.UserNotFound,
                "taken": errors.EmailAlreadyExists,
                "stale": errors.PreconditionFailed,
                "down": errors.ServiceUnavailable,
                "big": web_errors.PayloadTooLarge,
            }[kind]()
        )
    )
    assert response.json_body.keys() == {"error"}
    if status == 503:
        assert response.headers["Retry-After"] == web_errors.RETRY_AFTER_S


def test_anything_else_is_still_a_bare_500_without_its_text(client: Client) -> None:
    response = client.http.get("/crash")
    assert response.status_code == 500
    assert "an internal detail" not in response.body.decode()


def test_every_route_of_the_app_is_answered_through_the_map() -> None:
    from app import app
    from tests.support import app_env  # noqa: F401  # the environment app.py reads at import

    for methods in app.routes.values():
        for entry in methods.values():
            assert getattr(entry.view_function, "__wrapped__", None) is not None, entry.view_name


def _subclasses(cls: type[errors.AppError]) -> set[type[errors.AppError]]:
    return set(with_subclasses(cls)) - {cls}


def test_every_error_class_has_its_own_row_or_inherits_one() -> None:
    """A new error class must say its status: a class that matches no row would answer 400 by
    default, which is right for no error but a validation one."""
    mapped = {cls for cls, _ in web_errors.STATUSES}
    for cls in _subclasses(errors.AppError):
        assert any(issubclass(cls, row) for row in mapped), cls.__name__
    assert errors.NoneMatchFailed in _subclasses(errors.AppError)
