"""How a transfer's end is told to a person: status and one plain sentence per failure reason."""

from __future__ import annotations

from tigress.protocol.events import Failed, FailureReason
from tigress.wallet.transfers import TransferStatus

_TAMPERING = (
    "The relay altered, replayed or dropped a message, so the transfer was stopped to keep "
    "the credential safe; ask for a new invitation."
)

_SENTENCES: dict[FailureReason, str] = {
    FailureReason.WRONG_SECRET: (
        "The invitation does not match this share (the link is incomplete or was altered); "
        "ask the sender to send it again."
    ),
    FailureReason.FOREIGN_MESSAGE: _TAMPERING,
    FailureReason.REFLECTED: _TAMPERING,
    FailureReason.REPLAYED: _TAMPERING,
    FailureReason.MISSING_MESSAGE: _TAMPERING,
    FailureReason.TAMPERED: _TAMPERING,
    FailureReason.MALFORMED: (
        "The other device (or the relay) sent something unreadable, so the transfer was stopped."
    ),
    FailureReason.UNEXPECTED_MESSAGE: (
        "The other device did not follow the transfer protocol, so the transfer was stopped."
    ),
    FailureReason.PIN_ATTEMPTS_EXCEEDED: (
        "The PIN was entered wrongly too many times, so the share is void; "
        "ask the sender for a new invitation."
    ),
    FailureReason.PIN_MISMATCH: "The PIN did not match, so the transfer was stopped.",
    FailureReason.CANCELLED: "You cancelled the transfer.",
    FailureReason.EXPIRED: "The share expired before the transfer completed.",
}

_PEER_CODES: dict[str, str] = {
    "user-cancelled": "the person cancelled it",
    "declined": "it was declined",
    "expired": "it expired",
    "pin-attempts-exceeded": "the PIN was entered wrongly too many times",
    "revoked": "the credential was revoked",
}


def describe_failure(failure: Failed) -> tuple[TransferStatus, str]:
    """The status a failed transfer gets and the sentence shown to the user."""
    if failure.reason == FailureReason.PEER_CANCELLED:
        why = _PEER_CODES.get(failure.peer_code or "", f"reason: {failure.peer_code}")
        return TransferStatus.CANCELLED, f"The other device cancelled the transfer ({why})."
    if failure.reason == FailureReason.PEER_ERROR:
        code = failure.peer_code or "unknown"
        if code in {reason.value for reason in FailureReason}:
            inner = _SENTENCES.get(FailureReason(code), "")
            return TransferStatus.FAILED, f"The other device stopped the transfer ({code}). {inner}"
        return TransferStatus.FAILED, f"The other device stopped the transfer ({code})."
    if failure.reason == FailureReason.CANCELLED:
        return TransferStatus.CANCELLED, _SENTENCES[failure.reason]
    return TransferStatus.FAILED, _SENTENCES.get(failure.reason, "The transfer failed.")
