"""A scripted HTTP/1.1 receiver on 127.0.0.1 standing in for a device's webhook or push service.

It is a real server on a real socket: it parses each request the relay sends, records it, and
answers with the next scripted status (or hangs, to exercise timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

HANG = -1  # scripted "status": accept the request and never answer


@dataclass
class ReceivedRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) == 1, f"expected exactly one {name} header, got {values}"
        return values[0]

    @property
    def header_names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}


@dataclass
class Receiver:
    script: list[int] = field(default_factory=list)
    default_status: int = 200
    extra_response_headers: list[tuple[str, str]] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _hanging: list[asyncio.StreamWriter] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for writer in self._hanging:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str = "/hook", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        body = await reader.readexactly(length)
        self.requests.append(ReceivedRequest(method, target, headers, body))
        self._arrived.set()
        status = self.script.pop(0) if self.script else self.default_status
        if status == HANG:
            self._hanging.append(writer)
            return
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_response_headers)
        writer.write(
            f"HTTP/1.1 {status} Scripted\r\n{extra}Content-Length: 2\r\n"
            "Connection: close\r\n\r\nok".encode()
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition on the event loop; fails the test if it does not hold in time."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
