"""The draft's own payload encryption: ``AEAD_AES_128_GCM`` / ``AEAD_AES_256_GCM``.

draft-vinokurov-tigress-http-00 encrypts each mailbox message with the shared invitation Secret
used *directly* as an AES-GCM key (16 or 32 bytes), a random 96-bit IV per encryption, a 128-bit
tag, no associated data, and carries ``data = base64(IV || ciphertext || tag)`` (standard
alphabet, ``=`` padding). tigress implements it only so that clients written from the draft can
talk to ours; the default profile is the Noise channel (``tigress.crypto.noise``), which adds
forward secrecy, transcript binding and replay detection that this scheme lacks.

Threats met here: a tampered or foreign payload fails the GCM tag
(:class:`PayloadAuthenticationError`); hostile ``data`` (non-base64, non-canonical base64 that
would let two encodings name one ciphertext, impossible lengths, oversized input) is refused with
a precise :class:`PayloadEncodingError` before any decryption; a Secret of the wrong size for the
declared type is refused (:class:`PayloadKeyError`) rather than silently selecting another
AES variant. IVs come from the OS CSPRNG.

Known weakness kept for compatibility: with one key for every message, IV uniqueness rests on
randomness alone (safe for far more messages than a transfer uses, but not a design to copy).
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tigress.crypto.errors import (
    DraftPayloadError,
    PayloadAuthenticationError,
    PayloadEncodingError,
    PayloadKeyError,
    UnsupportedPayloadTypeError,
)

__all__ = [
    "DRAFT_PAYLOAD_TYPES",
    "IV_LEN",
    "MAX_DRAFT_DATA_CHARS",
    "TAG_LEN",
    "open_draft_payload",
    "seal_draft_payload",
]

DRAFT_PAYLOAD_TYPES: Final[tuple[str, ...]] = ("AEAD_AES_128_GCM", "AEAD_AES_256_GCM")
_KEY_LEN: Final = {"AEAD_AES_128_GCM": 16, "AEAD_AES_256_GCM": 32}
IV_LEN: Final = 12
TAG_LEN: Final = 16
MAX_DRAFT_DATA_CHARS: Final = 4 * 1024 * 1024
"""Upper bound on the base64 ``data`` we accept or produce (4 MiB; relays cap far lower)."""
_MAX_PLAINTEXT: Final = MAX_DRAFT_DATA_CHARS // 4 * 3 - IV_LEN - TAG_LEN


def _aead_for(payload_type: str, key: bytes) -> AESGCM:
    if not isinstance(payload_type, str) or payload_type not in _KEY_LEN:
        raise UnsupportedPayloadTypeError(f"unsupported payload type {payload_type!r}")
    if not isinstance(key, bytes | bytearray | memoryview):
        raise PayloadKeyError("the payload key must be bytes")
    expected = _KEY_LEN[payload_type]
    if len(key) != expected:
        raise PayloadKeyError(f"{payload_type} needs a {expected}-byte key, not {len(key)} bytes")
    return AESGCM(bytes(key))


def seal_draft_payload(
    payload_type: str, key: bytes, plaintext: bytes, *, iv: bytes | None = None
) -> str:
    """Encrypt ``plaintext`` into the draft's ``data`` string.

    ``iv`` exists for known-answer tests only; in use it must be left ``None`` so a fresh random
    IV is drawn — reusing an IV under the same key breaks GCM completely.
    """
    aead = _aead_for(payload_type, key)
    if len(plaintext) > _MAX_PLAINTEXT:
        raise DraftPayloadError(f"plaintext longer than {_MAX_PLAINTEXT} bytes")
    if iv is None:
        iv = os.urandom(IV_LEN)
    elif len(iv) != IV_LEN:
        raise DraftPayloadError(f"the IV must be {IV_LEN} bytes")
    sealed = bytes(iv) + aead.encrypt(bytes(iv), bytes(plaintext), None)
    return base64.b64encode(sealed).decode("ascii")


def decode_draft_data(data: str) -> bytes:
    """Strictly decode ``data``: canonical standard base64 of at least IV + tag bytes."""
    if not isinstance(data, str):
        raise PayloadEncodingError("payload data must be a string")
    if len(data) > MAX_DRAFT_DATA_CHARS:
        raise PayloadEncodingError(f"payload data longer than {MAX_DRAFT_DATA_CHARS} characters")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadEncodingError("payload data is not valid base64") from exc
    # b64decode tolerates non-zero bits in the final padded quantum (and, on some Python
    # versions, data after padding); re-encoding rejects every non-canonical spelling.
    if base64.b64encode(raw).decode("ascii") != data:
        raise PayloadEncodingError("payload data is not canonical base64")
    if len(raw) < IV_LEN + TAG_LEN:
        raise PayloadEncodingError(
            f"payload data decodes to {len(raw)} bytes; at least {IV_LEN + TAG_LEN} are needed"
        )
    return raw


def open_draft_payload(payload_type: str, key: bytes, data: str) -> bytes:
    """Decrypt the draft's ``data`` string; every failure is a typed DraftPayloadError."""
    aead = _aead_for(payload_type, key)
    raw = decode_draft_data(data)
    try:
        return aead.decrypt(raw[:IV_LEN], raw[IV_LEN:], None)
    except InvalidTag as exc:
        raise PayloadAuthenticationError("payload failed authentication") from exc
