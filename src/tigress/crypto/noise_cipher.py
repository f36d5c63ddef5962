"""Noise ``CipherState`` and ``SymmetricState`` (Noise spec revision 34, §5.1, §5.2).

Why this module exists: after the handshake, every channel message is protected by a
:class:`CipherState` — an AEAD key plus a strictly increasing 64-bit counter used as the nonce.
The counter is what lets the channel detect a relay that replays, reorders or drops messages:
each message decrypts only under the nonce the receiver expects next, so anything out of order
fails authentication instead of being accepted twice or silently skipped.

Threats met:
- tampering, replay, reordering: authentication fails with :class:`DecryptError`, and a failed
  decryption does *not* advance the nonce, so one forged message cannot desynchronise the channel;
- nonce reuse: the counter refuses to wrap (:class:`NonceExhaustedError`), and ``wipe`` leaves
  the state unusable rather than silently "keyless" (which in Noise would mean plaintext);
- oversized input: messages above 65535 bytes raise :class:`MessageSizeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tigress.crypto.errors import MessageSizeError, NoiseError, NonceExhaustedError
from tigress.crypto.noise_suite import KEY_LEN, MAX_MESSAGE_LEN, MAX_NONCE, TAG_LEN, AeadKey, Suite

__all__ = ["CipherState", "SymmetricState"]


class CipherState:
    """An AEAD key ``k`` (possibly empty) and a nonce counter ``n`` (spec §5.1).

    With no key, Noise defines encryption as the identity; that is only ever the case early in
    a handshake. The ``repr`` never shows the key.
    """

    __slots__ = ("_aead", "_key", "_nonce", "_suite", "_wiped")

    def __init__(self, suite: Suite, key: bytes | None = None, nonce: int = 0) -> None:
        if key is not None and len(key) != KEY_LEN:
            raise NoiseError(f"cipher keys are {KEY_LEN} bytes, not {len(key)}")
        _check_nonce(nonce)
        self._suite = suite
        self._key: bytes | None = None
        self._aead: AeadKey | None = None
        self._set_key(key)
        self._nonce = nonce
        self._wiped = False

    def __repr__(self) -> str:
        return (
            f"CipherState(suite={self._suite.name}, has_key={self.has_key}, "
            f"nonce={self._nonce}, wiped={self._wiped})"
        )

    @property
    def suite(self) -> Suite:
        return self._suite

    @property
    def has_key(self) -> bool:
        return self._key is not None

    @property
    def nonce(self) -> int:
        return self._nonce

    def set_nonce(self, nonce: int) -> None:
        self._ensure_usable()
        _check_nonce(nonce)
        self._nonce = nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt under the current nonce, then advance it (identity if there is no key)."""
        self._ensure_usable()
        overhead = TAG_LEN if self._key is not None else 0
        if len(plaintext) + overhead > MAX_MESSAGE_LEN:
            raise MessageSizeError(
                f"plaintext of {len(plaintext)} bytes exceeds the Noise message limit"
            )
        if self._key is None:
            return bytes(plaintext)
        if self._nonce >= MAX_NONCE:
            raise NonceExhaustedError("cipher state has used every nonce")
        assert self._aead is not None  # set together with the key
        ciphertext = self._aead.encrypt(self._nonce, bytes(ad), bytes(plaintext))
        self._nonce += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt under the current nonce and advance it only on success.

        Raises :class:`DecryptError` on authentication failure (the nonce stays put, so the
        genuine message can still be read after a forged one was rejected).
        """
        self._ensure_usable()
        if len(ciphertext) > MAX_MESSAGE_LEN:
            raise MessageSizeError(
                f"ciphertext of {len(ciphertext)} bytes exceeds the Noise message limit"
            )
        if self._key is None:
            return bytes(ciphertext)
        if self._nonce >= MAX_NONCE:
            raise NonceExhaustedError("cipher state has used every nonce")
        assert self._aead is not None  # set together with the key
        plaintext = self._aead.decrypt(self._nonce, bytes(ad), bytes(ciphertext))
        self._nonce += 1
        return plaintext

    def rekey(self) -> None:
        """Replace the key with REKEY(k) (spec §4.2); the nonce is unchanged (spec §11.3)."""
        self._ensure_usable()
        if self._key is None:
            raise NoiseError("cannot rekey a cipher state that has no key")
        self._set_key(self._suite.rekey(self._key))

    def export(self) -> tuple[bytes | None, int]:
        """``(key, nonce)`` for persisting the state; the key is secret — store it as such."""
        self._ensure_usable()
        return self._key, self._nonce

    def wipe(self) -> None:
        """Drop the key and make this state unusable.

        Best effort only: Python cannot overwrite immutable ``bytes`` in place, so this removes
        our reference and relies on the garbage collector. Any later use raises
        :class:`NoiseError` — a wiped state must never fall back to Noise's "no key" identity
        encryption, which would send plaintext.
        """
        self._set_key(None)
        self._wiped = True

    def _set_key(self, key: bytes | None) -> None:
        self._key = None if key is None else bytes(key)
        self._aead = None if self._key is None else self._suite.aead_key(self._key)

    def _ensure_usable(self) -> None:
        if self._wiped:
            raise NoiseError("cipher state was wiped")


def _check_nonce(nonce: int) -> None:
    if type(nonce) is not int or not 0 <= nonce <= MAX_NONCE:
        raise NoiseError("nonce must be an integer in [0, 2**64 - 1]")


@dataclass
class SymmetricState:
    """Chaining key ``ck``, handshake hash ``h`` and the handshake's CipherState (spec §5.2)."""

    suite: Suite
    chaining_key: bytes = field(repr=False)
    handshake_hash: bytes
    cipher: CipherState

    @classmethod
    def initialize(cls, protocol_name: bytes, suite: Suite) -> SymmetricState:
        if len(protocol_name) <= suite.hash_len:
            h = protocol_name + bytes(suite.hash_len - len(protocol_name))
        else:
            h = suite.hash_data(protocol_name)
        return cls(suite=suite, chaining_key=h, handshake_hash=h, cipher=CipherState(suite))

    def _truncate(self, key: bytes) -> bytes:
        # With 64-byte hashes the derived cipher key is truncated to 32 bytes (spec §5.2).
        return key[:KEY_LEN]

    def mix_key(self, input_key_material: bytes) -> None:
        self.chaining_key, temp_k = self.suite.hkdf(self.chaining_key, input_key_material, 2)
        self.cipher = CipherState(self.suite, self._truncate(temp_k))

    def mix_hash(self, data: bytes) -> None:
        self.handshake_hash = self.suite.hash_data(self.handshake_hash + data)

    def mix_key_and_hash(self, input_key_material: bytes) -> None:
        self.chaining_key, temp_h, temp_k = self.suite.hkdf(
            self.chaining_key, input_key_material, 3
        )
        self.mix_hash(temp_h)
        self.cipher = CipherState(self.suite, self._truncate(temp_k))

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.handshake_hash, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.handshake_hash, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        temp_k1, temp_k2 = self.suite.hkdf(self.chaining_key, b"", 2)
        return (
            CipherState(self.suite, self._truncate(temp_k1)),
            CipherState(self.suite, self._truncate(temp_k2)),
        )
