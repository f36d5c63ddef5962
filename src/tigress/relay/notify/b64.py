"""Strict base64 decoders for token fields: one canonical spelling per value, precise errors."""

from __future__ import annotations

import base64
import binascii
import re

_URLSAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_STANDARD = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class Base64Error(ValueError):
    """The text is not canonical base64 of the expected alphabet."""


def _decode(text: str, alphabet: re.Pattern[str], *, urlsafe: bool) -> bytes:
    if not alphabet.fullmatch(text):
        raise Base64Error("contains characters outside the base64 alphabet")
    unpadded = text.rstrip("=")
    if text != unpadded and len(text) % 4 != 0:
        raise Base64Error("has wrong padding")
    if len(unpadded) % 4 == 1:
        raise Base64Error("has an impossible length")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    try:
        raw = (
            base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded, validate=True)
        )
    except (binascii.Error, ValueError) as exc:
        raise Base64Error("is not valid base64") from exc
    # Refuse non-zero trailing bits: two spellings of one key would defeat equality checks.
    reencoded = base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)
    if reencoded.decode("ascii").rstrip("=") != unpadded:
        raise Base64Error("is not canonical (non-zero trailing bits)")
    return raw


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (as browsers emit PushSubscription keys)."""
    return _decode(text, _URLSAFE, urlsafe=True)


def b64_decode(text: str) -> bytes:
    """Decode standard base64 with or without padding (as Standard Webhooks secrets are written)."""
    return _decode(text, _STANDARD, urlsafe=False)


def b64url_encode(raw: bytes) -> str:
    """Unpadded base64url, the spelling of JWTs, VAPID keys and PushSubscription keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
