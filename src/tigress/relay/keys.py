"""The relay secret and the keyed hashes / seals derived from it.

Nothing that identifies a device or a mailbox is stored in the clear: the database holds keyed
hashes (HMAC-SHA256 under the relay secret) of mailbox ids and claims, and notification tokens and
the create-idempotency record are sealed under keys that also need the mailbox id (or the claim and
Request-ID), which the database never holds.  A stolen database file — even with the secret — does
not reveal which mailbox ids exist, which claims were used, or any push token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_BYTES = 32
_HASH_BYTES = 16  # 128-bit keyed hashes: collision-free for lookups, half the index size
_NONCE_BYTES = 12


class SecretFileError(RuntimeError):
    """The relay secret file cannot be read or has the wrong size."""


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, b"".join(parts), hashlib.sha256)


_SHA256_BLOCK = 64


class _LabelledHmac:
    """HMAC-SHA256 (RFC 2104) under one fixed key and one fixed message prefix (a domain label).

    Bit-for-bit ``hmac.digest(key, label + message, sha256)``, but the hash states after the
    padded key blocks and the label are computed once and copied per call: OpenSSL 3 looks the
    digest up again on every one-shot HMAC, which made each keyed hash cost several microseconds
    on the request path (16 of them per transfer)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, label: bytes) -> None:
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._inner.update(label)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __repr__(self) -> str:  # the states are key material
        return "_LabelledHmac(...)"

    def digest(self, *parts: bytes) -> bytes:
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@dataclass(frozen=True, slots=True)
class RelayKeys:
    secret: bytes = field(repr=False)
    # Precomputed keyed-hash states, one per domain label (derived from ``secret``).
    _mailbox: _LabelledHmac = field(init=False, repr=False, compare=False)
    _claim: _LabelledHmac = field(init=False, repr=False, compare=False)
    _create: _LabelledHmac = field(init=False, repr=False, compare=False)
    _create_seal: _LabelledHmac = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) != SECRET_BYTES:
            raise SecretFileError(f"the relay secret must be {SECRET_BYTES} bytes")
        secret = self.secret
        object.__setattr__(self, "_mailbox", _LabelledHmac(secret, b"tigress-relay mailbox\0"))
        object.__setattr__(self, "_claim", _LabelledHmac(secret, b"tigress-relay claim\0"))
        object.__setattr__(self, "_create", _LabelledHmac(secret, b"tigress-relay create\0"))
        object.__setattr__(
            self, "_create_seal", _LabelledHmac(secret, b"tigress-relay create-seal\0")
        )

    def mailbox_key(self, mailbox_id: bytes) -> bytes:
        return self._mailbox.digest(mailbox_id)[:_HASH_BYTES]

    def claim_hash(self, mailbox_id: bytes, claim: bytes) -> bytes:
        # Bound to the mailbox, so a reused claim cannot be linked across mailboxes in the store.
        return self._claim.digest(mailbox_id, claim)[:_HASH_BYTES]

    def create_claim_hash(self, claim: bytes) -> bytes:
        return self._create.digest(claim)[:_HASH_BYTES]

    def seal_mailbox_id(self, claim: bytes, request_id: bytes, mailbox_id: bytes) -> bytes:
        """Hide the id under a pad only the creating claim + Request-ID can re-derive; the pad is
        used for exactly one 16-byte value, so this is a one-time pad."""
        pad = self._create_seal.digest(claim, request_id)
        size = min(len(mailbox_id), len(pad))
        # XOR as two integers: one C operation instead of a Python loop over the bytes.
        mixed = int.from_bytes(mailbox_id[:size], "big") ^ int.from_bytes(pad[:size], "big")
        return mixed.to_bytes(size, "big")

    def unseal_mailbox_id(self, claim: bytes, request_id: bytes, sealed: bytes) -> bytes:
        return self.seal_mailbox_id(claim, request_id, sealed)

    def _token_aead(self, mailbox_id: bytes) -> AESGCM:
        return AESGCM(_hmac(self.secret, b"tigress-relay token\0", mailbox_id))

    def seal_token(self, mailbox_id: bytes, side: str, token_type: str, token_data: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps([token_type, token_data], separators=(",", ":")).encode()
        return nonce + self._token_aead(mailbox_id).encrypt(nonce, plain, side.encode())

    def open_token(self, mailbox_id: bytes, side: str, sealed: bytes) -> tuple[str, str] | None:
        """The (type, tokenData) sealed for this mailbox and side, or None if it does not open."""
        try:
            plain = self._token_aead(mailbox_id).decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], side.encode()
            )
            token_type, token_data = json.loads(plain)
        except (InvalidTag, ValueError, TypeError):
            return None
        if not isinstance(token_type, str) or not isinstance(token_data, str):
            return None
        return token_type, token_data


def load_or_create_secret(path: Path) -> RelayKeys:
    """Read the secret file, creating it (mode 0600, atomically) if absent.

    Several worker processes may start at once: exactly one creates the file, the others read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        try:
            os.write(fd, secrets.token_bytes(SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
    # A concurrent creator may not have written yet: retry briefly before giving up.
    for _ in range(50):
        data = path.read_bytes()
        if len(data) == SECRET_BYTES:
            return RelayKeys(data)
        time.sleep(0.02)
    raise SecretFileError(f"{path} must hold exactly {SECRET_BYTES} bytes")
