"""The hot routes served straight from ASGI, without Starlette's per-request layers.

Every request of a transfer (``POST /v1/m`` and ``POST``/``PUT``/``DELETE``/``PATCH`` on
``/v1/m/{id}``) would otherwise pass seven ASGI layers (server-error, metrics, rate limit,
exception, router, route, request/response wrappers), each with its own closures and ``send``
wrapper, and build a ``Request``, a ``Headers`` copy and a ``Response``.  Here the same steps run
inline, in the same order and with the same results: rate limit, handler, problem mapping,
metrics and access log, and a plain-text 500 for an unexpected error (which is then re-raised
for the server to log, as Starlette's ``ServerErrorMiddleware`` does).  Everything else — and
these paths with any other method — goes to the Starlette application unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from tigress.relay.middleware import RateLimiter, RequestRecorder, send_rate_limited
from tigress.relay.problems import PROBLEM_CONTENT_TYPE, ProblemError

_INTERNAL_ERROR = b"Internal Server Error"
_INTERNAL_ERROR_HEADERS = [
    (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
    (b"content-type", b"text/plain; charset=utf-8"),
]
MAILBOX_METHODS = frozenset(("POST", "PUT", "DELETE", "PATCH"))


class Reply:
    """A response: what a Starlette ``Response(body, status, headers, media_type)`` would send,
    with the same header order (given headers, then content-length, then content-type)."""

    __slots__ = ("_raw", "body", "headers", "media_type", "status")

    def __init__(
        self,
        body: bytes,
        status: int,
        headers: Mapping[str, str],
        media_type: str,
        raw_headers: Sequence[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers
        self.media_type = media_type
        #: ``headers`` already encoded (lower-case names), when the caller has them at hand.
        self._raw = raw_headers

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        if self._raw is not None:
            raw = list(self._raw)
        else:
            raw = [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()
            ]
        raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        raw.append((b"content-type", self.media_type.encode("latin-1")))
        return raw

    async def send(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status, "headers": self.raw_headers()}
        )
        await send({"type": "http.response.body", "body": self.body})


def problem_reply(problem: ProblemError) -> Reply:
    return Reply(
        problem.body(),
        problem.status,
        {"cache-control": "no-store", **problem.headers},
        PROBLEM_CONTENT_TYPE,
    )


class Call:
    """One request to a mailbox endpoint: method, the path's mailbox id, headers, query, body.

    Independent of how it arrived: :meth:`from_scope` wraps an ASGI request (whose body is still
    to be received), while the relay's HTTP protocol (``tigress.relay.server``) hands over the
    body it already buffered."""

    __slots__ = (
        "_body",
        "_headers",
        "_query",
        "_query_string",
        "_raw_headers",
        "_receive",
        "method",
        "path_id",
    )

    def __init__(
        self,
        method: str,
        path_id: str,
        raw_headers: Sequence[tuple[bytes, bytes]],
        query_string: bytes,
        *,
        receive: Receive | None = None,
        body: bytes | None = None,
    ) -> None:
        self.method = method
        self.path_id = path_id
        self._raw_headers = raw_headers
        self._query_string = query_string
        self._receive = receive
        self._body = body
        self._headers: dict[bytes, list[str]] | None = None
        self._query: QueryParams | None = None

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, path_id: str) -> Call:
        return cls(
            scope["method"],
            path_id,
            scope["headers"],
            scope.get("query_string", b""),
            receive=receive,
        )

    def headers(self, name: bytes) -> list[str]:
        """Every value of the header ``name`` (lower case), in order."""
        headers = self._headers
        if headers is None:
            headers = {}
            for key, value in self._raw_headers:
                values = headers.get(key)
                if values is None:
                    headers[key] = [value.decode("latin-1")]
                else:
                    values.append(value.decode("latin-1"))
            self._headers = headers
        return headers.get(name, [])

    def header(self, name: bytes) -> str | None:
        """The first value of a header, or None."""
        values = self.headers(name)
        return values[0] if values else None

    def query(self, name: str) -> str | None:
        if not self._query_string:
            return None
        if self._query is None:
            self._query = QueryParams(self._query_string)
        return self._query.get(name)

    async def body(self, limit: int) -> bytes:
        """The body, refused with 413 as soon as it exceeds ``limit`` — by its declared length,
        or while streaming (chunked bodies, lying lengths) — so an oversized body is never
        parsed."""
        declared = self.header(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ProblemError("invalid-header", "Content-Length must be a decimal integer")
            if int(declared) > limit:
                raise body_too_large(limit)
        if self._body is not None:
            if len(self._body) > limit:
                raise body_too_large(limit)
            return self._body
        if self._receive is None:
            return b""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise body_too_large(limit)
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def body_too_large(limit: int) -> ProblemError:
    return ProblemError("body-too-large", f"the body exceeds the limit of {limit} bytes")


#: A mailbox endpoint: a request in, a reply out (problems already mapped to replies).
Handler = Callable[[Call], Awaitable[Reply]]


class FastFront:
    """Serves the transfer endpoints directly (see :meth:`target` for which): from ASGI through
    :meth:`serve`, or from the relay's own HTTP protocol through :meth:`answer`."""

    def __init__(
        self,
        create: Handler,
        mailbox: Handler,
        limiter: RateLimiter,
        recorder: RequestRecorder,
        *,
        body_limit: int,
    ) -> None:
        self._create = create
        self._mailbox = mailbox
        self._limiter = limiter
        self._recorder = recorder
        #: The largest request body a transfer endpoint accepts (413 beyond).
        self.body_limit = body_limit

    @property
    def limits_rate(self) -> bool:
        """Whether :meth:`answer` needs the client's address (the rate limit is on)."""
        return self._limiter.enabled

    def target(self, method: str, path: str) -> tuple[Handler, str] | None:
        """The handler and path id for a request this front serves, else None."""
        if path == "/v1/m":
            return (self._create, "") if method == "POST" else None
        if path.startswith("/v1/m/") and method in MAILBOX_METHODS:
            path_id = path[6:]
            if path_id and "/" not in path_id:
                return self._mailbox, path_id
        return None

    def route(self, scope: Scope) -> tuple[Handler, str] | None:
        """:meth:`target` for an ASGI request."""
        if scope.get("root_path"):
            return None  # mounted under a prefix: let Starlette resolve the route
        return self.target(scope["method"], scope["path"])

    async def answer(self, call: Call, handler: Handler, address: str, path: str) -> Reply:
        """Rate limit, handle (problems become replies) and record one request.  An unexpected
        error propagates (recorded as a 500) for the server to answer and log."""
        started = time.perf_counter()
        status = 500
        try:
            problem = self._limiter.check_address(address, path)
            reply = await handler(call) if problem is None else problem_reply(problem)
            status = reply.status
            return reply
        finally:
            self._recorder.record_request(path, call.method, status, time.perf_counter() - started)

    def record(self, path: str, method: str, status: int) -> None:
        """Count a request the server answered itself (a 413 before the body was read)."""
        self._recorder.record_request(path, method, status, 0.0)

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, handler: Handler, path_id: str
    ) -> None:
        started = time.perf_counter()
        status = 500
        response_started = False
        try:
            problem = self._limiter.check(scope)
            if problem is not None:
                status = problem.status
                response_started = True
                await send_rate_limited(send, problem)
                return
            reply = await handler(Call.from_scope(scope, receive, path_id))
            status = reply.status
            response_started = True
            await reply.send(send)
        except Exception:
            if not response_started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": list(_INTERNAL_ERROR_HEADERS),
                    }
                )
                await send({"type": "http.response.body", "body": _INTERNAL_ERROR})
            raise
        finally:
            self._recorder.record(scope, status, time.perf_counter() - started)
