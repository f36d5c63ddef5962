"""What the state machines ask their driver to do, and why a transfer failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tigress.protocol.errors import ProtocolError
from tigress.protocol.messages import ProvisioningInfo


class FailureReason(StrEnum):
    WRONG_SECRET = "wrong-secret"  # noqa: S105 - a reason code, not a secret  # handshake did not authenticate: wrong secret or altered frame
    FOREIGN_MESSAGE = "foreign-message"  # a frame of another mailbox or session
    REFLECTED = "reflected"  # our own frame handed back to us as the peer's
    REPLAYED = "replayed"  # a frame we already processed, delivered again
    MISSING_MESSAGE = "missing-message"  # a gap: a frame dropped, reordered or truncated away
    TAMPERED = "tampered"  # authentication of a data frame failed
    MALFORMED = "malformed"  # not a frame, bad padding, or an invalid message
    UNEXPECTED_MESSAGE = "unexpected-message"  # a valid message that is not allowed now
    PIN_ATTEMPTS_EXCEEDED = "pin-attempts-exceeded"
    PIN_MISMATCH = "pin-mismatch"  # the peer's PIN confirmation did not verify
    PEER_CANCELLED = "peer-cancelled"
    PEER_ERROR = "peer-error"
    CANCELLED = "cancelled"  # this side cancelled
    EXPIRED = "expired"


class ProtocolStateError(ProtocolError):
    """The local application called something the current state does not allow."""


class TransferFailed(ProtocolError):
    """Raised by drivers that prefer exceptions to a :class:`Failed` action."""

    def __init__(self, reason: FailureReason, detail: str, peer_code: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.peer_code = peer_code


@dataclass(frozen=True)
class SendFrame:
    """Deliver these bytes to the peer (relay UpdateMailbox, or the direct connection)."""

    frame: bytes = field(repr=False)


@dataclass(frozen=True)
class Established:
    """The channel is authenticated (and the PIN verified, if one was required)."""


@dataclass(frozen=True)
class Deliver:
    """The peer sent Provisioning Information."""

    info: ProvisioningInfo


@dataclass(frozen=True)
class AskPin:
    """Ask the user for the share's PIN; ``retry`` after a wrong guess."""

    attempts_left: int
    retry: bool


@dataclass(frozen=True)
class PeerDone:
    """The peer finished successfully; the transfer is complete."""


@dataclass(frozen=True)
class Failed:
    reason: FailureReason
    detail: str
    peer_code: str | None = None

    def to_exception(self) -> TransferFailed:
        return TransferFailed(self.reason, self.detail, self.peer_code)


Action = SendFrame | Established | Deliver | AskPin | PeerDone | Failed
