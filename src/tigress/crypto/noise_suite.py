"""Noise cipher suites: the DH, cipher and hash functions of the Noise spec (revision 34, §4, §12).

Why this module exists: the Noise engine must be byte-exact with every other Noise
implementation (the relay's peers may be written in other languages), so each primitive is
pinned down here exactly as the specification defines it — nonce encodings, HMAC block sizes,
HKDF output chaining — and nowhere else. All primitives come from pyca ``cryptography``.

Threats met: a peer (or the relay) sending a low-order or otherwise invalid Diffie-Hellman public
key gets a typed :class:`~tigress.crypto.errors.HandshakeError` rather than an all-zero shared
secret; AEAD failures surface as :class:`~tigress.crypto.errors.DecryptError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x448 import X448PrivateKey, X448PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from tigress.crypto.errors import DecryptError, HandshakeError

__all__ = [
    "DEFAULT_SUITE",
    "KEY_LEN",
    "MAX_MESSAGE_LEN",
    "MAX_NONCE",
    "TAG_LEN",
    "AeadKey",
    "KeyPair",
    "Suite",
]

MAX_MESSAGE_LEN: Final = 65535
"""Noise messages (handshake and transport) are at most 65535 bytes (spec §3)."""
KEY_LEN: Final = 32
TAG_LEN: Final = 16
MAX_NONCE: Final = 2**64 - 1
"""Reserved nonce: never used for a message, only by ``REKEY`` (spec §5.1, §11.3)."""

_DH_LEN: Final = {"25519": 32, "448": 56}
_CIPHERS: Final = ("AESGCM", "ChaChaPoly")
_HASH_LEN: Final = {"SHA256": 32, "SHA512": 64, "BLAKE2s": 32, "BLAKE2b": 64}


class _Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


@dataclass(frozen=True)
class KeyPair:
    """A DH key pair as raw bytes. ``repr`` shows only the public half."""

    public: bytes
    private: bytes = field(repr=False)


@dataclass(frozen=True)
class Suite:
    """A Noise cipher suite: DH, cipher and hash functions, e.g. ``25519_AESGCM_SHA256``."""

    dh: str
    cipher: str
    hash: str

    def __post_init__(self) -> None:
        if self.dh not in _DH_LEN:
            raise HandshakeError(f"unsupported Noise DH function {self.dh!r}")
        if self.cipher not in _CIPHERS:
            raise HandshakeError(f"unsupported Noise cipher function {self.cipher!r}")
        if self.hash not in _HASH_LEN:
            raise HandshakeError(f"unsupported Noise hash function {self.hash!r}")

    @classmethod
    def parse(cls, text: str) -> Suite:
        """Parse ``"25519_AESGCM_SHA256"``; raises :class:`HandshakeError` if malformed."""
        parts = text.split("_")
        if len(parts) != 3:
            raise HandshakeError(f"malformed Noise suite name {text!r}")
        return cls(dh=parts[0], cipher=parts[1], hash=parts[2])

    @property
    def name(self) -> str:
        return f"{self.dh}_{self.cipher}_{self.hash}"

    # -- DH functions (spec §4.1, §12.1, §12.2) ------------------------------------------------

    @property
    def dh_len(self) -> int:
        return _DH_LEN[self.dh]

    def keypair_from_private(self, private: bytes) -> KeyPair:
        """Derive the key pair of a raw private key (for injected keys and snapshots)."""
        if len(private) != self.dh_len:
            raise HandshakeError(
                f"{self.dh} private keys are {self.dh_len} bytes, not {len(private)}"
            )
        if self.dh == "25519":
            public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
        else:
            public = X448PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
        return KeyPair(public=public, private=private)

    def generate_keypair(self) -> KeyPair:
        """A fresh key pair from the operating system's CSPRNG (via ``cryptography``)."""
        if self.dh == "25519":
            key25519 = X25519PrivateKey.generate()
            return KeyPair(
                public=key25519.public_key().public_bytes_raw(),
                private=key25519.private_bytes_raw(),
            )
        key448 = X448PrivateKey.generate()
        return KeyPair(
            public=key448.public_key().public_bytes_raw(), private=key448.private_bytes_raw()
        )

    def check_public_key(self, public: bytes) -> None:
        if len(public) != self.dh_len:
            raise HandshakeError(
                f"{self.dh} public keys are {self.dh_len} bytes, not {len(public)}"
            )

    def dh_shared(self, key_pair: KeyPair, public: bytes) -> bytes:
        """DH(key_pair, public). Invalid (e.g. low-order) public keys raise HandshakeError.

        The spec allows either an all-zero output or an error for invalid public keys;
        ``cryptography`` refuses them with ``ValueError``, which we surface as a typed error so
        hostile input never escapes as an untyped exception.
        """
        self.check_public_key(public)
        try:
            if self.dh == "25519":
                return X25519PrivateKey.from_private_bytes(key_pair.private).exchange(
                    X25519PublicKey.from_public_bytes(public)
                )
            return X448PrivateKey.from_private_bytes(key_pair.private).exchange(
                X448PublicKey.from_public_bytes(public)
            )
        except ValueError as exc:
            raise HandshakeError(f"invalid {self.dh} public key from peer") from exc

    # -- Cipher functions (spec §4.2, §12.3, §12.4) --------------------------------------------

    def aead_key(self, key: bytes) -> AeadKey:
        """The suite's AEAD keyed with ``key``, for repeated use by one cipher state."""
        return AeadKey(self.cipher, key)

    def encrypt(self, key: bytes, nonce: int, ad: bytes, plaintext: bytes) -> bytes:
        return self.aead_key(key).encrypt(nonce, ad, plaintext)

    def rekey(self, key: bytes) -> bytes:
        """REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes) (spec §4.2)."""
        return self.encrypt(key, MAX_NONCE, b"", bytes(KEY_LEN))[:KEY_LEN]

    # -- Hash functions (spec §4.3, §12.5-§12.8) -----------------------------------------------

    @property
    def hash_len(self) -> int:
        return _HASH_LEN[self.hash]

    def _hash_algorithm(self) -> hashes.HashAlgorithm:
        if self.hash == "SHA256":
            return hashes.SHA256()
        if self.hash == "SHA512":
            return hashes.SHA512()
        if self.hash == "BLAKE2s":
            return hashes.BLAKE2s(32)
        return hashes.BLAKE2b(64)

    def hash_data(self, data: bytes) -> bytes:
        digest = hashes.Hash(self._hash_algorithm())
        digest.update(data)
        return digest.finalize()

    def hmac_hash(self, key: bytes, data: bytes) -> bytes:
        # RFC 2104 HMAC with the suite's hash. ``cryptography``'s HMAC accepts BLAKE2s/BLAKE2b
        # and uses their native block lengths (64 and 128 bytes), exactly what Noise §4.3
        # requires, so no stdlib fallback is needed (the BLAKE2 cacophony vectors prove it).
        mac = hmac.HMAC(key, self._hash_algorithm())
        mac.update(data)
        return mac.finalize()

    def hkdf(self, chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
        """Noise's HKDF (spec §4.3): two or three HASHLEN outputs chained from HMAC(ck, ikm)."""
        temp_key = self.hmac_hash(chaining_key, ikm)
        out1 = self.hmac_hash(temp_key, b"\x01")
        out2 = self.hmac_hash(temp_key, out1 + b"\x02")
        if outputs == 2:
            return out1, out2
        out3 = self.hmac_hash(temp_key, out2 + b"\x03")
        return out1, out2, out3


class AeadKey:
    """A Noise cipher function keyed once (building the AEAD object per message costs more
    than encrypting a small message). The ``repr`` never shows the key."""

    __slots__ = ("_aead", "_big_endian_nonce")

    def __init__(self, cipher: str, key: bytes) -> None:
        self._aead: _Aead = AESGCM(key) if cipher == "AESGCM" else ChaCha20Poly1305(key)
        # AESGCM: 32 zero bits then the 64-bit nonce big-endian; ChaChaPoly: 32 zero bits then
        # the 64-bit nonce little-endian (spec §12.3, §12.4). Getting this wrong breaks interop
        # silently, which is why both encodings are pinned by the cacophony vectors.
        self._big_endian_nonce = cipher == "AESGCM"

    def __repr__(self) -> str:
        return "AeadKey(<redacted>)"

    def _nonce_bytes(self, nonce: int) -> bytes:
        return b"\x00\x00\x00\x00" + nonce.to_bytes(
            8, "big" if self._big_endian_nonce else "little"
        )

    def encrypt(self, nonce: int, ad: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(self._nonce_bytes(nonce), plaintext, ad)

    def decrypt(self, nonce: int, ad: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < TAG_LEN:
            raise DecryptError("ciphertext shorter than the authentication tag")
        try:
            return self._aead.decrypt(self._nonce_bytes(nonce), ciphertext, ad)
        except InvalidTag as exc:
            raise DecryptError("Noise message failed authentication") from exc


DEFAULT_SUITE: Final = Suite.parse("25519_AESGCM_SHA256")
