"""The local stages' stand-in for Cognito's mail: the emulator sends nothing, so every message
Cognito would send is appended to a file (`.local/outbox.jsonl`), one JSON object per line,
readable by its owner only (it holds temporary passwords: chalicelib/adapters/private_files.py).
Never wired outside the local stages (chalicelib/bootstrap.py)."""

from __future__ import annotations

import json
import secrets
import string
import threading
from pathlib import Path
from typing import Any

from chalicelib.adapters import private_files
from chalicelib.adapters.cognito import CognitoIdentityProvider

_lock = threading.Lock()


def temporary_password() -> str:
    """A password that meets the pools' policy (12+ characters, upper, lower, digit, symbol)."""
    core = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    return f"{core}Aa1!"


def append(path: Path, message: dict[str, Any]) -> None:
    line = json.dumps(message)
    with _lock:
        private_files.append_line(path, line)


class OutboxCognitoIdentityProvider(CognitoIdentityProvider):
    """Cognito, with the invitation written to the outbox instead of mailed: with its subject and text
    (`invitation`, the stage's template, as the local stack's pool has it) when given, {username} and
    {####} filled in as Cognito fills them."""

    def __init__(self, pool_id: str, outbox: Path, client: Any | None = None, invitation: tuple[str, str] = ("", "")):
        super().__init__(pool_id, client)
        self._outbox = outbox
        self._subject, self._message = invitation

    def invite(self, sub: str, email: str) -> None:
        # What RESEND does in Cognito: a new temporary password, valid for the first sign-in,
        # after which Cognito asks for a new one (NEW_PASSWORD_REQUIRED).
        password = temporary_password()
        self._on_user("admin_set_user_password", sub, Password=password, Permanent=False)
        message: dict[str, Any] = {"kind": "invitation", "to": email, "userId": sub, "temporaryPassword": password}
        if self._message:
            message["subject"] = self._subject
            message["message"] = self._message.replace("{username}", email).replace("{####}", password)
        append(self._outbox, message)

    def reset_password(self, sub: str) -> None:
        super().reset_password(sub)
        # Cognito mails a code to set a new password with; the emulator makes none and accepts any
        # code (ConfirmForgotPassword), so the outbox records that the mail went, not a code.
        found = self.get(sub)
        message = {"kind": "passwordReset", "to": found.email if found else "", "userId": sub}
        append(self._outbox, message)

    def ready(self) -> bool:
        return True

    def send_email_code(self, sub: str, to: str, code: str, until: str) -> None:
        """The code confirming a requested email change (chalicelib/adapters/ses_mailer.py on AWS)."""
        message = {"kind": "emailVerification", "to": to, "userId": sub, "code": code, "validUntil": until}
        append(self._outbox, message)
