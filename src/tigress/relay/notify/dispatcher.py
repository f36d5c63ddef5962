"""Background delivery of wake-ups: a bounded, coalescing queue drained by a few workers.

``notify`` is called on the request path right after a write commits, so it only records the job
and returns.  Jobs for the same token and mailbox coalesce (only the newest sequence number is
worth sending).  When the queue is full the oldest job is dropped and counted: a lost wake-up
costs a device one poll, a blocked request costs everyone.  Retries wait on timers, not in a
worker, so one slow endpoint cannot stall the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tigress.relay.notify.b64 import b64url_encode
from tigress.relay.notify.base import NotificationTokenError
from tigress.relay.notify.config import PushConfig
from tigress.relay.notify.delivery import AttemptResult, Deliverer, Outcome
from tigress.relay.notify.message import (
    NotificationMessageError,
    check_notification,
    notification_body,
)
from tigress.relay.notify.tokens import (
    WEBHOOK,
    WEBPUSH,
    WebhookToken,
    WebPushToken,
    parse_webhook_token,
    parse_webpush_token,
    token_fingerprint,
)
from tigress.relay.notify.urlpolicy import UrlPolicy
from tigress.relay.notify.vapid import VapidKey

log = logging.getLogger("tigress.relay.notify")

GoneCallback = Callable[[str, str], Awaitable[None] | None]
_JobKey = tuple[str, str, str]  # token type, token data, mailbox id

PARSED_CACHE_SIZE = 4096
_COUNTERS = (
    "enqueued",
    "coalesced",
    "delivered",
    "failed",
    "retried",
    "dropped",
    "refused",
    "gone",
    "gone_skipped",
    "invalid",
)


@dataclass
class _Job:
    token_type: str
    token_data: str = field(repr=False)
    token: WebhookToken | WebPushToken = field(repr=False)
    mailbox_id: str = field(repr=False)
    seq: int
    message_id: str  # Standard Webhooks id: the same on every retry, so receivers can dedupe
    attempt: int = 0


class BackgroundPushDispatcher:
    """The relay's PushDispatcher for ``webhook`` and ``webpush`` tokens."""

    def __init__(
        self,
        config: PushConfig,
        *,
        vapid_key: VapidKey | None = None,
        on_gone: GoneCallback | None = None,
    ) -> None:
        self._config = config
        self._policy = UrlPolicy(config.allow_insecure_loopback, config.extra_allowed_networks)
        if vapid_key is None:
            if config.vapid_private_key_pem is not None:
                vapid_key = VapidKey.from_pem(config.vapid_private_key_pem)
            else:
                assert config.vapid_key_path is not None  # PushConfig guarantees one of the two
                vapid_key = VapidKey.load_or_create(config.vapid_key_path)
        self._vapid = vapid_key
        self._deliverer = Deliverer(config, self._policy, vapid_key)
        self._on_gone = on_gone
        self._pending: collections.OrderedDict[_JobKey, _Job] = collections.OrderedDict()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []
        self._retry_timers: dict[_JobKey, asyncio.TimerHandle] = {}
        self._in_flight = 0
        self._running = False
        self._gone: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._parsed: collections.OrderedDict[tuple[str, str], WebhookToken | WebPushToken] = (
            collections.OrderedDict()
        )
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._random = secrets.SystemRandom()

    # -- the PushDispatcher protocol ------------------------------------------------------------

    @property
    def supported_types(self) -> frozenset[str]:
        return frozenset({WEBHOOK, WEBPUSH})

    def validate(self, token_type: str, token_data: str) -> bool:
        if token_type not in self.supported_types:
            return False
        if not isinstance(token_data, str):
            raise NotificationTokenError(f"{token_type} tokenData must be a string")
        self._parse(token_type, token_data)
        return True

    def notify(self, token_type: str, token_data: str, *, mailbox_id: str, seq: int) -> None:
        try:
            self._enqueue(token_type, token_data, mailbox_id, seq)
        except Exception:  # the request path must never see a delivery problem
            self._counters["invalid"] += 1
            log.exception("push notify: unexpected error while queueing")

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._workers = [
            asyncio.create_task(self._worker(), name=f"push-worker-{index}")
            for index in range(self._config.concurrency)
        ]

    async def aclose(self) -> None:
        """Stop taking jobs, let queued ones finish for up to ``drain_timeout``, then stop."""
        if not self._running:
            return
        self._running = False
        for handle in self._retry_timers.values():
            handle.cancel()
        self._counters["dropped"] += len(self._retry_timers)
        self._retry_timers.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.drain_timeout):
                while self._pending or self._in_flight:
                    self._idle.clear()
                    self._wakeup.set()
                    await self._idle.wait()
        self._counters["dropped"] += len(self._pending)
        self._pending.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    # -- extras for the relay --------------------------------------------------------------------

    @property
    def vapid_public_key(self) -> str:
        """The relay's VAPID key, base64url: devices subscribe with it as applicationServerKey."""
        return self._vapid.public_key_b64url

    def stats(self) -> dict[str, int]:
        """Counters for /metrics; never identifiers."""
        return {
            **self._counters,
            "queued": len(self._pending),
            "in_flight": self._in_flight,
            "retry_scheduled": len(self._retry_timers),
        }

    def is_gone(self, token_type: str, token_data: str) -> bool:
        return token_fingerprint(token_type, token_data) in self._gone

    # -- internals -------------------------------------------------------------------------------

    def _parse(self, token_type: str, token_data: str) -> WebhookToken | WebPushToken:
        limit = self._config.token_data_max_bytes
        if token_type == WEBHOOK:
            return parse_webhook_token(token_data, self._policy, max_bytes=limit)
        return parse_webpush_token(token_data, self._policy, max_bytes=limit)

    def _parse_cached(self, token_type: str, token_data: str) -> WebhookToken | WebPushToken:
        # notify sits on the request path and the same few tokens recur for every write of a
        # mailbox: parsing (JSON, URL policy, P-256 point check) once per token keeps it cheap.
        key = (token_type, token_data)
        token = self._parsed.get(key)
        if token is not None:
            self._parsed.move_to_end(key)
            return token
        token = self._parse(token_type, token_data)
        self._parsed[key] = token
        if len(self._parsed) > PARSED_CACHE_SIZE:
            self._parsed.popitem(last=False)
        return token

    def _enqueue(self, token_type: str, token_data: object, mailbox_id: str, seq: int) -> None:
        # token_data is typed loosely: callers are untyped at runtime and must never see a raise.
        if not self._running or token_type not in self.supported_types:
            self._counters["dropped"] += 1
            return
        if not isinstance(token_data, str):
            self._counters["invalid"] += 1
            return
        try:
            check_notification(mailbox_id, seq)
        except NotificationMessageError:
            self._counters["invalid"] += 1
            return
        try:
            token = self._parse_cached(token_type, token_data)
        except NotificationTokenError:
            # Deposited tokens were validated; one failing now was refused by a stricter policy.
            self._counters["refused"] += 1
            return
        if token_fingerprint(token_type, token_data) in self._gone:
            self._counters["gone_skipped"] += 1
            return
        key = (token_type, token_data, mailbox_id)
        existing = self._pending.get(key)
        if existing is not None:
            existing.seq = max(existing.seq, seq)
            self._counters["coalesced"] += 1
            return
        timer = self._retry_timers.pop(key, None)
        if timer is not None:  # a newer wake-up supersedes the one waiting to be retried
            timer.cancel()
            self._counters["coalesced"] += 1
        while len(self._pending) >= self._config.queue_size:
            self._pending.popitem(last=False)
            self._counters["dropped"] += 1
        message_id = "msg_" + b64url_encode(secrets.token_bytes(16))
        self._pending[key] = _Job(token_type, token_data, token, mailbox_id, seq, message_id)
        self._counters["enqueued"] += 1
        self._wakeup.set()

    def _requeue(self, key: _JobKey, job: _Job) -> None:
        self._retry_timers.pop(key, None)
        if not self._running:
            self._counters["dropped"] += 1
            return
        if key in self._pending:  # a newer wake-up arrived meanwhile and carries the news
            self._counters["coalesced"] += 1
            return
        while len(self._pending) >= self._config.queue_size:
            self._pending.popitem(last=False)
            self._counters["dropped"] += 1
        self._pending[key] = job
        self._wakeup.set()

    async def _worker(self) -> None:
        while True:
            while not self._pending:
                if self._in_flight == 0:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            key, job = self._pending.popitem(last=False)
            self._in_flight += 1
            try:
                await self._run(key, job)
            except asyncio.CancelledError:
                self._counters["dropped"] += 1  # shut down mid-delivery (drain timed out)
                raise
            except Exception:
                self._counters["failed"] += 1
                log.exception("push delivery: unexpected error (token %s)", self._tag(job))
            finally:
                self._in_flight -= 1
                if not self._pending and self._in_flight == 0:
                    self._idle.set()

    async def _run(self, key: _JobKey, job: _Job) -> None:
        job.attempt += 1
        token = job.token
        body = notification_body(job.mailbox_id, job.seq)  # checked when queued
        if isinstance(token, WebhookToken):
            result = await self._deliverer.webhook(token, job.message_id, body)
        else:
            result = await self._deliverer.webpush(token, job.mailbox_id, body)
        await self._settle(key, job, result)

    async def _settle(self, key: _JobKey, job: _Job, result: AttemptResult) -> None:
        tag = self._tag(job)
        if result.outcome is Outcome.DELIVERED:
            self._counters["delivered"] += 1
            log.debug("push delivered (token %s, attempt %d)", tag, job.attempt)
        elif result.outcome is Outcome.RETRY and job.attempt < self._config.max_attempts:
            delay = self._backoff(job.attempt, result.retry_after)
            self._counters["retried"] += 1
            log.info("push retry in %.2fs (token %s): %s", delay, tag, result.detail)
            loop = asyncio.get_running_loop()
            self._retry_timers[key] = loop.call_later(delay, self._requeue, key, job)
        elif result.outcome is Outcome.GONE:
            self._counters["gone"] += 1
            log.info("push subscription gone (token %s): %s", tag, result.detail)
            await self._mark_gone(job)
        elif result.outcome is Outcome.REFUSED:
            self._counters["refused"] += 1
            log.warning("push refused (token %s): %s", tag, result.detail)
        else:
            self._counters["failed"] += 1
            log.warning("push failed (token %s, attempt %d): %s", tag, job.attempt, result.detail)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        config = self._config
        ceiling = min(config.backoff_max, config.backoff_base * 2 ** (attempt - 1))
        delay = self._random.uniform(ceiling / 2, ceiling)  # "equal jitter": spread, no stampede
        if retry_after is not None:
            delay = max(delay, min(retry_after, config.backoff_max))
        return delay

    async def _mark_gone(self, job: _Job) -> None:
        fingerprint = token_fingerprint(job.token_type, job.token_data)
        if self._config.gone_memory:
            self._gone[fingerprint] = None
            while len(self._gone) > self._config.gone_memory:
                self._gone.popitem(last=False)
        if self._on_gone is not None:
            try:
                outcome = self._on_gone(job.token_type, job.token_data)
                if outcome is not None:
                    await outcome
            except Exception:
                log.exception("push on_gone callback failed (token %s)", self._tag(job))

    @staticmethod
    def _tag(job: _Job) -> str:
        return token_fingerprint(job.token_type, job.token_data)
