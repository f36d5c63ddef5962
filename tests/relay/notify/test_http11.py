"""The minimal HTTP/1.1 client against hostile or odd servers: precise errors, bounded reads."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tigress.relay.notify.http11 import HttpProtocolError, _parse_head, post
from tigress.relay.notify.urlpolicy import TargetUrl

pytestmark = pytest.mark.anyio

LOOPBACK = ipaddress.ip_address("127.0.0.1")


async def raw_server(reply: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def reply_with() -> AsyncIterator[Callable[[bytes], Awaitable[TargetUrl]]]:
    servers: list[asyncio.Server] = []

    async def start(reply: bytes) -> TargetUrl:
        server, port = await raw_server(reply)
        servers.append(server)
        return TargetUrl("http", "127.0.0.1", port, "/x", LOOPBACK)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def send(target: TargetUrl) -> int:
    response = await post(
        target,
        LOOPBACK,
        [("Content-Type", "application/json")],
        b"{}",
        ssl_context=None,
        connect_timeout=2.0,
        read_timeout=2.0,
    )
    return response.status


async def test_interim_responses_are_skipped(
    reply_with: Callable[[bytes], Awaitable[TargetUrl]],
) -> None:
    target = await reply_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert await send(target) == 204


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"garbage\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status code"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "malformed status code"),
        (b"HTTP/2 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 20000 + b"\r\n\r\n", "too large"),
        (b"HTTP/1.1 200 OK\r\n", "closed before a complete response"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 7, "too many interim"),
    ],
)
async def test_malformed_responses_raise_the_protocol_error(
    reply_with: Callable[[bytes], Awaitable[TargetUrl]],
    reply: bytes,
    message: str,
) -> None:
    target = await reply_with(reply)
    with pytest.raises(HttpProtocolError, match=message):
        await send(target)


def test_retry_after_is_read_when_numeric() -> None:
    assert _parse_head(b"HTTP/1.1 503 X\r\nRetry-After: 7\r\n\r\n") == (503, 7.0)
    assert _parse_head(b"HTTP/1.1 503 X\r\nretry-after: Wed, 21 Oct 2015\r\n\r\n") == (503, None)


@given(st.binary(max_size=300))
def test_head_parser_raises_only_the_protocol_error(head: bytes) -> None:
    try:
        status, _ = _parse_head(head)
    except HttpProtocolError:
        return
    assert 100 <= status <= 599
