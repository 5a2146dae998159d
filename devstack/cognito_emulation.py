"""Where the emulator's Cognito (moto 5.2.5) refuses what Cognito accepts, for the local stack
and the tests that run the app on moto.

moto checks an email-as-username against `[A-Za-z0-9._%+-]+@...`, so it refuses addresses the
API accepts and RFC 5322 allows (`o'brien@`, `a&b@`). Cognito does not publish its own check;
the emulator is widened to the API's own rule (chalicelib.domain.models.EMAIL_PATTERN), so that what
the API accepts is what the local stack accepts. On AWS, an address Cognito refuses gets a 400.
"""

from __future__ import annotations

import moto
from moto.cognitoidp import utils

from chalicelib.domain.models import EMAIL_PATTERN

PINNED_MOTO = "5.2.5"


def widen_email_check() -> None:
    if moto.__version__ != PINNED_MOTO:
        raise RuntimeError(
            f"devstack/cognito_emulation.py patches moto {PINNED_MOTO}, but moto {moto.__version__} is "
            "installed: check whether its email check still needs widening, then update PINNED_MOTO"
        )
    # moto applies it with re.fullmatch; the pattern's own anchors are harmless there.
    utils.FORMATS["email"] = EMAIL_PATTERN
