"""Direct transfer without a relay: one TCP connection from the receiver to the sender.

The sender listens; the invitation (``tigress+direct://host:port/session#secret``) tells the
receiver where.  On the connection each side writes length-prefixed frames: a ``u32`` big-endian
length, then that many bytes, at most :data:`MAX_MESSAGE_SIZE`.  The receiver's first message is
a hello — ``b"TGD1"`` and the 8-byte channel tag of the session — so a stray connection (a port
scanner, a receiver of another share) is dropped without consuming the share.  After the hello
the same channel frames as through a relay flow in both directions; the state machines check
them exactly as they would a relay's.
"""

from __future__ import annotations

import contextlib
import hmac
import socket
import struct
import time

from tigress.protocol.frames import MAX_FRAME_SIZE, channel_tag

HELLO_MAGIC = b"TGD1"
HELLO_SIZE = len(HELLO_MAGIC) + 8
MAX_MESSAGE_SIZE = MAX_FRAME_SIZE
_LENGTH = struct.Struct(">I")


class DirectError(Exception):
    """The direct connection failed, timed out, or the peer broke the framing."""


class DirectTimeout(DirectError):
    pass


class DirectClosed(DirectError):
    """The peer closed the connection."""


def hello_for(channel_id: bytes) -> bytes:
    return HELLO_MAGIC + channel_tag(channel_id)


class DirectConnection:
    """Frames over one connected socket, each read bounded by a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __repr__(self) -> str:
        return "<DirectConnection>"

    def send(self, message: bytes, *, timeout: float = 30.0) -> None:
        if len(message) > MAX_MESSAGE_SIZE:
            raise DirectError(f"a frame of {len(message)} bytes exceeds {MAX_MESSAGE_SIZE}")
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(_LENGTH.pack(len(message)) + message)
        except TimeoutError as exc:
            raise DirectTimeout("sending to the peer timed out") from exc
        except OSError as exc:
            raise DirectClosed(f"the connection broke while sending ({exc.strerror})") from exc

    def receive(self, *, timeout: float) -> bytes:
        """The next message; raises DirectTimeout, DirectClosed or DirectError."""
        deadline = time.monotonic() + timeout
        header = self._read_exactly(_LENGTH.size, deadline, allow_eof=True)
        (length,) = _LENGTH.unpack(header)
        if length == 0 or length > MAX_MESSAGE_SIZE:
            raise DirectError(
                f"the peer announced a frame of {length} bytes (limit {MAX_MESSAGE_SIZE})"
            )
        return self._read_exactly(length, deadline, allow_eof=False)

    def _read_exactly(self, size: int, deadline: float, *, allow_eof: bool) -> bytes:
        buffer = bytearray()
        while len(buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if buffer:
                    raise DirectError("the peer stopped in the middle of a frame")
                raise DirectTimeout("no frame from the peer in time")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(size - len(buffer))
            except TimeoutError:
                continue
            except OSError as exc:
                raise DirectClosed(f"the connection broke ({exc.strerror})") from exc
            if not chunk:
                if allow_eof and not buffer:
                    raise DirectClosed("the peer closed the connection")
                raise DirectError("the peer closed the connection in the middle of a frame")
            buffer += chunk
        return bytes(buffer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


class DirectListener:
    """The sender's listening socket; ``accept`` returns the first connection with the hello."""

    def __init__(self, host: str, port: int = 0, *, channel_id: bytes) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
            self._sock.listen(4)
        except OSError as exc:
            self._sock.close()
            raise DirectError(f"cannot listen on {host}:{port} ({exc.strerror})") from exc
        self._hello = hello_for(channel_id)

    def __repr__(self) -> str:
        return f"<DirectListener port={self.port}>"

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def accept(self, *, timeout: float, hello_timeout: float = 10.0) -> DirectConnection:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DirectTimeout("no receiver connected in time")
            self._sock.settimeout(remaining)
            try:
                sock, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                raise DirectError(f"accepting a connection failed ({exc.strerror})") from exc
            connection = DirectConnection(sock)
            try:
                hello = connection.receive(timeout=min(hello_timeout, max(remaining, 0.1)))
            except DirectError:
                connection.close()
                continue
            if hmac.compare_digest(hello, self._hello):
                return connection
            connection.close()  # someone else: keep waiting for the real receiver

    def close(self) -> None:
        self._sock.close()


def connect(host: str, port: int, *, channel_id: bytes, timeout: float = 15.0) -> DirectConnection:
    """The receiver's side: connect, send the hello."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DirectError(
            f"cannot connect to the sender at {host}:{port} ({exc.strerror or exc})"
        ) from exc
    connection = DirectConnection(sock)
    connection.send(hello_for(channel_id), timeout=timeout)
    return connection
