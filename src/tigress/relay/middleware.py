"""Pure-ASGI middleware (no BaseHTTPMiddleware): per-address rate limiting held in memory only,
and request metrics / access logging by route template."""

from __future__ import annotations

import logging
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tigress.relay.metrics import RelayMetrics
from tigress.relay.problems import PROBLEM_CONTENT_TYPE, ProblemError

_access_log = logging.getLogger("tigress.relay.access")
_UNLIMITED_PATHS = frozenset(("/healthz", "/readyz", "/metrics"))
_MAX_TRACKED_ADDRESSES = 100_000


def route_template(path: str) -> str:
    """The route a path belongs to, without identifiers (metrics labels, log lines)."""
    if path.startswith("/v1/m/"):
        return "/v1/m/{id}/events" if path.endswith("/events") else "/v1/m/{id}"
    if path in ("/v1/m", "/.well-known/tigress", "/healthz", "/readyz", "/metrics"):
        return path
    return "other"


class RateLimiter:
    """A token bucket per client address.  Addresses live only in this dict, never on disk or in
    a log; the dict is pruned of full buckets when it grows."""

    def __init__(self, *, rate: float, burst: int, metrics: RelayMetrics) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._metrics = metrics
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        """False when the limit is off (a rate of 0): callers may skip finding the address."""
        return self._rate > 0

    def check(self, scope: Scope) -> ProblemError | None:
        """Take a token for this request's address; the 429 problem when none is left."""
        if self._rate <= 0:
            return None
        client = scope.get("client")
        return self.check_address(client[0] if client else "", scope["path"])

    def check_address(self, address: str, path: str) -> ProblemError | None:
        """:meth:`check` for a request from ``address`` to ``path``."""
        if self._rate <= 0 or path in _UNLIMITED_PATHS:
            return None
        now = time.monotonic()
        bucket = self._buckets.get(address)
        if bucket is None:
            tokens = self._burst
        else:
            tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        if tokens < 1.0:
            self._metrics.rate_limited += 1
            retry_after = max(1, math.ceil((1.0 - tokens) / self._rate))
            return ProblemError(
                "rate-limited",
                f"more than {self._rate:g} requests per second from this address;"
                f" retry after {retry_after} s",
                headers={"retry-after": str(retry_after)},
            )
        self._buckets[address] = (tokens - 1.0, now)
        if len(self._buckets) > _MAX_TRACKED_ADDRESSES:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < full_after}


class RateLimitMiddleware:
    """Applies a :class:`RateLimiter` (shared with the fast path) to every HTTP request."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self._app = app
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._limiter.check(scope)
            if problem is not None:
                await send_rate_limited(send, problem)
                return
        await self._app(scope, receive, send)


async def send_rate_limited(send: Send, problem: ProblemError) -> None:
    body = problem.body()
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    headers += [(k.encode(), v.encode()) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestRecorder:
    """Counts every request by route template and status, times it, optionally logs it."""

    def __init__(self, *, metrics: RelayMetrics, access_log: bool) -> None:
        self._metrics = metrics
        self._access_log = access_log

    def record(self, scope: Scope, status: int, elapsed: float) -> None:
        self.record_request(scope["path"], scope["method"], status, elapsed)

    def record_request(self, path: str, method: str, status: int, elapsed: float) -> None:
        route = route_template(path)
        self._metrics.observe_request(route, method, status, elapsed)
        if self._access_log:
            extra = {
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            }
            if path.startswith("/v1/m/"):
                # At most an 8-hex-character prefix: enough to correlate, never the capability.
                extra["mailbox"] = path[6:14]
            _access_log.info("request", extra=extra)


class MetricsMiddleware:
    """Applies a :class:`RequestRecorder` to every HTTP request."""

    def __init__(self, app: ASGIApp, *, recorder: RequestRecorder) -> None:
        self._app = app
        self._recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            self._recorder.record(scope, status, time.perf_counter() - started)
