"""The invitation an admin's `POST /users` makes Cognito send, rendered once from infra/limits.json:
its text, and the temporary password's validity taken from the pool's own password policy, so the
mail can never promise a validity the pool does not give. Both templates and the local stack's
outbox use what this renders."""

from __future__ import annotations

from typing import Any

# Where the message says how long the temporary password is valid.
VALIDITY = "{temporary_password_validity}"


def validity(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def invitation(limits: dict[str, Any]) -> dict[str, str]:
    """Cognito's InviteMessageTemplate (email): the subject, and the message with the validity of
    password_policy.TemporaryPasswordValidityDays written in. {username} and {####} stay for Cognito."""
    text = limits["invitation"]
    days = int(limits["password_policy"]["TemporaryPasswordValidityDays"])
    return {
        "EmailSubject": text["email_subject"],
        "EmailMessage": text["email_message"].replace(VALIDITY, validity(days)),
    }
