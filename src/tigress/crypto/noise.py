"""The Noise Protocol Framework handshake (revision 34, §5.3), the core of the end-to-end channel.

Why Noise: the draft's own payload scheme uses the invitation secret directly as a long-term
AES key with no handshake, no forward secrecy and no transcript binding. The default profile
instead runs ``Noise_NNpsk0_25519_AESGCM_SHA256``: the invitation secret is the PSK, the mailbox
identifier is the prologue, and each side contributes a fresh ephemeral key. That gives

- mutual authentication by knowledge of the secret (a relay without it cannot read, forge or
  complete the handshake: message 1 fails with :class:`DecryptError` under a wrong PSK);
- forward secrecy from the responder's first reply on (``ee``);
- transcript binding: every byte of every handshake message, and the prologue, is hashed into
  ``h``, so a relay that swaps, truncates or reflects a handshake message, or moves it into
  another mailbox, is detected;
- per-direction counters after :meth:`HandshakeState.split` (see ``noise_cipher``).

A device may stop between handshake messages for days (the sender writes message 1, exits,
and reads message 2 much later), so the whole handshake state can be saved with
:meth:`HandshakeState.to_dict` and resumed with :meth:`HandshakeState.from_dict`.

Reading is transactional: a message that fails to parse or authenticate leaves the handshake
exactly as it was, so a relay injecting garbage cannot kill a transfer whose genuine message
arrives afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from tigress.crypto.errors import (
    DecryptError,
    HandshakeError,
    MessageSizeError,
    NoiseError,
    SnapshotError,
)
from tigress.crypto.noise_cipher import CipherState, SymmetricState
from tigress.crypto.noise_patterns import (
    HandshakePattern,
    ProtocolName,
    parse_pattern,
    parse_protocol_name,
)
from tigress.crypto.noise_suite import (
    DEFAULT_SUITE,
    KEY_LEN,
    MAX_MESSAGE_LEN,
    MAX_NONCE,
    TAG_LEN,
    KeyPair,
    Suite,
)

__all__ = [
    "DEFAULT_SUITE",
    "MAX_MESSAGE_LEN",
    "PSK_LEN",
    "SNAPSHOT_FORMAT",
    "CipherState",
    "DecryptError",
    "HandshakeError",
    "HandshakePattern",
    "HandshakeState",
    "KeyPair",
    "NoiseError",
    "ProtocolName",
    "Suite",
    "parse_pattern",
    "parse_protocol_name",
]

PSK_LEN: Final = 32
SNAPSHOT_FORMAT: Final = "tigress.noise.handshake/1"
_LOWER_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")


@dataclass(frozen=True)
class _Checkpoint:
    """Everything a handshake message mutates, so a failed read/write can be undone."""

    chaining_key: bytes
    handshake_hash: bytes
    cipher_key: bytes | None
    cipher_nonce: int
    e: KeyPair | None
    re: bytes | None
    rs: bytes | None
    psk_index: int
    message_index: int


class HandshakeState:
    """One party's side of a Noise handshake (spec §5.3).

    ``s`` and ``e`` are raw private keys (``e`` only for known-answer tests; normally it is
    generated from the OS CSPRNG when first needed); ``rs``/``re`` are the peer's public keys
    known before the handshake (pre-messages). ``psks`` are 32-byte pre-shared keys in the
    order their ``psk`` tokens occur. Keys the pattern does not use are refused, so a misuse
    (e.g. expecting authentication from a static key the pattern ignores) fails loudly.

    The ``repr`` never shows key material.
    """

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        psks: Sequence[bytes] = (),
        s: bytes | None = None,
        rs: bytes | None = None,
        e: bytes | None = None,
        re: bytes | None = None,
    ) -> None:
        protocol = parse_protocol_name(protocol_name)
        suite = protocol.suite
        pattern = protocol.pattern
        self._protocol = protocol
        self._initiator = bool(initiator)
        own_pre, peer_pre = self._pre_messages()

        self._psks = tuple(bytes(psk) for psk in psks)
        if len(self._psks) != pattern.psk_count:
            raise HandshakeError(
                f"pattern {pattern.name} needs {pattern.psk_count} PSK(s), got {len(self._psks)}"
            )
        if any(len(psk) != PSK_LEN for psk in self._psks):
            raise HandshakeError(f"PSKs must be {PSK_LEN} bytes")

        sends_static = "s" in own_pre or any("s" in m for m in self._own_messages())
        sends_ephemeral = "e" in own_pre or any("e" in m for m in self._own_messages())
        _require(s, sends_static, "s", pattern, "the local static key")
        _require(e, "e" in own_pre, "e", pattern, "a pre-message ephemeral", optional=True)
        if e is not None and not sends_ephemeral:
            raise HandshakeError(f"pattern {pattern.name} never sends a local ephemeral key")
        _require(rs, "s" in peer_pre, "rs", pattern, "the peer's static key in a pre-message")
        _require(re, "e" in peer_pre, "re", pattern, "the peer's ephemeral key in a pre-message")
        if rs is not None:
            suite.check_public_key(rs)
        if re is not None:
            suite.check_public_key(re)

        self._s = None if s is None else suite.keypair_from_private(bytes(s))
        self._e = None if e is None else suite.keypair_from_private(bytes(e))
        self._rs = None if rs is None else bytes(rs)
        self._re = None if re is None else bytes(re)
        self._psk_index = 0
        self._message_index = 0
        self._split_done = False

        self._symmetric = SymmetricState.initialize(protocol_name.encode("ascii"), suite)
        self._symmetric.mix_hash(bytes(prologue))
        # Pre-messages: the initiator's keys first, then the responder's (spec §7.1). In PSK
        # handshakes a pre-message "e" is also mixed into the key (spec §9.2).
        for side_is_initiator, steps in (
            (True, pattern.initiator_pre),
            (False, pattern.responder_pre),
        ):
            local = side_is_initiator == self._initiator
            for step in steps:
                public = self._pre_message_key(step, local)
                self._symmetric.mix_hash(public)
                if step == "e" and pattern.is_psk:
                    self._symmetric.mix_key(public)

    # -- introspection -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"HandshakeState(protocol={self._protocol.text!r}, initiator={self._initiator}, "
            f"message_index={self._message_index}, complete={self.complete})"
        )

    @property
    def protocol_name(self) -> str:
        return self._protocol.text

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def message_index(self) -> int:
        """How many handshake messages have been written or read so far."""
        return self._message_index

    @property
    def complete(self) -> bool:
        return self._message_index >= len(self._protocol.pattern.messages)

    @property
    def is_my_turn(self) -> bool:
        """True when the next handshake step is :meth:`write_message` for this party."""
        return not self.complete and (self._message_index % 2 == 0) == self._initiator

    @property
    def handshake_hash(self) -> bytes:
        """The transcript hash ``h``; final (and fit for channel binding) once ``complete``."""
        return self._symmetric.handshake_hash

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, if the pattern provides one."""
        return self._rs

    # -- handshake messages -------------------------------------------------------------------

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce the next handshake message carrying ``payload`` (spec §5.3 WriteMessage)."""
        self._check_turn(writing=True)
        if len(payload) > MAX_MESSAGE_LEN:
            raise MessageSizeError("handshake payload exceeds the Noise message limit")
        checkpoint = self._checkpoint()
        try:
            message = self._write(bytes(payload))
        except BaseException:
            self._restore(checkpoint)
            raise
        return message

    def read_message(self, message: bytes) -> bytes:
        """Consume the peer's next handshake message and return its payload (spec §5.3 ReadMessage).

        Raises :class:`DecryptError` if authentication fails (wrong PSK or prologue, tampering)
        and :class:`HandshakeError` if the message is structurally invalid or out of turn. On
        any error the handshake state is unchanged.
        """
        self._check_turn(writing=False)
        if not isinstance(message, bytes | bytearray | memoryview):
            raise HandshakeError("handshake messages are bytes")
        data = bytes(message)
        if len(data) > MAX_MESSAGE_LEN:
            raise MessageSizeError("handshake message exceeds the Noise message limit")
        checkpoint = self._checkpoint()
        try:
            return self._read(data)
        except BaseException:
            self._restore(checkpoint)
            raise

    def split(self) -> tuple[CipherState, CipherState]:
        """The transport cipher states ``(send, receive)`` for *this* party (spec §5.2 Split).

        Callable once, after the last handshake message; the chaining key and ephemeral key are
        then dropped. In one-way patterns only the initiator's sending state may be used.
        """
        if not self.complete:
            raise HandshakeError("split() before the handshake is complete")
        if self._split_done:
            raise HandshakeError("split() was already called; cipher states are single-use")
        c1, c2 = self._symmetric.split()
        self._split_done = True
        self._symmetric.chaining_key = b""
        self._symmetric.cipher.wipe()
        self._e = None
        return (c1, c2) if self._initiator else (c2, c1)

    def wipe(self) -> None:
        """Drop all key material held by this handshake (best effort in Python)."""
        self._symmetric.chaining_key = b""
        self._symmetric.cipher.wipe()
        self._s = self._e = None
        self._psks = ()
        self._split_done = True
        self._message_index = len(self._protocol.pattern.messages)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """A JSON-able snapshot (bytes as lowercase hex) to resume the handshake later.

        **The snapshot contains secrets**: the local static and ephemeral private keys, the
        PSKs, the chaining key and the current handshake cipher key. Anyone holding it can
        impersonate this party and read the channel. Store it only where private keys may be
        stored (e.g. the wallet's encrypted keystore) and delete it once the handshake ends.
        """
        if self._split_done:
            raise HandshakeError("cannot snapshot a handshake after split() or wipe()")
        key, nonce = self._symmetric.cipher.export()
        return {
            "format": SNAPSHOT_FORMAT,
            "protocol_name": self._protocol.text,
            "initiator": self._initiator,
            "message_index": self._message_index,
            "psks": [psk.hex() for psk in self._psks],
            "psk_index": self._psk_index,
            "s": None if self._s is None else self._s.private.hex(),
            "e": None if self._e is None else self._e.private.hex(),
            "rs": None if self._rs is None else self._rs.hex(),
            "re": None if self._re is None else self._re.hex(),
            "ck": self._symmetric.chaining_key.hex(),
            "h": self._symmetric.handshake_hash.hex(),
            "k": None if key is None else key.hex(),
            "n": nonce,
        }

    @classmethod
    def from_dict(cls, snapshot: Mapping[str, object]) -> HandshakeState:
        """Resume a handshake saved by :meth:`to_dict`; malformed input raises SnapshotError."""
        try:
            return cls._from_dict(snapshot)
        except SnapshotError:
            raise
        except NoiseError as exc:
            raise SnapshotError(f"invalid handshake snapshot: {exc}") from exc

    @classmethod
    def _from_dict(cls, snapshot: Mapping[str, object]) -> HandshakeState:
        if not isinstance(snapshot, Mapping):
            raise SnapshotError("handshake snapshot must be a mapping")
        expected = {
            "format", "protocol_name", "initiator", "message_index", "psks", "psk_index",
            "s", "e", "rs", "re", "ck", "h", "k", "n",
        }  # fmt: skip
        if set(snapshot) != expected:
            raise SnapshotError("handshake snapshot has missing or unknown fields")
        if snapshot["format"] != SNAPSHOT_FORMAT:
            raise SnapshotError("unknown handshake snapshot format")
        protocol_name = snapshot["protocol_name"]
        if not isinstance(protocol_name, str):
            raise SnapshotError("protocol_name must be a string")
        protocol = parse_protocol_name(protocol_name)
        suite, pattern = protocol.suite, protocol.pattern
        initiator = snapshot["initiator"]
        if not isinstance(initiator, bool):
            raise SnapshotError("initiator must be a boolean")
        message_index = _snapshot_int(snapshot, "message_index", len(pattern.messages))
        psk_index = _snapshot_int(snapshot, "psk_index", pattern.psk_count)
        if psk_index != sum(m.count("psk") for m in pattern.messages[:message_index]):
            raise SnapshotError("psk_index is inconsistent with message_index")
        raw_psks = snapshot["psks"]
        if not isinstance(raw_psks, list) or len(raw_psks) != pattern.psk_count:
            raise SnapshotError("psks must be a list with one entry per psk token")
        psks = tuple(_snapshot_hex(psk, "psks", PSK_LEN) for psk in raw_psks)
        s = _snapshot_optional_hex(snapshot["s"], "s", suite.dh_len)
        e = _snapshot_optional_hex(snapshot["e"], "e", suite.dh_len)
        rs = _snapshot_optional_hex(snapshot["rs"], "rs", suite.dh_len)
        re = _snapshot_optional_hex(snapshot["re"], "re", suite.dh_len)
        ck = _snapshot_hex(snapshot["ck"], "ck", suite.hash_len)
        h = _snapshot_hex(snapshot["h"], "h", suite.hash_len)
        k = _snapshot_optional_hex(snapshot["k"], "k", KEY_LEN)
        n = _snapshot_int(snapshot, "n", MAX_NONCE)

        state = cls.__new__(cls)
        state._protocol = protocol
        state._initiator = initiator
        state._psks = psks
        state._psk_index = psk_index
        state._message_index = message_index
        state._split_done = False
        state._s = None if s is None else suite.keypair_from_private(s)
        state._e = None if e is None else suite.keypair_from_private(e)
        state._rs = rs
        state._re = re
        state._symmetric = SymmetricState(
            suite=suite, chaining_key=ck, handshake_hash=h, cipher=CipherState(suite, k, n)
        )
        own_pre, _ = state._pre_messages()
        if state._s is None and ("s" in own_pre or any("s" in m for m in state._own_messages())):
            raise SnapshotError("snapshot lacks the local static key the pattern needs")
        return state

    # -- internals ----------------------------------------------------------------------------

    def _pre_messages(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        pattern = self._protocol.pattern
        if self._initiator:
            return pattern.initiator_pre, pattern.responder_pre
        return pattern.responder_pre, pattern.initiator_pre

    def _own_messages(self) -> list[tuple[str, ...]]:
        first = 0 if self._initiator else 1
        return list(self._protocol.pattern.messages[first::2])

    def _pre_message_key(self, step: str, local: bool) -> bytes:
        if local:
            pair = self._s if step == "s" else self._e
            assert pair is not None  # guaranteed by the constructor's _require checks
            return pair.public
        public = self._rs if step == "s" else self._re
        assert public is not None
        return public

    def _check_turn(self, *, writing: bool) -> None:
        if self._split_done:
            raise HandshakeError("handshake already split or wiped")
        if self.complete:
            raise HandshakeError("handshake is complete; use the transport cipher states")
        if self.is_my_turn != writing:
            action = "write" if writing else "read"
            raise HandshakeError(f"out of turn: it is not this party's turn to {action}")

    def _checkpoint(self) -> _Checkpoint:
        key, nonce = self._symmetric.cipher.export()
        return _Checkpoint(
            chaining_key=self._symmetric.chaining_key,
            handshake_hash=self._symmetric.handshake_hash,
            cipher_key=key,
            cipher_nonce=nonce,
            e=self._e,
            re=self._re,
            rs=self._rs,
            psk_index=self._psk_index,
            message_index=self._message_index,
        )

    def _restore(self, checkpoint: _Checkpoint) -> None:
        suite = self._protocol.suite
        self._symmetric.chaining_key = checkpoint.chaining_key
        self._symmetric.handshake_hash = checkpoint.handshake_hash
        self._symmetric.cipher = CipherState(suite, checkpoint.cipher_key, checkpoint.cipher_nonce)
        self._e = checkpoint.e
        self._re = checkpoint.re
        self._rs = checkpoint.rs
        self._psk_index = checkpoint.psk_index
        self._message_index = checkpoint.message_index

    def _dh(self, step: str) -> bytes:
        # Map "es"/"se" to (local, remote) keys by role: the first letter is the initiator's key.
        initiator_key, responder_key = step[0], step[1]
        local_letter, remote_letter = (
            (initiator_key, responder_key) if self._initiator else (responder_key, initiator_key)
        )
        local = self._e if local_letter == "e" else self._s
        remote = self._re if remote_letter == "e" else self._rs
        if local is None or remote is None:
            raise HandshakeError(f"pattern step {step!r} needs a key this party does not have")
        return self._protocol.suite.dh_shared(local, remote)

    def _next_psk(self) -> bytes:
        psk = self._psks[self._psk_index]
        self._psk_index += 1
        return psk

    def _write(self, payload: bytes) -> bytes:
        suite = self._protocol.suite
        symmetric = self._symmetric
        pattern = self._protocol.pattern
        out = bytearray()
        for step in pattern.messages[self._message_index]:
            if step == "e":
                if self._e is None:
                    self._e = suite.generate_keypair()
                out += self._e.public
                symmetric.mix_hash(self._e.public)
                if pattern.is_psk:
                    symmetric.mix_key(self._e.public)
            elif step == "s":
                assert self._s is not None  # guaranteed by the constructor
                out += symmetric.encrypt_and_hash(self._s.public)
            elif step == "psk":
                symmetric.mix_key_and_hash(self._next_psk())
            else:
                symmetric.mix_key(self._dh(step))
        out += symmetric.encrypt_and_hash(payload)
        if len(out) > MAX_MESSAGE_LEN:
            raise MessageSizeError("handshake message would exceed the Noise message limit")
        self._message_index += 1
        return bytes(out)

    def _read(self, data: bytes) -> bytes:
        suite = self._protocol.suite
        symmetric = self._symmetric
        pattern = self._protocol.pattern
        offset = 0

        def take(length: int, what: str) -> bytes:
            nonlocal offset
            if len(data) - offset < length:
                raise HandshakeError(f"handshake message truncated: missing {what}")
            chunk = data[offset : offset + length]
            offset += length
            return chunk

        for step in pattern.messages[self._message_index]:
            if step == "e":
                if self._re is not None:
                    raise HandshakeError("peer ephemeral key already known")
                self._re = take(suite.dh_len, "the peer's ephemeral key")
                symmetric.mix_hash(self._re)
                if pattern.is_psk:
                    symmetric.mix_key(self._re)
            elif step == "s":
                if self._rs is not None:
                    raise HandshakeError("peer static key already known")
                length = suite.dh_len + (TAG_LEN if symmetric.cipher.has_key else 0)
                self._rs = symmetric.decrypt_and_hash(take(length, "the peer's static key"))
            elif step == "psk":
                symmetric.mix_key_and_hash(self._next_psk())
            else:
                symmetric.mix_key(self._dh(step))
        remainder = data[offset:]
        if symmetric.cipher.has_key and len(remainder) < TAG_LEN:
            raise HandshakeError("handshake message truncated: missing the payload tag")
        payload = symmetric.decrypt_and_hash(remainder)
        self._message_index += 1
        return payload


def _require(
    value: bytes | None,
    needed: bool,
    name: str,
    pattern: HandshakePattern,
    what: str,
    *,
    optional: bool = False,
) -> None:
    if needed and value is None:
        raise HandshakeError(f"pattern {pattern.name} needs {what} ({name}=)")
    if not needed and value is not None and not optional:
        raise HandshakeError(f"pattern {pattern.name} does not use {name}=; refusing it")


def _snapshot_int(snapshot: Mapping[str, object], name: str, maximum: int) -> int:
    value = snapshot[name]
    if type(value) is not int or not 0 <= value <= maximum:
        raise SnapshotError(f"{name} must be an integer in [0, {maximum}]")
    return value


def _snapshot_hex(value: object, name: str, length: int) -> bytes:
    if not isinstance(value, str) or _LOWER_HEX.fullmatch(value) is None:
        raise SnapshotError(f"{name} must be lowercase hex")
    if len(value) != 2 * length:
        raise SnapshotError(f"{name} must be {length} bytes")
    return bytes.fromhex(value)


def _snapshot_optional_hex(value: object, name: str, length: int) -> bytes | None:
    return None if value is None else _snapshot_hex(value, name, length)
