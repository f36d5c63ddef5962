"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""

from __future__ import annotations

import base64
import hashlib
import hmac


def webhook_signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_webhook_signature(
    secret: bytes,
    message_id: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    *,
    now: int,
    tolerance: int = 300,
) -> bool:
    """What a receiver does: fresh timestamp, and any ``v1`` signature in the list matches."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = webhook_signature(secret, message_id, int(timestamp), body).encode()
    return any(
        hmac.compare_digest(candidate.encode(), expected)
        for candidate in signature_header.split(" ")
        if candidate.startswith("v1,")
    )
