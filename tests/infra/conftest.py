"""Infra tests import the app (its routes shape the templates): give it the test environment first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tests.support.app_env  # noqa: F401
from infra.lint import expand_sam
from infra.packaging import package_cloudformation
from infra.stages import DEPLOYED_STAGES, load_stage

Template = dict[str, Any]


@pytest.fixture(scope="session")
def sam_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`make package` for every deployed stage, once per session: stage -> sam.json."""
    out = tmp_path_factory.mktemp("cfn")
    return {name: package_cloudformation(load_stage(name), out / name) for name in DEPLOYED_STAGES}


@pytest.fixture(scope="session")
def expanded(sam_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    """Each stage's template after the SAM transform: the plain CloudFormation AWS deploys."""
    out = tmp_path_factory.mktemp("expanded")
    return {name: json.loads(expand_sam(sam, out / f"{name}.json").read_text()) for name, sam in sam_files.items()}
