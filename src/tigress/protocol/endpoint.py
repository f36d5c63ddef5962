"""What the sender and the receiver of a tigress channel share (sans-IO).

Framing, sequence checks, encryption, PIN re-keying, termination and snapshots live here;
:mod:`tigress.protocol.sender` and :mod:`tigress.protocol.receiver` add each role's handshake
and message rules.  State snapshots hold channel keys, the PSK and, on the sender, the PIN.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Self

from tigress.crypto.cpace import (
    CPaceParty,
    CPaceResult,
)
from tigress.crypto.errors import CryptoError, PaddingError
from tigress.crypto.kdf import hkdf_sha256
from tigress.crypto.noise import CipherState, HandshakeState, Suite
from tigress.crypto.padding import pad, unpad
from tigress.protocol import codec
from tigress.protocol.events import (
    Action,
    Failed,
    FailureReason,
    PeerDone,
    ProtocolStateError,
    SendFrame,
)
from tigress.protocol.frames import (
    SUITE_IDS,
    SUITES,
    Frame,
    FrameError,
    FrameKind,
    channel_tag,
    parse_frame,
)
from tigress.protocol.messages import (
    Cancel,
    CancelReason,
    Done,
    Error,
    Message,
    MessageError,
    Provision,
    ProvisioningInfo,
    decode_message,
    encode_message,
)

DEFAULT_SUITE_NAME = "25519_AESGCM_SHA256"
DEFAULT_PIN_ATTEMPTS = 3
SECRET_SIZE = 32
STATE_VERSION = 1
MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 64


class Role(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"


class Phase(StrEnum):
    NEW = "new"  # sender: not started; receiver: no frame yet
    AWAITING_REPLY = "awaiting-reply"  # sender: handshake 1 written
    REPLY_DUE = "reply-due"  # receiver: handshake 1 read, its first message completes the handshake
    AWAITING_PIN = "awaiting-pin"  # receiver: the user must enter the PIN
    PIN_EXCHANGE = "pin-exchange"  # CPace messages in flight
    ESTABLISHED = "established"
    FINISHED = "finished"
    FAILED = "failed"


_OPEN_PHASES = {
    Phase.NEW,
    Phase.AWAITING_REPLY,
    Phase.REPLY_DUE,
    Phase.AWAITING_PIN,
    Phase.PIN_EXCHANGE,
    Phase.ESTABLISHED,
}


def prologue_for(channel_id: bytes) -> bytes:
    return b"tigress/v1 prologue" + len(channel_id).to_bytes(2, "big") + channel_id


def normalise_pin(pin: str) -> bytes:
    """PINs compare as NFKC text (so full-width digits equal ASCII ones), stripped of spaces."""
    text = unicodedata.normalize("NFKC", pin).strip()
    if not MIN_PIN_LENGTH <= len(text) <= MAX_PIN_LENGTH:
        raise ProtocolStateError(
            f"a PIN must have {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} characters (got {len(text)})"
        )
    return text.encode("utf-8")


class ChannelEndpoint:
    """What both sides share: framing, sequence checks, encryption, PIN re-keying, snapshots."""

    role: Role
    _own_data_kind: FrameKind
    _peer_data_kind: FrameKind
    _own_handshake_kind: FrameKind
    _peer_handshake_kind: FrameKind

    def __init__(
        self,
        *,
        secret: bytes,
        channel_id: bytes,
        suite: str = DEFAULT_SUITE_NAME,
        ephemeral: bytes | None = None,
        pin_scalars: Sequence[bytes] = (),
    ) -> None:
        if len(secret) != SECRET_SIZE:
            raise ProtocolStateError(f"the invitation secret must be {SECRET_SIZE} bytes")
        if suite not in SUITE_IDS:
            raise ProtocolStateError(f"unsupported cipher suite {suite!r}")
        self._secret = secret
        self._channel_id = channel_id
        self._suite_name = suite
        self._tag = channel_tag(channel_id)
        self._ephemeral = ephemeral
        # Known-answer tests inject the CPace scalars; otherwise CPace draws them from the OS.
        self._pin_scalars = list(pin_scalars)
        self.phase = Phase.NEW
        self._handshake: HandshakeState | None = None
        self._send: CipherState | None = None
        self._recv: CipherState | None = None
        self._first_hash = b""  # handshake hash after frame 1: the CPace session id base
        self._handshake_hash = b""
        self._pin_allowed = 0
        self._pin_used = 0
        self._pin_party: dict[str, object] | None = None  # receiver: its CPace run in flight
        # sender: the CPace key and the receiver's expected confirmation tag, until it arrives
        self._pin_pending: CPaceResult | None = None
        self.failure: Failed | None = None

    # -- public inspection -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.phase in _OPEN_PHASES

    @property
    def handshake_hash(self) -> bytes:
        """Channel binding value, available once the handshake completed."""
        return self._handshake_hash

    def __repr__(self) -> str:
        return f"<{type(self).__name__} phase={self.phase.value} suite={self._suite_name}>"

    # -- shared driver inputs ----------------------------------------------------------------

    def receive(self, data: bytes) -> list[Action]:
        """Process one frame from the peer."""
        self._require_open("receive a frame")
        try:
            frame = parse_frame(data)
        except FrameError as exc:
            return self._fail(FailureReason.MALFORMED, str(exc))
        problem = self._check_header(frame)
        if problem is not None:
            return self._fail(*problem)
        if frame.kind == self._peer_handshake_kind:
            return self._receive_handshake(frame)
        return self._receive_data(frame)

    def send(self, info: ProvisioningInfo) -> list[Action]:
        """Send Provisioning Information to the peer."""
        return self._send_message(Provision(info))

    def finish(self) -> list[Action]:
        """Tell the peer this side finished successfully; ends the transfer."""
        actions = self._send_message(Done())
        self._close(Phase.FINISHED)
        return actions

    def cancel(
        self, reason: str = CancelReason.USER_CANCELLED.value, message: str | None = None
    ) -> list[Action]:
        """Stop the transfer; tells the peer why when the channel allows it."""
        self._require_open("cancel")
        actions: list[Action] = []
        if self._can_send_now():
            actions += self._send_message(Cancel(reason=reason, message=message))
        return actions + self._fail(
            FailureReason.CANCELLED, f"cancelled by this side ({reason})", notify=False
        )

    def expire(self) -> list[Action]:
        """The transfer's time ran out (or the mailbox is gone) before it completed."""
        self._require_open("expire")
        return self._fail(
            FailureReason.EXPIRED, "the transfer expired before it completed", notify=False
        )

    # -- role-specific hooks -----------------------------------------------------------------

    def _receive_handshake(self, frame: Frame) -> list[Action]:
        raise NotImplementedError

    def _on_message(self, message: Message) -> list[Action]:
        raise NotImplementedError

    def _reply_due(self) -> bool:
        """Whether this side's next message completes the handshake (receiver only)."""
        return False

    def _write_reply(self, message: Message) -> list[Action]:
        raise ProtocolStateError("only the receiver writes a handshake reply")

    def _can_send_now(self) -> bool:
        return self._send is not None and self.phase in (Phase.ESTABLISHED, Phase.AWAITING_PIN)

    # -- framing -----------------------------------------------------------------------------

    def _expected_peer_seq(self) -> int:
        if self._recv is None:
            return 0
        return self._recv.nonce + 1

    def _check_header(self, frame: Frame) -> tuple[FailureReason, str] | None:
        if frame.tag != self._tag:
            return FailureReason.FOREIGN_MESSAGE, "the frame belongs to another mailbox or session"
        if frame.kind in (self._own_data_kind, self._own_handshake_kind):
            return FailureReason.REFLECTED, "received this side's own frame back as the peer's"
        if self.phase != Phase.NEW and SUITES[frame.suite_id] != self._suite_name:
            return (
                FailureReason.TAMPERED,
                "the frame names a different cipher suite than the session",
            )
        expected = self._expected_peer_seq()
        handshake_pending = self._recv is None
        if handshake_pending and frame.kind == self._peer_data_kind:
            return (
                FailureReason.MISSING_MESSAGE,
                f"expected the peer's handshake frame but got its data frame #{frame.seq}",
            )
        if not handshake_pending and frame.kind == self._peer_handshake_kind:
            return FailureReason.REPLAYED, "the peer's handshake frame was delivered again"
        if frame.kind == self._peer_handshake_kind and frame.seq != 0:
            return FailureReason.MALFORMED, "a handshake frame must carry sequence number 0"
        if frame.seq < expected:
            return (
                FailureReason.REPLAYED,
                f"frame #{frame.seq} was already processed (expected #{expected})",
            )
        if frame.seq > expected:
            return (
                FailureReason.MISSING_MESSAGE,
                f"expected frame #{expected} but got #{frame.seq}: "
                "a frame was dropped or reordered",
            )
        return None

    def _header(self, kind: FrameKind, seq: int) -> Frame:
        return Frame(kind, SUITE_IDS[self._suite_name], self._tag, seq, b"")

    def _receive_data(self, frame: Frame) -> list[Action]:
        assert self._recv is not None
        try:
            padded = self._recv.decrypt_with_ad(frame.header, frame.body)
        except CryptoError:
            return self._fail(FailureReason.TAMPERED, f"frame #{frame.seq} failed authentication")
        return self._dispatch_plaintext(padded)

    def _dispatch_plaintext(self, padded: bytes) -> list[Action]:
        try:
            message = decode_message(unpad(padded))
        except (PaddingError, MessageError) as exc:
            return self._fail(FailureReason.MALFORMED, str(exc))
        return self._on_message(message)

    def _send_message(self, message: Message) -> list[Action]:
        self._require_open("send")
        if self._reply_due():
            return self._write_reply(message)
        if not self._can_send_now() or (
            isinstance(message, Provision | Done) and self.phase != Phase.ESTABLISHED
        ):
            raise ProtocolStateError(
                f"cannot send a {type(message).__name__} while {self.phase.value}"
            )
        return [SendFrame(self._encrypt_data(message))]

    def _encrypt_data(self, message: Message) -> bytes:
        assert self._send is not None
        header = self._header(self._own_data_kind, self._send.nonce + 1)
        body = self._send.encrypt_with_ad(header.header, pad(encode_message(message)))
        return header.header + body

    # -- handshake helpers -------------------------------------------------------------------

    def _new_handshake(self, initiator: bool) -> HandshakeState:
        return HandshakeState(
            f"Noise_NNpsk0_{self._suite_name}",
            initiator=initiator,
            prologue=prologue_for(self._channel_id),
            psks=[self._secret],
            e=self._ephemeral,
        )

    def _complete_handshake(self) -> None:
        assert self._handshake is not None and self._handshake.complete
        self._send, self._recv = self._handshake.split()
        self._handshake_hash = self._handshake.handshake_hash
        self._handshake = None
        self._ephemeral = None

    # -- PIN helpers -------------------------------------------------------------------------

    def _pin_session(self, pin: bytes, *, initiator: bool) -> CPaceParty:
        return CPaceParty.start(
            pin,
            ci=b"tigress/v1 pin" + self._channel_id,
            sid=self._first_hash + self._pin_used.to_bytes(1, "big"),
            ad=b"receiver" if initiator else b"sender",
            initiator=initiator,
            scalar=self._pin_scalars.pop(0) if self._pin_scalars else None,
        )

    def _rekey_with_pin(self, isk: bytes) -> None:
        """Make every later frame depend on the CPace key, in both directions."""
        assert self._send is not None and self._recv is not None
        labels = {Role.SENDER: b"s2r", Role.RECEIVER: b"r2s"}
        own, peer = (
            labels[self.role],
            labels[Role.RECEIVER if self.role == Role.SENDER else Role.SENDER],
        )
        self._send = self._rekeyed(self._send, isk, own)
        self._recv = self._rekeyed(self._recv, isk, peer)
        self._pin_party = None
        self._pin_pending = None

    def _rekeyed(self, cipher: CipherState, isk: bytes, label: bytes) -> CipherState:
        key, nonce = cipher.export()
        assert key is not None
        new_key = hkdf_sha256(isk, salt=key, info=b"tigress/v1 pin rekey " + label)
        cipher.wipe()
        return CipherState(Suite.parse(self._suite_name), key=new_key, nonce=nonce)

    # -- termination -------------------------------------------------------------------------

    def _require_open(self, what: str) -> None:
        if not self.is_open:
            raise ProtocolStateError(f"cannot {what}: the transfer is {self.phase.value}")

    def _fail(
        self,
        reason: FailureReason,
        detail: str,
        *,
        notify: bool = True,
        peer_code: str | None = None,
    ) -> list[Action]:
        actions: list[Action] = []
        if (
            notify
            and self._send is not None
            and self.phase in (Phase.ESTABLISHED, Phase.AWAITING_PIN)
        ):
            # Tell the peer why we stop; best effort, the relay may be the one misbehaving.
            actions.append(SendFrame(self._encrypt_data(Error(code=reason.value))))
        failure = Failed(reason, detail, peer_code)
        self.failure = failure
        self._close(Phase.FAILED)
        actions.append(failure)
        return actions

    def _close(self, phase: Phase) -> None:
        self.phase = phase
        for cipher in (self._send, self._recv):
            if cipher is not None:
                cipher.wipe()
        self._handshake = None
        self._pin_party = None
        self._pin_pending = None
        self._secret = b""

    def _on_common_message(self, message: Message) -> list[Action] | None:
        """Handle cancel/error/done, valid at any point after the handshake."""
        if isinstance(message, Cancel):
            return self._fail(
                FailureReason.PEER_CANCELLED,
                f"the peer cancelled ({message.reason})"
                + (f": {message.message}" if message.message else ""),
                notify=False,
                peer_code=message.reason,
            )
        if isinstance(message, Error):
            return self._fail(
                FailureReason.PEER_ERROR,
                f"the peer stopped with an error ({message.code})"
                + (f": {message.message}" if message.message else ""),
                notify=False,
                peer_code=message.code,
            )
        if isinstance(message, Done):
            self._close(Phase.FINISHED)
            return [PeerDone()]
        return None

    def _unexpected(self, message: Message) -> list[Action]:
        return self._fail(
            FailureReason.UNEXPECTED_MESSAGE,
            f"the peer sent a {type(message).__name__} message "
            f"while this side is {self.phase.value}",
        )

    # -- snapshots ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialise the whole state (holds keys: store it encrypted)."""
        return codec.encode(self._snapshot())

    def _snapshot(self) -> dict[str, Any]:
        def b64(data: bytes | None) -> str | None:
            return None if data is None else base64.b64encode(data).decode("ascii")

        def cipher(state: CipherState | None) -> dict[str, Any] | None:
            if state is None:
                return None
            key, nonce = state.export()
            return {"key": b64(key), "nonce": nonce}

        return {
            "v": STATE_VERSION,
            "role": self.role.value,
            "phase": self.phase.value,
            "suite": self._suite_name,
            "channel": b64(self._channel_id),
            "secret": b64(self._secret),
            "ephemeral": b64(self._ephemeral),
            "handshake": None if self._handshake is None else self._handshake.to_dict(),
            "send": cipher(self._send),
            "recv": cipher(self._recv),
            "h1": b64(self._first_hash),
            "h": b64(self._handshake_hash),
            "pin_allowed": self._pin_allowed,
            "pin_used": self._pin_used,
            "pin_party": self._pin_party,
            "pin_pending": None
            if self._pin_pending is None
            else {
                "isk": b64(self._pin_pending.isk),
                "expect": b64(self._pin_pending.expected_peer_confirmation),
            },
            "failure": None
            if self.failure is None
            else {
                "reason": self.failure.reason.value,
                "detail": self.failure.detail,
                "peer": self.failure.peer_code,
            },
            **self._role_snapshot(),
        }

    def _role_snapshot(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Resume a transfer from :meth:`to_bytes`; a damaged snapshot raises ProtocolStateError."""
        state = load_snapshot(data, cls.role)
        try:
            endpoint = cls._from_state(state)
            endpoint._secret = (
                base64.b64decode(state["secret"], validate=True) if state["secret"] else b""
            )
            endpoint._restore(state)
        except (KeyError, TypeError, ValueError, binascii.Error, CryptoError) as exc:
            raise ProtocolStateError(
                f"damaged {cls.role.value} state snapshot ({type(exc).__name__})"
            ) from exc
        return endpoint

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> Self:
        raise NotImplementedError

    def _restore(self, state: dict[str, Any]) -> None:
        def unb64(value: Any) -> bytes | None:
            return None if value is None else base64.b64decode(value, validate=True)

        def cipher(value: Any) -> CipherState | None:
            if value is None:
                return None
            return CipherState(
                Suite.parse(self._suite_name), key=unb64(value["key"]), nonce=value["nonce"]
            )

        self.phase = Phase(state["phase"])
        self._ephemeral = unb64(state["ephemeral"])
        self._handshake = (
            None if state["handshake"] is None else HandshakeState.from_dict(state["handshake"])
        )
        self._send = cipher(state["send"])
        self._recv = cipher(state["recv"])
        self._first_hash = unb64(state["h1"]) or b""
        self._handshake_hash = unb64(state["h"]) or b""
        self._pin_allowed = state["pin_allowed"]
        self._pin_used = state["pin_used"]
        self._pin_party = state["pin_party"]
        pending = state["pin_pending"]
        if pending is not None:
            self._pin_pending = CPaceResult(
                isk=base64.b64decode(pending["isk"]),
                own_confirmation=b"",
                peer_ad=b"receiver",
                expected_peer_confirmation=base64.b64decode(pending["expect"]),
            )
        failure = state["failure"]
        if failure is not None:
            self.failure = Failed(
                FailureReason(failure["reason"]), failure["detail"], failure["peer"]
            )


def load_snapshot(data: bytes, role: Role) -> dict[str, Any]:
    try:
        state = codec.decode(data, max_bytes=1 << 20)
    except codec.CodecError as exc:
        raise ProtocolStateError(f"not a transfer state snapshot: {exc}") from exc
    if state.get("v") != STATE_VERSION or state.get("role") != role.value:
        raise ProtocolStateError(f"not a version-{STATE_VERSION} {role.value} state snapshot")
    return dict(state)


def secret_or_placeholder(state: dict[str, Any]) -> bytes:
    # A finished transfer no longer holds its secret; the constructor still wants 32 bytes.
    return base64.b64decode(state["secret"]) if state["secret"] else bytes(SECRET_SIZE)
