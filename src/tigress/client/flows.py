"""What the runner needs of a vertical, stated structurally.

The import rules keep ``client`` from importing ``tigress.verticals``; these protocols mirror
the contract of ``tigress.verticals.base`` (``VerticalSpec``, ``SenderFlow``, ``ReceiverFlow``,
``Step``), so any vertical written against that contract fits here unchanged, and tests can pass
their own small flows.  A flow signals a vertical-level refusal by raising an exception with a
string ``code`` attribute (``VerticalError``); the runner sends that code to the peer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tigress.protocol.invitation import Vertical
from tigress.protocol.messages import ProvisioningInfo
from tigress.wallet.api import WalletView


class StepLike(Protocol):
    @property
    def reply(self) -> ProvisioningInfo | None: ...

    @property
    def finished(self) -> bool: ...

    @property
    def credential_id(self) -> str | None: ...


class SenderFlowLike(Protocol):
    def opening(self) -> ProvisioningInfo: ...

    def on_message(self, info: ProvisioningInfo) -> StepLike: ...

    def to_dict(self) -> Mapping[str, Any]: ...


class ReceiverFlowLike(Protocol):
    def on_message(self, info: ProvisioningInfo) -> StepLike: ...

    def to_dict(self) -> Mapping[str, Any]: ...


class VerticalSpecLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def hint(self) -> Vertical: ...

    def sender_flow(
        self, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> SenderFlowLike: ...

    def restore_sender_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> SenderFlowLike: ...

    def receiver_flow(self, wallet: WalletView) -> ReceiverFlowLike: ...

    def restore_receiver_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> ReceiverFlowLike: ...

    def accepts(self, info: ProvisioningInfo) -> bool: ...


def vertical_error_code(exc: BaseException) -> str | None:
    """The channel code of a vertical's refusal, or None for any other exception."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else None
