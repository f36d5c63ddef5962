"""The sharing device's side of the channel: Noise initiator, author of frame 1."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from tigress.crypto.cpace import (
    CPaceConfirmationError,
    CPaceError,
)
from tigress.crypto.errors import CryptoError
from tigress.crypto.padding import pad
from tigress.protocol.endpoint import (
    DEFAULT_PIN_ATTEMPTS,
    DEFAULT_SUITE_NAME,
    ChannelEndpoint,
    Phase,
    Role,
    normalise_pin,
    secret_or_placeholder,
)
from tigress.protocol.events import (
    Action,
    Deliver,
    Established,
    FailureReason,
    ProtocolStateError,
    SendFrame,
)
from tigress.protocol.frames import (
    Frame,
    FrameKind,
)
from tigress.protocol.messages import (
    Cancel,
    CancelReason,
    Error,
    Message,
    Offer,
    PinConfirm,
    PinReply,
    PinStart,
    Provision,
    ProvisioningInfo,
    encode_message,
)


class Sender(ChannelEndpoint):
    """The sharing device: Noise initiator, author of the invitation's first frame."""

    role = Role.SENDER
    _own_handshake_kind = FrameKind.HANDSHAKE_1
    _peer_handshake_kind = FrameKind.HANDSHAKE_2
    _own_data_kind = FrameKind.SENDER_DATA
    _peer_data_kind = FrameKind.RECEIVER_DATA

    def __init__(
        self,
        *,
        secret: bytes,
        channel_id: bytes,
        suite: str = DEFAULT_SUITE_NAME,
        pin: str | None = None,
        pin_attempts: int = DEFAULT_PIN_ATTEMPTS,
        ephemeral: bytes | None = None,
        pin_scalars: Sequence[bytes] = (),
    ) -> None:
        super().__init__(
            secret=secret,
            channel_id=channel_id,
            suite=suite,
            ephemeral=ephemeral,
            pin_scalars=pin_scalars,
        )
        self._pin = normalise_pin(pin) if pin is not None else None
        if pin is not None:
            if not 1 <= pin_attempts <= 10:
                raise ProtocolStateError("pin_attempts must be between 1 and 10")
            self._pin_allowed = pin_attempts

    def start(self, provision: ProvisioningInfo | None = None) -> list[Action]:
        """Write the first frame (the invitation's content).  With a PIN, data must wait."""
        if self.phase != Phase.NEW:
            raise ProtocolStateError(f"start() once, on a new sender (now {self.phase.value})")
        if self._pin is not None and provision is not None:
            raise ProtocolStateError(
                "with a PIN, send provisioning data only after the PIN verified"
            )
        offer = Offer(
            pin_attempts=self._pin_allowed if self._pin is not None else None, provision=provision
        )
        self._handshake = self._new_handshake(initiator=True)
        body = self._handshake.write_message(pad(encode_message(offer)))
        self._first_hash = self._handshake.handshake_hash
        self.phase = Phase.AWAITING_REPLY
        return [SendFrame(self._header(FrameKind.HANDSHAKE_1, 0).header + body)]

    def cancel(
        self, reason: str = CancelReason.USER_CANCELLED.value, message: str | None = None
    ) -> list[Action]:
        # Before the receiver's reply (or while its PIN confirmation may already be re-keyed in
        # flight) no frame can reach it safely: the driver deletes the mailbox instead.
        if self.phase in (Phase.NEW, Phase.AWAITING_REPLY, Phase.PIN_EXCHANGE):
            self._require_open("cancel")
            return self._fail(
                FailureReason.CANCELLED, f"cancelled by this side ({reason})", notify=False
            )
        return super().cancel(reason, message)

    def _receive_handshake(self, frame: Frame) -> list[Action]:
        assert self._handshake is not None
        try:
            padded = self._handshake.read_message(frame.body)
        except CryptoError:
            return self._fail(
                FailureReason.WRONG_SECRET, "the receiver's handshake frame did not authenticate"
            )
        self._complete_handshake()
        self.phase = Phase.PIN_EXCHANGE if self._pin is not None else Phase.ESTABLISHED
        actions: list[Action] = [] if self._pin is not None else [Established()]
        return actions + self._dispatch_plaintext(padded)

    def _on_message(self, message: Message) -> list[Action]:
        common = self._on_common_message(message)
        if common is not None:
            return common
        if self.phase == Phase.PIN_EXCHANGE:
            if isinstance(message, PinStart):
                return self._answer_pin(message)
            if isinstance(message, PinConfirm):
                return self._check_pin_confirmation(message)
            return self._unexpected(message)
        if isinstance(message, Provision):
            return [Deliver(message.info)]
        return self._unexpected(message)

    def _answer_pin(self, start: PinStart) -> list[Action]:
        assert self._pin is not None
        if self._pin_used >= self._pin_allowed:
            actions = [
                SendFrame(
                    self._encrypt_data(Cancel(reason=CancelReason.PIN_ATTEMPTS_EXCEEDED.value))
                )
            ]
            return actions + self._fail(
                FailureReason.PIN_ATTEMPTS_EXCEEDED,
                f"the receiver used all {self._pin_allowed} PIN attempts; the share is void",
                notify=False,
            )
        self._pin_used += 1
        party = self._pin_session(self._pin, initiator=False)
        try:
            result = party.process(start.element)
        except CPaceError as exc:
            return self._fail(
                FailureReason.MALFORMED, f"invalid PIN message from the receiver: {exc}"
            )
        self._pin_pending = result
        reply = PinReply(element=party.message, confirmation=result.own_confirmation)
        return [SendFrame(self._encrypt_data(reply))]

    def _check_pin_confirmation(self, confirm: PinConfirm) -> list[Action]:
        result = self._pin_pending
        if result is None:
            return self._unexpected(confirm)
        try:
            result.verify_peer_confirmation(confirm.confirmation)
        except CPaceConfirmationError:
            actions = [SendFrame(self._encrypt_data(Error(code=FailureReason.PIN_MISMATCH.value)))]
            return actions + self._fail(
                FailureReason.PIN_MISMATCH,
                "the receiver's PIN confirmation did not verify",
                notify=False,
            )
        self._rekey_with_pin(result.isk)
        self.phase = Phase.ESTABLISHED
        return [Established()]

    def _role_snapshot(self) -> dict[str, Any]:
        return {"pin": None if self._pin is None else self._pin.decode("utf-8")}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> Sender:
        return cls(
            secret=secret_or_placeholder(state),
            channel_id=base64.b64decode(state["channel"], validate=True),
            suite=state["suite"],
            pin=state["pin"],
            pin_attempts=state["pin_allowed"] or DEFAULT_PIN_ATTEMPTS,
        )
