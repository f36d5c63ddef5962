"""The crypto layer's exception hierarchy.

Every failure inside ``tigress.crypto`` surfaces as a subclass of :class:`CryptoError`, so callers
(the protocol state machines) can turn *any* hostile input from the relay into one clean,
typed "this message is bad" outcome instead of crashing on an ``IndexError`` or ``ValueError``
leaking out of a parser. The subclasses say precisely what went wrong, which matters for the
protocol: a :class:`DecryptError` means "someone tampered or holds the wrong secret" and must
never be confused with a local programming error.

Hierarchy::

    CryptoError
    ├── NoiseError
    │   ├── DecryptError            authentication failed (tampering, wrong key/PSK/prologue)
    │   ├── HandshakeError          malformed/out-of-turn handshake use, bad keys, bad names
    │   │   └── SnapshotError       a persisted handshake snapshot is malformed
    │   ├── MessageSizeError        a Noise message would exceed 65535 bytes
    │   └── NonceExhaustedError     a cipher state ran out of nonces
    ├── DraftPayloadError           draft-vinokurov-tigress-http-00 AEAD payloads
    │   ├── UnsupportedPayloadTypeError
    │   ├── PayloadKeyError         key length does not match the payload type
    │   ├── PayloadEncodingError    data is not canonical base64 or is too short/long
    │   └── PayloadAuthenticationError   the GCM tag did not verify
    └── PaddingError                padding buckets: too long to pad, malformed on unpad
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "DecryptError",
    "DraftPayloadError",
    "HandshakeError",
    "MessageSizeError",
    "NoiseError",
    "NonceExhaustedError",
    "PaddingError",
    "PayloadAuthenticationError",
    "PayloadEncodingError",
    "PayloadKeyError",
    "SnapshotError",
    "UnsupportedPayloadTypeError",
]


class CryptoError(Exception):
    """Base class of every error raised by ``tigress.crypto``."""


class NoiseError(CryptoError):
    """Base class of every error raised by the Noise engine."""


class DecryptError(NoiseError):
    """Authenticated decryption failed: the ciphertext was altered or the keys differ."""


class HandshakeError(NoiseError):
    """The handshake was used wrongly or received a structurally invalid message."""


class SnapshotError(HandshakeError):
    """A persisted handshake snapshot is malformed or inconsistent."""


class MessageSizeError(NoiseError):
    """A Noise message (handshake or transport) would exceed the 65535-byte limit."""


class NonceExhaustedError(NoiseError):
    """A cipher state has used every nonce; the session must end (or rekey and restart)."""


class DraftPayloadError(CryptoError):
    """Base class for errors of the draft's ``AEAD_AES_*_GCM`` payloads."""


class UnsupportedPayloadTypeError(DraftPayloadError):
    """The payload ``type`` is not one this implementation knows."""


class PayloadKeyError(DraftPayloadError):
    """The shared secret's length does not match the payload type."""


class PayloadEncodingError(DraftPayloadError):
    """The ``data`` field is not canonical base64, or decodes to an impossible length."""


class PayloadAuthenticationError(DraftPayloadError):
    """The GCM tag did not verify: the payload was altered or the secret differs."""


class PaddingError(CryptoError):
    """A message is too long to pad, or a padded buffer is malformed."""
