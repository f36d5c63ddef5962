"""A deliberately small HTTP/1.1 client for one POST to an already-checked address.

General clients resolve host names themselves, follow proxies from the environment and pool
connections by address; each of those could undo the URL policy (a second DNS answer, a proxy
elsewhere, a TLS session verified for another name).  This client connects to exactly the
address it is given, verifies TLS for the URL's host name (SNI and certificate), sends one
request with ``Connection: close``, reads only the status line and headers, and never follows
a redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from tigress.relay.notify.urlpolicy import IPAddress, TargetUrl

MAX_HEADER_BYTES = 16 * 1024
MAX_INTERIM_RESPONSES = 5


class HttpProtocolError(OSError):
    """The peer's answer is not a well-formed HTTP/1.x response within our limits."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    retry_after: float | None  # seconds, when the server sent a numeric Retry-After


async def post(
    target: TargetUrl,
    address: IPAddress,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
    read_timeout: float,
) -> HttpResponse:
    """POST ``body`` to ``target`` via ``address``; OSError or TimeoutError on transport faults."""
    tls = ssl_context if target.scheme == "https" else None
    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(
            host=str(address),
            port=target.port,
            ssl=tls,
            server_hostname=target.host if tls is not None else None,
            limit=MAX_HEADER_BYTES,
        )
    try:
        async with asyncio.timeout(read_timeout):
            writer.write(_request_head(target, headers, len(body)) + body)
            await writer.drain()
            return await _read_response(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()


def _request_head(target: TargetUrl, headers: list[tuple[str, str]], length: int) -> bytes:
    lines = [f"POST {target.request_target} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers:
        if any(ch in name + value for ch in "\r\n\x00"):
            raise ValueError("header contains a line break")  # never from our own values
        lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _read_response(reader: asyncio.StreamReader) -> HttpResponse:
    for _ in range(MAX_INTERIM_RESPONSES + 1):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise HttpProtocolError("response headers too large") from exc
        except asyncio.IncompleteReadError as exc:
            raise HttpProtocolError("connection closed before a complete response") from exc
        status, retry_after = _parse_head(head)
        if status >= 200:
            return HttpResponse(status, retry_after)
        # 1xx interim responses (e.g. 100 Continue) precede the real one.
    raise HttpProtocolError("too many interim responses")


def _parse_head(head: bytes) -> tuple[int, float | None]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpProtocolError("malformed status line")
    code = parts[1]
    if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 599:
        raise HttpProtocolError("malformed status code")
    retry_after: float | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "retry-after":
            text = value.strip()
            if text.isdigit() and len(text) <= 9:
                retry_after = float(text)
    return int(code), retry_after
