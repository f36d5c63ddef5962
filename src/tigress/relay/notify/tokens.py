"""Parsers for the ``tokenData`` of the two supported notification token types.

Each parser takes the untrusted string a device deposited and either returns a typed token or
raises NotificationTokenError with a message precise enough to fix the client.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from tigress.relay.notify.b64 import Base64Error, b64_decode, b64url_decode
from tigress.relay.notify.base import NotificationTokenError
from tigress.relay.notify.urlpolicy import TargetUrl, UrlPolicy, UrlPolicyError

WEBHOOK = "webhook"
WEBPUSH = "webpush"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
# Standard Webhooks: symmetric secrets are between 24 and 64 random bytes.
WEBHOOK_SECRET_MIN_BYTES = 24
WEBHOOK_SECRET_MAX_BYTES = 64
P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16


@dataclass(frozen=True)
class WebhookToken:
    target: TargetUrl = field(repr=False)
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class WebPushToken:
    target: TargetUrl = field(repr=False)
    ua_public: bytes = field(repr=False)
    auth_secret: bytes = field(repr=False)


def token_fingerprint(token_type: str, token_data: str) -> str:
    """A short stable tag for logs and the gone-set; reveals nothing about the token."""
    digest = hashlib.sha256(f"{token_type}\x00{token_data}".encode()).hexdigest()
    return digest[:12]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _load_object(token_type: str, token_data: str, max_bytes: int) -> dict[str, Any]:
    if len(token_data.encode("utf-8", "surrogatepass")) > max_bytes:
        raise NotificationTokenError(f"{token_type} tokenData is larger than {max_bytes} bytes")
    try:
        value = json.loads(
            token_data, object_pairs_hook=_unique_object, parse_constant=_reject_constant
        )
    except RecursionError as exc:
        raise NotificationTokenError(f"{token_type} tokenData is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError is a ValueError, as are the hooks' errors
        raise NotificationTokenError(f"{token_type} tokenData is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise NotificationTokenError(f"{token_type} tokenData must be a JSON object")
    return value


def _check_keys(where: str, obj: dict[str, Any], required: set[str], optional: set[str]) -> None:
    missing = sorted(required - obj.keys())
    if missing:
        raise NotificationTokenError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(obj.keys() - required - optional)
    if unknown:
        raise NotificationTokenError(f"{where} has unknown field(s) {', '.join(unknown)}")


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise NotificationTokenError(f"{where} must be a string")
    return value


def _target(where: str, url: str, policy: UrlPolicy) -> TargetUrl:
    try:
        return policy.parse(url)
    except UrlPolicyError as exc:
        raise NotificationTokenError(f"{where} refused: {exc}") from exc


def parse_webhook_token(token_data: str, policy: UrlPolicy, *, max_bytes: int) -> WebhookToken:
    """``{"url": "https://...", "secret": "whsec_<base64 of 24..64 bytes>"}``."""
    obj = _load_object(WEBHOOK, token_data, max_bytes)
    _check_keys("webhook tokenData", obj, {"url", "secret"}, set())
    url = _string("webhook url", obj["url"])
    secret_text = _string("webhook secret", obj["secret"])
    if not secret_text.startswith(WEBHOOK_SECRET_PREFIX):
        raise NotificationTokenError("webhook secret must start with 'whsec_'")
    try:
        secret = b64_decode(secret_text[len(WEBHOOK_SECRET_PREFIX) :])
    except Base64Error as exc:
        raise NotificationTokenError(f"webhook secret {exc}") from exc
    if not WEBHOOK_SECRET_MIN_BYTES <= len(secret) <= WEBHOOK_SECRET_MAX_BYTES:
        raise NotificationTokenError(
            f"webhook secret must decode to {WEBHOOK_SECRET_MIN_BYTES} to "
            f"{WEBHOOK_SECRET_MAX_BYTES} bytes, got {len(secret)}"
        )
    return WebhookToken(_target("webhook url", url, policy), secret)


def parse_webpush_token(token_data: str, policy: UrlPolicy, *, max_bytes: int) -> WebPushToken:
    """The JSON of a browser PushSubscription: endpoint, keys.p256dh, keys.auth (base64url)."""
    obj = _load_object(WEBPUSH, token_data, max_bytes)
    _check_keys("webpush tokenData", obj, {"endpoint", "keys"}, {"expirationTime"})
    expiration = obj.get("expirationTime")
    if expiration is not None and (
        isinstance(expiration, bool) or not isinstance(expiration, int | float)
    ):
        raise NotificationTokenError("webpush expirationTime must be null or a number")
    endpoint = _string("webpush endpoint", obj["endpoint"])
    keys = obj["keys"]
    if not isinstance(keys, dict):
        raise NotificationTokenError("webpush keys must be a JSON object")
    _check_keys("webpush keys", keys, {"p256dh", "auth"}, set())
    ua_public = _decode_key("webpush keys.p256dh", keys["p256dh"], P256_POINT_BYTES)
    if ua_public[0] != 0x04:
        raise NotificationTokenError("webpush keys.p256dh must be an uncompressed P-256 point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    except ValueError as exc:
        raise NotificationTokenError("webpush keys.p256dh is not a point on P-256") from exc
    auth_secret = _decode_key("webpush keys.auth", keys["auth"], AUTH_SECRET_BYTES)
    return WebPushToken(_target("webpush endpoint", endpoint, policy), ua_public, auth_secret)


def _decode_key(where: str, value: Any, length: int) -> bytes:
    text = _string(where, value)
    try:
        raw = b64url_decode(text)
    except Base64Error as exc:
        raise NotificationTokenError(f"{where} {exc}") from exc
    if len(raw) != length:
        raise NotificationTokenError(f"{where} must decode to {length} bytes, got {len(raw)}")
    return raw
