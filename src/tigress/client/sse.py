"""A small, strict server-sent-events parser (the relay's ``/events`` stream).

Lines may end in CRLF, LF or CR.  Lines and events are size-capped so a hostile server cannot
make the client buffer without bound; exceeding a cap raises :class:`SseError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_LINE_BYTES = 8192
MAX_EVENT_BYTES = 65536


class SseError(Exception):
    """The event stream is malformed or exceeds the size limits."""


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None
    retry: int | None = None


def iter_lines(chunks: Iterable[bytes], *, max_line: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Split a byte stream into decoded lines on CRLF, LF or CR."""
    buffer = bytearray()
    pending_cr = False
    for chunk in chunks:
        for byte in chunk:
            if pending_cr:
                pending_cr = False
                if byte == 0x0A:  # the LF of a CRLF
                    continue
            if byte in (0x0A, 0x0D):
                pending_cr = byte == 0x0D
                yield _decode(bytes(buffer))
                buffer.clear()
                continue
            buffer.append(byte)
            if len(buffer) > max_line:
                raise SseError(f"an event-stream line exceeds {max_line} bytes")
    if buffer:
        # A final line without a terminator is discarded by the SSE rules (incomplete event).
        return


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SseError("the event stream is not UTF-8") from exc


class SseParser:
    """Feed lines; complete events come out on blank lines (the SSE dispatch rule)."""

    def __init__(self, *, max_event: int = MAX_EVENT_BYTES) -> None:
        self._max_event = max_event
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (heartbeat)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._size += len(value) + 1
            if self._size > self._max_event:
                raise SseError(f"an event exceeds {self._max_event} bytes")
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # Unknown field names are ignored, as the SSE specification requires.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self.last_event_id, self.retry)


def parse_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    parser = SseParser()
    for line in iter_lines(chunks):
        event = parser.feed(line)
        if event is not None:
            yield event
