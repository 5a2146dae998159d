"""What a release version is: the template's ReleaseVersion parameter accepts it, and `python -m
ops.release_version` compares them (standard library only: the deploy job installs nothing)."""

from __future__ import annotations

import re

# Semantic Versioning 2.0.0, with the leading `v` of a git tag allowed.
SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
# The template's AllowedPattern for ReleaseVersion (infra/cloudformation.py): what SEMVER accepts.
PATTERN = "^" + SEMVER.pattern + "$"
