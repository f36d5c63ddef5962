"""Web Push message encryption: RFC 8291 over the aes128gcm content coding of RFC 8188.

One push message is one record.  The sender makes a fresh P-256 key pair and salt per message,
agrees a secret with the subscription's ``p256dh`` key, mixes in the subscription's ``auth``
secret, and encrypts ``plaintext || 0x02 || zero padding`` with AES-128-GCM.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

RECORD_SIZE = 4096
SALT_BYTES = 16
TAG_BYTES = 16
KEY_INFO_LABEL = b"WebPush: info\x00"
CEK_INFO = b"Content-Encoding: aes128gcm\x00"
NONCE_INFO = b"Content-Encoding: nonce\x00"
LAST_RECORD_DELIMITER = b"\x02"
# RFC 8291 section 4: push services must accept 4096-byte bodies; header 86 + tag 16 + delimiter 1.
MAX_PLAINTEXT_BYTES = 4096 - 86 - TAG_BYTES - 1


class WebPushEncryptionError(ValueError):
    """The inputs cannot form a valid single-record RFC 8291 message."""


@dataclass(frozen=True)
class DerivedKeys:
    """The intermediate values of RFC 8291 Appendix A, kept for known-answer tests."""

    ecdh_secret: bytes = field(repr=False)
    ikm: bytes = field(repr=False)
    prk: bytes = field(repr=False)
    cek: bytes = field(repr=False)
    nonce: bytes = field(repr=False)


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def derive_keys(
    sender_private: ec.EllipticCurvePrivateKey, ua_public: bytes, auth_secret: bytes, salt: bytes
) -> DerivedKeys:
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    ecdh_secret = sender_private.exchange(ec.ECDH(), receiver)
    as_public = sender_private.public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint
    )
    # RFC 8291 section 3.3: IKM = HKDF(salt=auth_secret, ikm=ecdh_secret, info=key_info, L=32).
    key_info = KEY_INFO_LABEL + ua_public + as_public
    ikm = HKDF(algorithm=hashes.SHA256(), length=32, salt=auth_secret, info=key_info).derive(
        ecdh_secret
    )
    # RFC 8188 section 2.2/2.3: PRK = HKDF-Extract(salt, IKM); CEK and NONCE expand from it.
    prk = _hmac_sha256(salt, ikm)
    cek = _hmac_sha256(prk, CEK_INFO + b"\x01")[:16]
    nonce = _hmac_sha256(prk, NONCE_INFO + b"\x01")[:12]
    return DerivedKeys(ecdh_secret, ikm, prk, cek, nonce)


def encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    padding: int = 0,
    sender_private: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
    record_size: int = RECORD_SIZE,
) -> bytes:
    """Encrypt one push message; returns the aes128gcm body (header then the single record).

    ``sender_private`` and ``salt`` exist for known-answer tests; in service they must be fresh
    per message, which is what leaving them out gives.
    """
    if len(plaintext) + padding > MAX_PLAINTEXT_BYTES:
        raise WebPushEncryptionError(f"plaintext plus padding exceeds {MAX_PLAINTEXT_BYTES} bytes")
    if padding < 0:
        raise WebPushEncryptionError("padding must not be negative")
    if len(auth_secret) != 16:
        raise WebPushEncryptionError("auth secret must be 16 bytes")
    if len(ua_public) != 65 or ua_public[0] != 0x04:
        raise WebPushEncryptionError("p256dh must be a 65-byte uncompressed P-256 point")
    record = plaintext + LAST_RECORD_DELIMITER + bytes(padding)
    if len(record) + TAG_BYTES > record_size:
        raise WebPushEncryptionError("message does not fit in one record")
    if salt is None:
        salt = os.urandom(SALT_BYTES)
    if len(salt) != SALT_BYTES:
        raise WebPushEncryptionError("salt must be 16 bytes")
    if sender_private is None:
        sender_private = ec.generate_private_key(ec.SECP256R1())
    try:
        keys = derive_keys(sender_private, ua_public, auth_secret, salt)
    except ValueError as exc:
        raise WebPushEncryptionError("p256dh is not a valid P-256 public key") from exc
    as_public = sender_private.public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint
    )
    # Single record, sequence number 0: the nonce is used as derived (XOR with 0).
    ciphertext = AESGCM(keys.cek).encrypt(keys.nonce, record, None)
    header = salt + struct.pack(">IB", record_size, len(as_public)) + as_public
    return header + ciphertext
