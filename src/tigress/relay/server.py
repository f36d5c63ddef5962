"""The relay's HTTP server: uvicorn, with a protocol that serves the transfer endpoints inline.

Why: on the 2-core reference machine a raw ASGI echo on uvicorn costs ~30 µs of CPU per request
and the same echo on a bare httptools protocol ~11 µs — uvicorn's request cycle (a scope, an
``asyncio.Event``, ASGI message dicts, per-header checks, two socket writes per response) costs
more than the relay's own work for most requests of a transfer.  :class:`RelayHttpProtocol` is
uvicorn's httptools protocol with one change: a request to a transfer endpoint (``POST /v1/m``,
``POST``/``PUT``/``DELETE``/``PATCH /v1/m/{id}``) is buffered by the protocol and answered by the
application's :class:`~tigress.relay.fastpath.FastFront` directly, in one socket write.  The
front runs the same rate limit, handlers, problem mapping and metrics as the ASGI path.

Everything else goes through uvicorn's ASGI cycle unchanged: other routes (event streams,
previews, metadata), a request pipelined behind one still being answered, ``Expect:
100-continue``, upgrades, percent-encoded paths, an application mounted under a root path or
wrapped by middleware this module does not know.  Connection handling — keep-alive and its
timeout, pipelining order, flow control, graceful shutdown, the ``Date`` header, invalid requests
(400) — stays uvicorn's: while an inline request is served, :class:`_Exchange` stands in for
uvicorn's ``RequestResponseCycle``, with the attributes uvicorn's callbacks read and set.
uvicorn is pinned in the lock file; ``tests/relay/test_server.py`` covers each of these paths.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections.abc import Sequence
from typing import Any

import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from tigress.relay.fastpath import Call, FastFront, Handler, Reply, body_too_large, problem_reply
from tigress.relay.problems import ProblemError

_log = logging.getLogger("tigress.relay.server")

# What uvicorn refuses in a response header (CR, LF, NUL and other controls): a reply header that
# carried one would split the response.
_HEADER_VALUE_FORBIDDEN = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_INTERNAL_ERROR = (
    STATUS_LINE[500] + b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


class _NoEvent:
    """uvicorn sets ``cycle.message_event`` when body arrives or the peer leaves; an inline
    request waits for neither (it starts once its body is complete)."""

    __slots__ = ()

    def set(self) -> None:
        return None


_NO_EVENT = _NoEvent()


class _Exchange:
    """One transfer request answered inline, in the place of uvicorn's ``RequestResponseCycle``:
    uvicorn's protocol reads ``response_complete``, sets ``keep_alive`` (graceful shutdown) and
    ``disconnected``, and calls ``message_event.set()``."""

    __slots__ = (
        "body",
        "disconnected",
        "handler",
        "keep_alive",
        "method",
        "path",
        "path_id",
        "query",
        "raw_headers",
        "response_complete",
    )

    message_event = _NO_EVENT

    def __init__(
        self,
        handler: Handler,
        method: str,
        path: str,
        path_id: str,
        *,
        raw_headers: list[tuple[bytes, bytes]],
        query: bytes,
        keep_alive: bool,
    ) -> None:
        self.handler = handler
        self.method = method
        self.path = path
        self.path_id = path_id
        self.raw_headers = raw_headers
        self.query = query
        self.keep_alive = keep_alive
        self.body = bytearray()
        self.response_complete = False
        self.disconnected = False


def _find_front(app: Any) -> tuple[FastFront | None, ProxyHeadersMiddleware | None]:
    """The relay application's front behind uvicorn's wrappers, and the proxy-headers wrapper if
    any; (None, None) for any other application or an unknown wrapper (everything then goes
    through ASGI, which is always correct)."""
    proxy = None
    if isinstance(app, ProxyHeadersMiddleware):
        proxy, app = app, app.app
    front = getattr(app, "front", None)
    return (front, proxy) if isinstance(front, FastFront) else (None, None)


class RelayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; the transfer endpoints are answered inline (module doc)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._front, self._proxy = _find_front(self.app)
        if self.root_path:
            self._front = None  # mounted under a prefix: Starlette resolves the routes
        self._reset_context = config.reset_contextvars

    # -- parser callbacks ------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        exchange = self._inline_exchange()
        if exchange is None:
            super().on_headers_complete()
            return
        self.cycle = exchange  # type: ignore[assignment]  # uvicorn's callbacks see the stand-in
        front = self._front
        assert front is not None
        for name, value in exchange.raw_headers:
            # llhttp has already refused a malformed or conflicting Content-Length.
            if name == b"content-length" and int(value) > front.body_limit:
                self._refuse_too_large(exchange, front)
                return

    def on_body(self, body: bytes) -> None:
        exchange: object = self.cycle
        if not isinstance(exchange, _Exchange):
            super().on_body(body)
            return
        if exchange.response_complete:
            return
        exchange.body += body
        front = self._front
        assert front is not None
        if len(exchange.body) > front.body_limit:  # a chunked body that grew too large
            self._refuse_too_large(exchange, front)

    def on_message_complete(self) -> None:
        exchange: object = self.cycle
        if not isinstance(exchange, _Exchange):
            super().on_message_complete()
            return
        if exchange.response_complete:
            return
        coroutine = self._serve(exchange)
        if self._reset_context:
            task = self.loop.create_task(coroutine, context=contextvars.Context())
        else:
            task = self.loop.create_task(coroutine)
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    # -- inline requests -------------------------------------------------------------------------

    def _inline_exchange(self) -> _Exchange | None:
        """An exchange when this request is one the front answers inline, else None."""
        front = self._front
        if front is None or self.expect_100_continue or self.pipeline:
            return None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return None  # pipelined behind a request still being answered: keep uvicorn's order
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return None  # uvicorn answers 503
        parser = self.parser
        if parser.should_upgrade():
            return None
        method = parser.get_method().decode("ascii")
        parsed = httptools.parse_url(self.url)
        raw_path: bytes = parsed.path
        if b"%" in raw_path:
            return None
        path = raw_path.decode("ascii")
        target = front.target(method, path)
        if target is None:
            return None
        http_version = parser.get_http_version()
        if http_version != "1.1":
            self.scope["http_version"] = http_version
        keep_alive = http_version != "1.0" and parser.should_keep_alive()
        handler, path_id = target
        return _Exchange(
            handler,
            method,
            path,
            path_id,
            raw_headers=self.headers,
            query=parsed.query or b"",
            keep_alive=keep_alive,
        )

    async def _serve(self, exchange: _Exchange) -> None:
        front = self._front
        assert front is not None
        call = Call(
            exchange.method,
            exchange.path_id,
            exchange.raw_headers,
            exchange.query,
            body=bytes(exchange.body),
        )
        try:
            address = self._client_address(exchange) if front.limits_rate else ""
            reply = await front.answer(call, exchange.handler, address, exchange.path)
            payload = self._encode(reply, exchange.keep_alive)
        except asyncio.CancelledError:
            # uvicorn cancels what is still running when a graceful shutdown times out (a long
            # poll, say); like its own ASGI cycle, answer 500 and close rather than go silent.
            self._finish(exchange, _INTERNAL_ERROR, keep_alive=False)
            raise
        except Exception:
            _log.exception("unexpected error answering a transfer request")
            self._finish(exchange, _INTERNAL_ERROR, keep_alive=False)
            return
        self._finish(exchange, payload, keep_alive=exchange.keep_alive)

    def _client_address(self, exchange: _Exchange) -> str:
        """The address the rate limit counts: the peer, or what a trusted proxy forwarded (as
        uvicorn's ``ProxyHeadersMiddleware`` decides it for ASGI requests)."""
        host = self.client[0] if self.client else ""
        proxy = self._proxy
        if proxy is None or host not in proxy.trusted_hosts:
            return host
        forwarded = [v for n, v in exchange.raw_headers if n == b"x-forwarded-for"]
        if not forwarded:
            return host
        chosen, _ = proxy.trusted_hosts.get_trusted_client_address(
            b", ".join(forwarded).decode("latin-1")
        )
        return chosen or host

    def _encode(self, reply: Reply, keep_alive: bool) -> bytes:
        """The whole response — status line, headers and body — for one socket write."""
        parts = [STATUS_LINE[reply.status]]
        for name, value in self._headers(reply.raw_headers()):
            if _HEADER_VALUE_FORBIDDEN.search(value):
                raise ValueError("a reply header value holds a control character")
            parts += (name, b": ", value, b"\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", reply.body)
        return b"".join(parts)

    def _headers(self, reply_headers: list[tuple[bytes, bytes]]) -> Sequence[tuple[bytes, bytes]]:
        defaults = self.server_state.default_headers  # Date (and Server, when enabled)
        return [*defaults, *reply_headers] if defaults else reply_headers

    def _refuse_too_large(self, exchange: _Exchange, front: FastFront) -> None:
        """413 before the body is read any further, and the connection closes (the rest of the
        body is never parsed)."""
        problem: ProblemError = body_too_large(front.body_limit)
        front.record(exchange.path, exchange.method, problem.status)
        self._finish(exchange, self._encode(problem_reply(problem), False), keep_alive=False)

    def _finish(self, exchange: _Exchange, payload: bytes, *, keep_alive: bool) -> None:
        transport = self.transport
        if exchange.response_complete or transport.is_closing():
            return  # the client left (or a 413 already answered): nothing to send
        transport.write(payload)
        exchange.response_complete = True
        if not (keep_alive and exchange.keep_alive):  # shutdown may have cleared keep_alive
            transport.close()
        # uvicorn's bookkeeping: resume reading, start a pipelined request or arm keep-alive.
        self.on_response_complete()


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """The uvicorn settings of every relay server (CLI, embedded, benchmarks, tests): the
    relay's protocol, no ``Server`` header, uvicorn's access log off (the relay logs requests
    itself, without addresses or identifiers)."""
    settings: dict[str, Any] = {
        "http": RelayHttpProtocol,
        "access_log": False,
        "server_header": False,
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)
