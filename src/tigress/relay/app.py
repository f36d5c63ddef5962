"""The ASGI application: translates HTTP to :class:`MailboxService` calls and back.

``create_app(config)`` is the factory for tests and ``uvicorn --factory``;
``app_from_environment()`` builds one from ``TIGRESS_RELAY_*`` settings (what ``tigress relay
serve`` starts in every worker process).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tigress.relay import responses
from tigress.relay.config import CONFIG_JSON_ENV, RelayConfig, build_config, config_from_json
from tigress.relay.config import default_data_dir as _default_data_dir
from tigress.relay.fastpath import Call, FastFront, Handler, Reply, problem_reply
from tigress.relay.keys import RelayKeys, load_or_create_secret
from tigress.relay.metrics import RelayMetrics
from tigress.relay.metrics_share import MetricsShare
from tigress.relay.metrics_share import stop as stop_publishing
from tigress.relay.middleware import (
    MetricsMiddleware,
    RateLimiter,
    RateLimitMiddleware,
    RequestRecorder,
)
from tigress.relay.notify.base import NoPushDispatcher, PushDispatcher
from tigress.relay.notify.config import PushConfig
from tigress.relay.notify.dispatcher import BackgroundPushDispatcher
from tigress.relay.preview import PREVIEW_HEADERS, render_preview
from tigress.relay.problems import COMPACT_JSON, PROBLEM_CONTENT_TYPE, ProblemError
from tigress.relay.service import MailboxService
from tigress.relay.stores import open_store, sqlite_path_from_url
from tigress.relay.stores.base import MailboxStore, StoreUnavailableError
from tigress.relay.validation import (
    TYPE_RE,
    MailboxId,
    check_attestation,
    format_rfc3339,
    parse_claim,
    parse_create,
    parse_cursor,
    parse_json_object,
    parse_mailbox_id,
    parse_read,
    parse_request_id,
    parse_update,
    parse_wait,
    require_json_media_type,
)

_log = logging.getLogger("tigress.relay")
API_VERSIONS = ("v1",)
ADVERTISED_PAYLOAD_TYPES = ("AEAD_AES_128_GCM", "AEAD_AES_256_GCM", "tigress-noise-v1")
_JSON = "application/json"
_NO_STORE = {"cache-control": "no-store"}


def _json(
    document: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return _to_response(_json_reply(document, status, headers))


def _json_reply(
    document: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Reply:
    return Reply(COMPACT_JSON.encode(document).encode(), status, headers or _NO_STORE, _JSON)


_NO_STORE_RAW = ((b"cache-control", b"no-store"),)


def _transfer_reply(body: bytes, status: int = 200, request_id: str | None = None) -> Reply:
    """A JSON answer of a transfer endpoint: never cached; a write echoes its
    ``Mailbox-Request-ID`` (headers encoded here once, not re-encoded per send)."""
    if request_id is None:
        return Reply(body, status, _NO_STORE, _JSON, _NO_STORE_RAW)
    return Reply(
        body,
        status,
        {"cache-control": "no-store", "mailbox-request-id": request_id},
        _JSON,
        (*_NO_STORE_RAW, (b"mailbox-request-id", request_id.encode("latin-1"))),
    )


def _to_response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, headers=reply.headers, media_type=reply.media_type)


def problem_response(problem: ProblemError) -> Response:
    headers = {"cache-control": "no-store", **problem.headers}
    return Response(
        problem.body(), problem.status, headers=headers, media_type=PROBLEM_CONTENT_TYPE
    )


def default_store_url() -> str:
    return f"sqlite:///{(_default_data_dir() / 'relay.db').resolve()}"


def secret_path_for(config: RelayConfig, store_url: str) -> Path:
    if config.secret_file:
        return Path(config.secret_file)
    if store_url.startswith("sqlite:"):
        database = sqlite_path_from_url(store_url)
        return database.with_name(database.name + ".secret")
    return _default_data_dir() / "relay.secret"


def build_push_dispatcher(config: RelayConfig, store_url: str) -> PushDispatcher:
    """The dispatcher ``config`` asks for: web push and webhooks, or none."""
    if not config.push:
        return NoPushDispatcher()
    key_path = (
        Path(config.vapid_key_file)
        if config.vapid_key_file
        else Path(str(secret_path_for(config, store_url)) + "-vapid.pem")
    )
    push_config = PushConfig(
        vapid_subject=config.vapid_subject,
        vapid_key_path=key_path,
        allow_insecure_loopback=config.push_allow_insecure_loopback,
        token_data_max_bytes=max(256, min(config.token_data_max, 65_536)),
    )
    return BackgroundPushDispatcher(push_config)


def _single_header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        if name == "mailbox-device-claim":
            raise ProblemError("invalid-claim", f"{name} must appear once")
        raise ProblemError("invalid-header", f"{name} must appear once")
    return values[0] if values else None


def _single(call: Call, name: bytes) -> str | None:
    values = call.headers(name)
    if len(values) > 1:
        text = name.decode()
        if name == b"mailbox-device-claim":
            raise ProblemError("invalid-claim", f"{text} must appear once")
        raise ProblemError("invalid-header", f"{text} must appear once")
    return values[0] if values else None


class RelayHandlers:
    """The endpoints; ``service`` is set when the application starts."""

    def __init__(self, config: RelayConfig, metrics: RelayMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.service: MailboxService | None = None
        self.store: MailboxStore | None = None
        self.dispatcher: PushDispatcher = NoPushDispatcher()
        self.metrics_share: MetricsShare | None = None
        self._public = config.effective_public_url

    def _service(self) -> MailboxService:
        if self.service is None:
            raise StoreUnavailableError("the relay is not started")
        return self.service

    @staticmethod
    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ProblemError as problem:
                return problem_response(problem)
            except StoreUnavailableError as exc:
                _log.error("store unavailable: %s", exc)
                return problem_response(
                    ProblemError("store-unavailable", "the relay cannot reach its store; retry")
                )

        return endpoint

    async def guard(self, handler: Handler, call: Call) -> Reply:
        """Run a mailbox handler, answering its problems (and an unreachable store) as
        problem+json."""
        try:
            return await handler(call)
        except ProblemError as problem:
            return problem_reply(problem)
        except StoreUnavailableError as exc:
            _log.error("store unavailable: %s", exc)
            return problem_reply(
                ProblemError("store-unavailable", "the relay cannot reach its store; retry")
            )

    async def create_call(self, call: Call) -> Reply:
        return await self.guard(self.create, call)

    async def mailbox_call(self, call: Call) -> Reply:
        method = call.method
        if method == "POST":
            return await self.guard(self.read, call)
        if method == "PUT":
            return await self.guard(self.update, call)
        if method == "DELETE":
            return await self.guard(self.delete, call)
        return await self.guard(self.relinquish, call)

    @staticmethod
    def _mailbox_id(request: Request) -> MailboxId:
        return RelayHandlers._parse_mailbox_id(request.path_params["mailbox_id"])

    @staticmethod
    def _parse_mailbox_id(text: str) -> MailboxId:
        parsed = parse_mailbox_id(text)
        if parsed is None:
            # Malformed ids answer exactly like unknown ones.
            raise ProblemError("mailbox-not-found", "no mailbox with this identifier")
        return parsed

    async def _json_body(self, call: Call, *, optional: bool = False) -> dict[str, Any]:
        body = await call.body(self.config.body_max_bytes)
        if optional and not body.strip():
            return {}
        require_json_media_type(call.header(b"content-type"))
        return parse_json_object(body)

    # -- /v1/m -----------------------------------------------------------------------------------

    async def create(self, call: Call) -> Reply:
        try:
            claim = parse_claim(_single(call, b"mailbox-device-claim"))
            request_id_header = _single(call, b"mailbox-request-id")
            request_id = parse_request_id(request_id_header)
            check_attestation(
                _single(call, b"mailbox-device-attestation"), self.config.attestation_max
            )
            body = await self._json_body(call)
            service = self._service()
            parsed = parse_create(body, service.now(), self.config)
        except ProblemError:
            self.metrics.outcome("rejected")
            raise
        outcome = await service.create(claim, request_id, parsed)
        assert request_id_header is not None
        return _transfer_reply(
            responses.create_body(
                f"{self._public}/v1/m/{outcome.mailbox_id}", outcome.push_supported
            ),
            201 if outcome.duplicate else 200,
            request_id_header,
        )

    # -- /v1/m/{id} ------------------------------------------------------------------------------

    async def mailbox(self, request: Request) -> Response:
        if request.method in {"GET", "HEAD"}:
            return await self.preview(request)
        call = Call.from_scope(request.scope, request.receive, request.path_params["mailbox_id"])
        return _to_response(await self.mailbox_call(call))

    async def create_endpoint(self, request: Request) -> Response:
        call = Call.from_scope(request.scope, request.receive, "")
        return _to_response(await self.create_call(call))

    async def preview(self, request: Request) -> Response:
        mailbox_id = self._mailbox_id(request)
        display = await self._service().display_information(mailbox_id)
        page = render_preview(
            display,
            f"{self._public}/v1/m/{mailbox_id}",
            self.config.preview_image_width,
            self.config.preview_image_height,
        )
        return Response(page, 200, headers=PREVIEW_HEADERS, media_type="text/html; charset=utf-8")

    async def read(self, call: Call) -> Reply:
        mailbox_id = self._parse_mailbox_id(call.path_id)
        claim = parse_claim(_single(call, b"mailbox-device-claim"))
        after = parse_cursor(call.query("after"), "after")
        wait = parse_wait(call.query("wait"), self.config.long_poll_max_seconds)
        body = await self._json_body(call, optional=True)
        token = parse_read(body, self.config)
        outcome = await self._service().read(mailbox_id, claim, token=token, after=after, wait=wait)
        return _transfer_reply(
            responses.read_body(
                outcome.display,
                outcome.latest,
                format_rfc3339(outcome.expires_at),
                outcome.messages,
            )
        )

    async def update(self, call: Call) -> Reply:
        mailbox_id = self._parse_mailbox_id(call.path_id)
        claim = parse_claim(_single(call, b"mailbox-device-claim"))
        request_id_header = _single(call, b"mailbox-request-id")
        request_id = parse_request_id(request_id_header)
        check_attestation(_single(call, b"mailbox-device-attestation"), self.config.attestation_max)
        parsed = parse_update(await self._json_body(call), self.config)
        outcome = await self._service().update(mailbox_id, claim, request_id, parsed)
        assert request_id_header is not None
        return _transfer_reply(
            responses.update_body(
                outcome.push_supported, None if outcome.duplicate else outcome.seq
            ),
            201 if outcome.duplicate else 200,
            request_id_header,
        )

    async def delete(self, call: Call) -> Reply:
        mailbox_id = self._parse_mailbox_id(call.path_id)
        claim = parse_claim(_single(call, b"mailbox-device-claim"))
        request_id_header = _single(call, b"mailbox-request-id")
        request_id = parse_request_id(request_id_header)
        duplicate = await self._service().delete(mailbox_id, claim, request_id)
        assert request_id_header is not None
        return _transfer_reply(responses.EMPTY_OBJECT, 201 if duplicate else 200, request_id_header)

    async def relinquish(self, call: Call) -> Reply:
        mailbox_id = self._parse_mailbox_id(call.path_id)
        claim = parse_claim(_single(call, b"mailbox-device-claim"))
        request_id_header = _single(call, b"mailbox-request-id")
        request_id = parse_request_id(request_id_header)
        duplicate = await self._service().relinquish(mailbox_id, claim, request_id)
        assert request_id_header is not None
        return _transfer_reply(responses.EMPTY_OBJECT, 201 if duplicate else 200, request_id_header)

    # -- /v1/m/{id}/events -----------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        mailbox_id = self._mailbox_id(request)
        claim = parse_claim(_single_header(request, "mailbox-device-claim"))
        after = parse_cursor(request.headers.get("last-event-id"), "Last-Event-ID")
        if after is None:
            after = parse_cursor(request.query_params.get("after"), "after") or 0
        service = self._service()
        handle = await service.open_stream(mailbox_id, claim)

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            async for event in service.stream(handle, after):
                if event.kind == "message":
                    yield (
                        f'event: message\nid: {event.seq}\ndata: {{"seq": {event.seq}}}\n\n'
                    ).encode()
                elif event.kind == "heartbeat":
                    yield b": heartbeat\n\n"
                else:
                    yield f'event: gone\ndata: {{"reason": "{event.reason}"}}\n\n'.encode()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- metadata and operations -----------------------------------------------------------------

    async def well_known(self, request: Request) -> Response:
        config = self.config
        return _json(
            {
                "apiVersions": list(API_VERSIONS),
                "draft": "draft-vinokurov-tigress-http-00",
                "limits": {
                    "payloadDataMaxBytes": config.payload_max_bytes,
                    "requestBodyMaxBytes": config.body_max_bytes,
                    "titleMaxChars": config.title_max,
                    "descriptionMaxChars": config.description_max,
                    "imageURLMaxChars": config.image_url_max,
                    "notificationTokenDataMaxChars": config.token_data_max,
                    "attestationMaxChars": config.attestation_max,
                    "expirationMinSeconds": config.expiration_min_seconds,
                    "expirationMaxSeconds": config.expiration_max_seconds,
                    "expirationDefaultSeconds": config.expiration_default_seconds,
                    "messagesPerMailbox": config.messages_per_mailbox,
                    "longPollMaxSeconds": config.long_poll_max_seconds,
                },
                "payloadTypes": list(ADVERTISED_PAYLOAD_TYPES),
                "payloadTypePattern": TYPE_RE.pattern,
                "notificationTypes": [
                    *sorted(self.dispatcher.supported_types),
                    "sse",
                    "long-poll",
                ],
                "attestationPolicy": "none",
                "defaultAccessRights": "RD",
                "sequenceNumbers": "per-mailbox, shared by both sides",
            },
            headers={"cache-control": "max-age=300"},
        )

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        not_ready = problem_response(ProblemError("store-unavailable", "the store is not ready"))
        if self.store is None:
            return not_ready
        try:
            await self.store.health_check()
        except StoreUnavailableError:
            return not_ready
        return _json({"status": "ready"})

    async def metrics_endpoint(self, request: Request) -> Response:
        share = self.metrics_share
        text = self.metrics.render() if share is None else share.render(self.metrics)
        return Response(
            text,
            headers=_NO_STORE,
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )


def service_clock(service: MailboxService) -> float:
    return service._clock()


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        problem = ProblemError(
            "method-not-allowed",
            f"{request.method} is not allowed here",
            headers=dict(exc.headers or {}),
        )
    else:
        problem = ProblemError("not-found", "no such resource")
    return problem_response(problem)


class RelayApp(Starlette):
    """The Starlette application, with the transfer endpoints served by a :class:`FastFront`
    ahead of Starlette's middleware and router (same behaviour, far less work per request)."""

    def __init__(self, front: FastFront, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._front = front

    @property
    def front(self) -> FastFront:
        """The transfer endpoints, for a server that serves them without ASGI
        (:mod:`tigress.relay.server`)."""
        return self._front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = self._front.route(scope)
            if target is not None:
                scope["app"] = self
                await self._front.serve(scope, receive, send, *target)
                return
        await super().__call__(scope, receive, send)


def create_app(
    config: RelayConfig | None = None,
    *,
    store: MailboxStore | None = None,
    dispatcher: PushDispatcher | None = None,
) -> Starlette:
    """Build the relay.  The store and dispatcher start with the application (lifespan) and stop
    with it; pass your own to share them, otherwise they are made from ``config``."""
    config = (config or RelayConfig()).validate()
    metrics = RelayMetrics()
    handlers = RelayHandlers(config, metrics)
    store_url = config.store or default_store_url()
    guarded = RelayHandlers.guarded

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or open_store(store_url, durability=config.durability)
        the_dispatcher: PushDispatcher
        if dispatcher is not None:
            the_dispatcher = dispatcher
        else:
            the_dispatcher = await asyncio.to_thread(build_push_dispatcher, config, store_url)
        keys: RelayKeys = await asyncio.to_thread(
            load_or_create_secret, secret_path_for(config, store_url)
        )
        await the_store.open()
        await the_dispatcher.start()
        service = MailboxService(the_store, the_dispatcher, keys, config, metrics)
        handlers.store, handlers.dispatcher, handlers.service = the_store, the_dispatcher, service
        sweeper = asyncio.create_task(service.run_sweeper(), name="tigress-relay-sweeper")
        publisher = None
        if config.metrics_dir:
            handlers.metrics_share = MetricsShare(Path(config.metrics_dir))
            publisher = asyncio.create_task(
                handlers.metrics_share.run(metrics), name="tigress-relay-metrics"
            )
        _log.info("relay started", extra={"store": store_url.split(":", 1)[0]})
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if publisher is not None:
                await stop_publishing(publisher)
            handlers.service = None
            await the_dispatcher.aclose()
            await the_store.close()

    routes = [
        Route("/v1/m", handlers.create_endpoint, methods=["POST"]),
        Route(
            "/v1/m/{mailbox_id}",
            guarded(handlers.mailbox),
            methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        ),
        Route("/v1/m/{mailbox_id}/events", guarded(handlers.events), methods=["GET"]),
        Route("/.well-known/tigress", handlers.well_known, methods=["GET"]),
        Route("/healthz", handlers.healthz, methods=["GET"]),
        Route("/readyz", handlers.readyz, methods=["GET"]),
        Route("/metrics", handlers.metrics_endpoint, methods=["GET"]),
    ]
    limiter = RateLimiter(
        rate=config.rate_limit_per_second, burst=config.rate_limit_burst, metrics=metrics
    )
    recorder = RequestRecorder(metrics=metrics, access_log=config.access_log)
    middleware = [
        Middleware(MetricsMiddleware, recorder=recorder),
        Middleware(RateLimitMiddleware, limiter=limiter),
    ]
    return RelayApp(
        FastFront(
            handlers.create_call,
            handlers.mailbox_call,
            limiter,
            recorder,
            body_limit=config.body_max_bytes,
        ),
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception},
    )


# A relay worker allocates many short-lived objects per request and almost no cycles: at the
# default gen-0 threshold (700) the collector ran every few requests and took ~6% of the CPU per
# transfer (benchmarks/relay.py, 1 worker, 64 concurrent).  Collections stay on, just rarer.
_WORKER_GC_THRESHOLDS = (100_000, 50, 50)


def app_from_environment() -> Starlette:
    """The uvicorn ``--factory`` entry point of a relay worker process: settings from
    ``TIGRESS_RELAY_CONFIG_JSON`` (set by the CLI for its workers) or else from
    ``TIGRESS_RELAY_*`` variables.  The process is the relay's alone, so its garbage collector is
    tuned for it (the start-up objects frozen out of every later collection)."""
    text = os.environ.get(CONFIG_JSON_ENV)
    config = config_from_json(text) if text else build_config()
    app = create_app(config)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_WORKER_GC_THRESHOLDS)
    return app
