"""The mail of a requested email change on AWS: Amazon SES (v2) sends the code the API made.

Cognito cannot send it: its own code for a new address is confirmed with the user's access token
(VerifyUserAttribute), which the API never sees (it is given ID tokens). So the API makes the
code, keeps its hash with the pending change, and SES mails it from the stage's sender
(MAIL_FROM, an address or domain verified in SES). The local stages write it to the outbox
instead (chalicelib/adapters/local_outbox.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters import aws
from chalicelib.domain.errors import ServiceUnavailable

SUBJECT = "Confirm your new email address"
BODY = (
    "Someone (we hope you) asked to make this address the sign-in of their account.\n\n"
    "Your code is {code}. It is valid until {until} (UTC).\n\n"
    "If this was not you, ignore this message: nothing changes without the code."
)


class SesMailer(aws.ClientHolder):
    service = "sesv2"

    def __init__(self, sender: str, client: Any | None = None, *, make: Callable[[], Any] | None = None):
        super().__init__(client, make=make)
        self._sender = sender

    def ready(self) -> bool:
        return bool(self._sender)

    def send_email_code(self, sub: str, to: str, code: str, until: str) -> None:
        if not self._sender:
            raise ServiceUnavailable()  # the service asks `ready` first
        aws.call(
            self.client,
            "send_email",
            FromEmailAddress=self._sender,
            Destination={"ToAddresses": [to]},
            Content={
                "Simple": {
                    "Subject": {"Data": SUBJECT},
                    "Body": {"Text": {"Data": BODY.format(code=code, until=until)}},
                }
            },
        )
