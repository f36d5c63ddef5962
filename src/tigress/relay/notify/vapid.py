"""VAPID (RFC 8292): the relay's identity towards push services, as an ES256 JWT.

The key pair is the relay's ``applicationServerKey``: devices subscribe with its public half, and
push services accept messages for those subscriptions only when signed with the private half.
So the key must survive restarts (it is persisted) and be shared by every relay process.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tigress.relay.notify.b64 import b64url_encode

# RFC 8292 section 2: exp must be no more than 24 hours away; renew well before it.
TOKEN_LIFETIME_SECONDS = 12 * 3600
TOKEN_REUSE_SECONDS = 6 * 3600


class VapidKeyError(ValueError):
    """The configured VAPID key is unreadable or not a P-256 private key."""


@dataclass
class _CachedToken:
    header: str = field(repr=False)
    issued_at: int


class VapidKey:
    """An ES256 signing key with per-audience token caching."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise VapidKeyError("VAPID key must be on P-256")
        self._private_key = private_key
        self._public_raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self._cache: dict[tuple[str, str], _CachedToken] = {}

    def __repr__(self) -> str:
        return f"VapidKey(public={self.public_key_b64url[:12]}...)"

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise VapidKeyError("VAPID key PEM is unreadable or encrypted") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise VapidKeyError("VAPID key must be an EC private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> VapidKey:
        """Load the key at ``path``, or generate and persist one (mode 0600) on first start.

        Creation goes through a private temporary file and a hard link, which fails if another
        process got there first; that process's key is then loaded, so all agree on one key.
        """
        if path.exists():
            return cls.from_pem(path.read_bytes())
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return cls.from_pem(path.read_bytes())
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return cls(key)

    @property
    def public_key_raw(self) -> bytes:
        return self._public_raw

    @property
    def public_key_b64url(self) -> str:
        """The ``applicationServerKey`` devices pass to ``pushManager.subscribe``."""
        return b64url_encode(self._public_raw)

    def make_jwt(self, audience: str, subject: str, *, now: int, lifetime: int) -> str:
        header = {"typ": "JWT", "alg": "ES256"}
        claims = {"aud": audience, "exp": now + lifetime, "sub": subject}
        signing_input = (_b64json(header) + "." + _b64json(claims)).encode("ascii")
        der = self._private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode("ascii") + "." + b64url_encode(signature)

    def authorization(self, audience: str, subject: str, *, now: int | None = None) -> str:
        """The ``Authorization: vapid t=..., k=...`` value, reused for hours per audience."""
        current = int(time.time()) if now is None else now
        cached = self._cache.get((audience, subject))
        if cached is not None and 0 <= current - cached.issued_at < TOKEN_REUSE_SECONDS:
            return cached.header
        token = self.make_jwt(audience, subject, now=current, lifetime=TOKEN_LIFETIME_SECONDS)
        value = f"vapid t={token}, k={self.public_key_b64url}"
        if len(self._cache) >= 4096:  # one entry per push service origin; bound it anyway
            self._cache.clear()
        self._cache[(audience, subject)] = _CachedToken(value, current)
        return value


def _b64json(obj: Mapping[str, object]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())
