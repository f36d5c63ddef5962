"""Relay errors as typed exceptions whose message is one plain sentence for a person.

The relay answers errors as RFC 9457 problem documents with stable ``type`` URIs; each maps to a
class here.  ``str(error)`` is what a user should read; ``problem_type`` and ``status`` are for
programs, ``detail`` keeps the relay's own wording for logs.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

PROBLEM_BASE = "https://tigress.dev/problems/"


class ProblemFields(TypedDict, total=False):
    """What a relay error carries besides its message (see :class:`RelayError`)."""

    status: int | None
    problem_type: str | None
    detail: str | None


class RelayError(Exception):
    """Something went wrong talking to the relay."""

    default_message = "The relay refused the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.status = status
        self.problem_type = problem_type
        self.detail = detail


class RelayUnavailable(RelayError):
    default_message = "The relay could not be reached; check the connection and try again later."


class RelayProtocolError(RelayError):
    default_message = "The relay sent an answer this program does not understand."


class RelayRejected(RelayError):
    """400/415: the request was malformed (a bug or an incompatible relay)."""

    default_message = "The relay rejected the request as invalid."


class WrongClaim(RelayError):
    default_message = "This device is not the one bound to the share."


class AccessDenied(RelayError):
    default_message = "The share does not allow this device to do that."


class MailboxNotFound(RelayError):
    default_message = (
        "The share was not found: it has expired, was cancelled, or the link is wrong."
    )


class MailboxGone(RelayError):
    default_message = "The share was cancelled or has expired."


class MailboxConflict(RelayError):
    default_message = (
        "Another device has already accepted this share; ask the sender for a new invitation."
    )


class MailboxFull(RelayError):
    default_message = "The share holds too many messages; the transfer cannot continue."


class PayloadTooLarge(RelayError):
    default_message = "The message is too large for the relay."


class RateLimited(RelayError):
    default_message = "The relay is busy (too many requests); try again in a moment."

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        **problem: Unpack[ProblemFields],
    ) -> None:
        super().__init__(message, **problem)
        self.retry_after = retry_after


class RelayUntrusted(RelayError):
    """The receiver's checks refused the relay named in an invitation."""

    default_message = "The invitation points to a relay this device does not trust."


_BY_TYPE: dict[str, type[RelayError]] = {
    "malformed-json": RelayRejected,
    "invalid-field": RelayRejected,
    "invalid-header": RelayRejected,
    "invalid-query": RelayRejected,
    "invalid-claim": RelayRejected,
    "invalid-attestation": RelayRejected,
    "unsupported-media-type": RelayRejected,
    "wrong-claim": WrongClaim,
    "access-denied": AccessDenied,
    "mailbox-not-found": MailboxNotFound,
    "not-found": MailboxNotFound,
    "already-bound": MailboxConflict,
    "mailbox-full": MailboxFull,
    "mailbox-deleted": MailboxGone,
    "body-too-large": PayloadTooLarge,
    "rate-limited": RateLimited,
    "store-unavailable": RelayUnavailable,
}

_BY_STATUS: dict[int, type[RelayError]] = {
    400: RelayRejected,
    401: WrongClaim,
    403: AccessDenied,
    404: MailboxNotFound,
    409: MailboxConflict,
    410: MailboxGone,
    413: PayloadTooLarge,
    415: RelayRejected,
    429: RateLimited,
}


def error_for(status: int, problem: object, *, retry_after: float | None = None) -> RelayError:
    """The typed error for a relay's error response (``problem`` is its parsed JSON, or None)."""
    problem_type: str | None = None
    detail: str | None = None
    if isinstance(problem, dict):
        raw_type = problem.get("type")
        if isinstance(raw_type, str):
            problem_type = raw_type
        raw_detail = problem.get("detail")
        if isinstance(raw_detail, str):
            detail = raw_detail[:500]
    short = (
        problem_type[len(PROBLEM_BASE) :]
        if problem_type and problem_type.startswith(PROBLEM_BASE)
        else None
    )
    cls = (_BY_TYPE.get(short) if short else None) or _BY_STATUS.get(status)
    if cls is None:
        cls = RelayUnavailable if status >= 500 else RelayProtocolError
    fields: ProblemFields = {"status": status, "problem_type": problem_type, "detail": detail}
    if cls is RateLimited:
        return RateLimited(retry_after=retry_after, **fields)
    return cls(**fields)


class TransferError(Exception):
    """The transfer runner cannot do what was asked (bad invitation, unknown vertical, ...)."""
