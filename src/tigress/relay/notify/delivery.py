"""One delivery attempt of one notification, to a webhook or a Web Push endpoint.

Returns a classified outcome instead of raising, so the dispatcher can decide on retries:
2xx delivered; 429, 5xx, timeouts and connection errors retried; 3xx (never followed) and other
4xx failed; 404/410 from a push service (410 from a webhook) mean the subscription is gone.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ssl
import time
from dataclasses import dataclass

from tigress.relay.notify import ece
from tigress.relay.notify.b64 import b64url_encode
from tigress.relay.notify.config import PushConfig
from tigress.relay.notify.http11 import HttpResponse, post
from tigress.relay.notify.signing import webhook_signature
from tigress.relay.notify.tokens import WebhookToken, WebPushToken
from tigress.relay.notify.urlpolicy import ResolutionError, TargetUrl, UrlPolicy, UrlPolicyError
from tigress.relay.notify.vapid import VapidKey

USER_AGENT = "tigress-relay"
MAX_ADDRESSES_TRIED = 3
# Pad every Web Push plaintext to this length so the ciphertext size does not reveal the number of
# digits in the sequence number or the length of the mailbox id.
WEBPUSH_PLAINTEXT_PAD_TO = 160


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"
    REFUSED = "refused"


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    detail: str  # safe to log: a status code or an error class, never a URL or token
    retry_after: float | None = None


def make_ssl_context(config: PushConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(config.ca_file) if config.ca_file is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Deliverer:
    def __init__(self, config: PushConfig, policy: UrlPolicy, vapid: VapidKey) -> None:
        self._config = config
        self._policy = policy
        self._vapid = vapid
        self._ssl = make_ssl_context(config)

    async def webhook(self, token: WebhookToken, message_id: str, body: bytes) -> AttemptResult:
        timestamp = int(time.time())
        headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", USER_AGENT),
            ("webhook-id", message_id),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", webhook_signature(token.secret, message_id, timestamp, body)),
        ]
        result = await self._send(token.target, headers, body)
        if isinstance(result, AttemptResult):
            return result
        if result.status == 410:
            return AttemptResult(Outcome.GONE, "HTTP 410")
        return _classify(result)

    async def webpush(self, token: WebPushToken, mailbox_id: str, body: bytes) -> AttemptResult:
        padding = max(0, WEBPUSH_PLAINTEXT_PAD_TO - len(body))
        encrypted = ece.encrypt(body, token.ua_public, token.auth_secret, padding=padding)
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Encoding", "aes128gcm"),
            ("User-Agent", USER_AGENT),
            ("TTL", str(self._config.webpush_ttl)),
            ("Urgency", self._config.webpush_urgency),
            # RFC 8030 section 5.4: a newer message with the same topic replaces an undelivered
            # older one.  Keyed with the auth secret, which the push service never sees.
            ("Topic", _topic(token.auth_secret, mailbox_id)),
            (
                "Authorization",
                self._vapid.authorization(token.target.origin, self._config.vapid_subject),
            ),
        ]
        result = await self._send(token.target, headers, encrypted)
        if isinstance(result, AttemptResult):
            return result
        if result.status in (404, 410):
            return AttemptResult(Outcome.GONE, f"HTTP {result.status}")
        return _classify(result)

    async def _send(
        self, target: TargetUrl, headers: list[tuple[str, str]], body: bytes
    ) -> HttpResponse | AttemptResult:
        config = self._config
        try:
            addresses = await self._policy.resolve(target, timeout=config.connect_timeout)
        except UrlPolicyError:
            return AttemptResult(Outcome.REFUSED, "address refused by URL policy")
        except ResolutionError:
            return AttemptResult(Outcome.RETRY, "name resolution failed")
        last_error = "connection failed"
        for address in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return await post(
                    target,
                    address,
                    headers,
                    body,
                    ssl_context=self._ssl,
                    connect_timeout=config.connect_timeout,
                    read_timeout=config.read_timeout,
                )
            except ssl.SSLCertVerificationError:
                # A wrong certificate will not fix itself within our retry window.
                return AttemptResult(Outcome.FAILED, "TLS certificate verification failed")
            except TimeoutError:
                last_error = "timeout"
            except OSError as exc:
                last_error = type(exc).__name__
        return AttemptResult(Outcome.RETRY, last_error)


def _classify(response: HttpResponse) -> AttemptResult:
    status = response.status
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return AttemptResult(Outcome.DELIVERED, detail)
    if status == 429 or status >= 500:
        return AttemptResult(Outcome.RETRY, detail, response.retry_after)
    return AttemptResult(Outcome.FAILED, detail)


def _topic(auth_secret: bytes, mailbox_id: str) -> str:
    digest = hmac.new(auth_secret, b"tigress topic\x00" + mailbox_id.encode(), hashlib.sha256)
    return b64url_encode(digest.digest()[:24])  # 32 characters, the RFC 8030 maximum
