"""The receiving device's side of the channel: Noise responder."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from tigress.crypto.cpace import (
    CPaceAbort,
    CPaceConfirmationError,
    CPaceError,
    CPaceParty,
)
from tigress.crypto.errors import CryptoError, PaddingError
from tigress.crypto.padding import pad, unpad
from tigress.protocol.endpoint import (
    ChannelEndpoint,
    Phase,
    Role,
    normalise_pin,
    secret_or_placeholder,
)
from tigress.protocol.events import (
    Action,
    AskPin,
    Deliver,
    Established,
    FailureReason,
    ProtocolStateError,
    SendFrame,
)
from tigress.protocol.frames import (
    SUITE_IDS,
    SUITES,
    Frame,
    FrameKind,
)
from tigress.protocol.messages import (
    Cancel,
    CancelReason,
    Done,
    Message,
    MessageError,
    Offer,
    PinConfirm,
    PinReply,
    PinStart,
    Provision,
    decode_message,
    encode_message,
)


class Receiver(ChannelEndpoint):
    """The receiving device: Noise responder; its first message completes the handshake."""

    role = Role.RECEIVER
    _own_handshake_kind = FrameKind.HANDSHAKE_2
    _peer_handshake_kind = FrameKind.HANDSHAKE_1
    _own_data_kind = FrameKind.RECEIVER_DATA
    _peer_data_kind = FrameKind.SENDER_DATA

    def __init__(
        self,
        *,
        secret: bytes,
        channel_id: bytes,
        ephemeral: bytes | None = None,
        pin_scalars: Sequence[bytes] = (),
    ) -> None:
        super().__init__(
            secret=secret, channel_id=channel_id, ephemeral=ephemeral, pin_scalars=pin_scalars
        )

    def submit_pin(self, pin: str) -> list[Action]:
        """Answer an :class:`AskPin` with the user's PIN."""
        if self.phase != Phase.AWAITING_PIN:
            raise ProtocolStateError(f"no PIN was asked for (the transfer is {self.phase.value})")
        if self._pin_used >= self._pin_allowed:
            raise ProtocolStateError("no PIN attempts are left")
        self._pin_used += 1
        party = self._pin_session(normalise_pin(pin), initiator=True)
        self._pin_party = party.to_dict()
        start = PinStart(element=party.message)
        if self._send is None:
            actions = self._write_reply(start)
        else:
            actions = [SendFrame(self._encrypt_data(start))]
        self.phase = Phase.PIN_EXCHANGE
        return actions

    def cancel(
        self, reason: str = CancelReason.USER_CANCELLED.value, message: str | None = None
    ) -> list[Action]:
        if self.phase in (Phase.REPLY_DUE, Phase.AWAITING_PIN) and self._send is None:
            # Completing the handshake with a cancel tells the sender why.
            actions = self._write_reply(Cancel(reason=reason, message=message))
            return actions + self._fail(
                FailureReason.CANCELLED, f"cancelled by this side ({reason})", notify=False
            )
        if self.phase == Phase.PIN_EXCHANGE:
            actions = [SendFrame(self._encrypt_data(Cancel(reason=reason, message=message)))]
            return actions + self._fail(
                FailureReason.CANCELLED, f"cancelled by this side ({reason})", notify=False
            )
        return super().cancel(reason, message)

    def _reply_due(self) -> bool:
        return self.phase == Phase.REPLY_DUE

    def _write_reply(self, message: Message) -> list[Action]:
        """Handshake frame 2, carrying the receiver's first message."""
        assert self._handshake is not None
        body = self._handshake.write_message(pad(encode_message(message)))
        self._complete_handshake()
        if self.phase == Phase.REPLY_DUE:
            self.phase = Phase.ESTABLISHED
        if isinstance(message, Done):
            self._close(Phase.FINISHED)
        return [SendFrame(self._header(FrameKind.HANDSHAKE_2, 0).header + body)]

    def _receive_handshake(self, frame: Frame) -> list[Action]:
        suite = SUITES[frame.suite_id]
        self._suite_name = suite
        self._handshake = self._new_handshake(initiator=False)
        try:
            padded = self._handshake.read_message(frame.body)
        except CryptoError:
            self._handshake = None
            return self._fail(
                FailureReason.WRONG_SECRET,
                "the invitation's first frame did not decrypt: "
                "wrong secret, or the frame was altered",
            )
        self._first_hash = self._handshake.handshake_hash
        try:
            message = decode_message(unpad(padded))
        except (PaddingError, MessageError) as exc:
            return self._fail(FailureReason.MALFORMED, str(exc))
        if not isinstance(message, Offer):
            return self._unexpected(message)
        if message.pin_attempts is not None:
            self._pin_allowed = message.pin_attempts
            self.phase = Phase.AWAITING_PIN
            return [AskPin(attempts_left=self._pin_allowed, retry=False)]
        self.phase = Phase.REPLY_DUE
        actions: list[Action] = [Established()]
        if message.provision is not None:
            actions.append(Deliver(message.provision))
        return actions

    def _on_message(self, message: Message) -> list[Action]:
        common = self._on_common_message(message)
        if common is not None:
            return common
        if self.phase == Phase.PIN_EXCHANGE and isinstance(message, PinReply):
            return self._check_pin_reply(message)
        if self.phase == Phase.ESTABLISHED and isinstance(message, Provision):
            return [Deliver(message.info)]
        return self._unexpected(message)

    def _check_pin_reply(self, reply: PinReply) -> list[Action]:
        assert self._pin_party is not None
        try:
            result = CPaceParty.from_dict(self._pin_party).process(reply.element)
            result.verify_peer_confirmation(reply.confirmation)
        except CPaceAbort as exc:
            return self._fail(
                FailureReason.MALFORMED, f"invalid PIN message from the sender: {exc}"
            )
        except CPaceConfirmationError:
            self._pin_party = None
            left = self._pin_allowed - self._pin_used
            if left <= 0:
                actions = [
                    SendFrame(
                        self._encrypt_data(Cancel(reason=CancelReason.PIN_ATTEMPTS_EXCEEDED.value))
                    )
                ]
                return actions + self._fail(
                    FailureReason.PIN_ATTEMPTS_EXCEEDED,
                    "the PIN was wrong too many times",
                    notify=False,
                )
            self.phase = Phase.AWAITING_PIN
            return [AskPin(attempts_left=left, retry=True)]
        except CPaceError as exc:
            return self._fail(
                FailureReason.MALFORMED, f"invalid PIN message from the sender: {exc}"
            )
        confirm = SendFrame(self._encrypt_data(PinConfirm(confirmation=result.own_confirmation)))
        self._rekey_with_pin(result.isk)
        self.phase = Phase.ESTABLISHED
        return [confirm, Established()]

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> Receiver:
        receiver = cls(
            secret=secret_or_placeholder(state),
            channel_id=base64.b64decode(state["channel"], validate=True),
        )
        if state["suite"] not in SUITE_IDS:
            raise ValueError("unknown suite")
        receiver._suite_name = state["suite"]
        return receiver
