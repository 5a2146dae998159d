"""Infra tests import the app (its routes shape the templates): give it the test environment first."""

import tests.support.app_env  # noqa: F401
