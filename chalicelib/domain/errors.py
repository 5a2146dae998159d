"""Domain errors. They say what went wrong; chalicelib/web/errors.py says which status that is
(with the errors of the HTTP edge itself: a body too large, a reused Idempotency-Key, ...)."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error whose message is safe to show a client."""

    message = "Request failed"

    def __init__(self, message: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or []


class ValidationError(AppError):
    message = "Invalid request"


class InvalidCursor(ValidationError):
    message = "Invalid cursor"


class Unauthorized(AppError):
    message = "Unauthorized"


class Forbidden(AppError):
    message = "Forbidden"


class UserNotFound(AppError):
    message = "User not found"


class AvatarNotFound(AppError):
    message = "No avatar uploaded for this user"


class EmailAlreadyExists(AppError):
    message = "Email already in use"


class UserAlreadyExists(AppError):
    """A create hit an existing userId (a retried profile create, or a race)."""

    message = "User already exists"


class LastAdmin(AppError):
    """The change would leave no enabled admin: nobody could manage users any more."""

    message = "At least one enabled admin must remain; promote or enable another admin first"


class ConcurrentModification(AppError):
    """The record changed between our read and our conditional write, more than we retry."""

    message = "The user was modified concurrently; retry the request"


class PreconditionFailed(AppError):
    """If-Match named a version of the user that is no longer (or never was) the stored one."""

    message = "The user has changed since you read it (ETag mismatch); read it again and retry"


class NoneMatchFailed(PreconditionFailed):
    """If-None-Match named the stored version, or was `*` and the user exists."""

    message = "The user exists at a version If-None-Match names (for *: it exists); nothing was changed"


class ImportFileRefused(ValidationError):
    """An import file as a whole cannot be imported (its header, its encoding, its size)."""

    message = "The import file cannot be read"


class JobNotFound(AppError):
    message = "Job not found"


class JobFinished(AppError):
    """A cancel of a bulk job that has ended (done or failed): there is nothing left to stop."""

    message = "The job has finished; there is nothing to cancel"


class ServiceUnavailable(AppError):
    """AWS could not serve the request after retries. For a write the outcome is unknown: a
    timed-out attempt may have been applied."""

    message = (
        "Service temporarily unavailable; retry later. If this was a write, it may or may not have been "
        "applied: retry it with the same Idempotency-Key to have it applied exactly once"
    )


class IdempotencyKeyReused(AppError):
    """The Idempotency-Key was first used with another request body or operation."""

    message = "This Idempotency-Key was already used with a different request"


class IdempotentRequestInFlight(AppError):
    """A request with the same Idempotency-Key holds its lock: still being processed, or ended
    without giving the lock up (a 503 whose unlock failed too). `retry_after_s`: the whole
    seconds until the lock expires, after which a retry with the key runs; at least 1."""

    message = "A request with this Idempotency-Key is still in progress"

    def __init__(self, retry_after_s: int):
        self.retry_after_s = max(1, retry_after_s)
        unit = "second" if self.retry_after_s == 1 else "seconds"
        super().__init__(f"{self.message}; retry in {self.retry_after_s} {unit}")


class SignInStateConflict(AppError):
    """The sign-in is not in a state the action applies to (an invitation to a user who has signed
    in, a password reset of one who never did, a disabled user)."""

    message = "The user's sign-in is not in a state this action applies to"


class NoEmailChangePending(AppError):
    """A code was given, but no email change is pending (none asked for, confirmed already,
    replaced by an admin's change, or expired)."""

    message = "No email change is pending; ask for it again with PUT /users/me"


class InvalidEmailCode(ValidationError):
    """The code does not confirm the pending email change (wrong, or too many attempts)."""

    message = "The code is not the one mailed to the new address"
