"""The contract between a vertical and the transfer runner.

A vertical turns the generic channel into a credential transfer: the sender's flow writes the
opening Provisioning Information and answers what the receiver sends; the receiver's flow answers
and, at the end, installs a credential in the wallet.  Flows hold their own small state, which the
runner persists with the transfer (``to_dict``/``from_dict``) so a transfer survives restarts.
Flows may do I/O with their provisioning entity (the hotel), never with the relay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tigress.protocol.invitation import Vertical as InvitationHint
from tigress.protocol.messages import ProvisioningInfo
from tigress.wallet.api import WalletView


class VerticalError(Exception):
    """A vertical-level failure (bad request from the peer, entity refused, policy violated).

    ``code`` is sent to the peer as the channel ``error`` code (lowercase-hyphenated).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Step:
    """What a flow wants next: a reply to send, and/or the end of its part of the transfer."""

    reply: ProvisioningInfo | None = None
    finished: bool = False
    credential_id: str | None = None  # the credential installed (receiver) or issued (sender)


class SenderFlow(Protocol):
    def opening(self) -> ProvisioningInfo:
        """The first Provisioning Information (in the offer, or right after the PIN verified)."""
        ...

    def on_message(self, info: ProvisioningInfo) -> Step: ...

    def to_dict(self) -> Mapping[str, Any]: ...


class ReceiverFlow(Protocol):
    def on_message(self, info: ProvisioningInfo) -> Step: ...

    def to_dict(self) -> Mapping[str, Any]: ...


class VerticalSpec(Protocol):
    """One credential type: how to share it and how to receive it."""

    name: str  # "home" | "hotel" | "car"
    hint: InvitationHint  # the invitation's ?v= letter

    def sender_flow(
        self, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> SenderFlow: ...

    def restore_sender_flow(self, wallet: WalletView, state: Mapping[str, Any]) -> SenderFlow: ...

    def receiver_flow(self, wallet: WalletView) -> ReceiverFlow: ...

    def restore_receiver_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> ReceiverFlow: ...

    def accepts(self, info: ProvisioningInfo) -> bool:
        """Whether this vertical understands an opening message of this format."""
        ...


@dataclass(frozen=True)
class UnlockResult:
    """What an access point answered when a credential was presented: open, or why not."""

    opened: bool
    reason: str
