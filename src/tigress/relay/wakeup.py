"""Wake-up buses: in-process fan-out, and a cross-process bus over Unix datagram sockets.

The datagram bus is the SQLite store's: every relay process sharing one database file binds a
socket in a directory next to it and, after each committed write, sends the 16-byte mailbox key to
every other socket there.  Nothing polls; a stale socket (its process died) is removed on the first
failed send.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from tigress.relay.stores.base import Subscription, WakeupBus

_log = logging.getLogger("tigress.relay.wakeup")
# sun_path holds 108 bytes on Linux; keep a margin for the file name we append.
_MAX_SOCKET_PATH = 100
_SUFFIX = ".sock"
_PEERS_RECHECK_SECONDS = 0.005


class EventSubscription(Subscription):
    """One waiter: woken by an event, which it clears when it returns."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        if not self._event.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._event.wait()
            except TimeoutError:
                return False
        self._event.clear()
        return True


class LocalWakeupBus(WakeupBus):
    """Fans a wake-up out to the waiters of this process.  Used on its own by single-process
    stores and inside every cross-process bus."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, set[EventSubscription]] = {}

    @property
    def waiter_count(self) -> int:
        return sum(len(s) for s in self._waiters.values())

    def subscribe(self, key: bytes) -> AbstractAsyncContextManager[Subscription]:
        return self._subscription(key)

    @contextlib.asynccontextmanager
    async def _subscription(self, key: bytes) -> AsyncIterator[Subscription]:
        sub = EventSubscription()
        self._waiters.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(sub)
                if not waiters:
                    del self._waiters[key]

    def publish(self, key: bytes) -> None:
        self.wake_local(key)

    def wake_local(self, key: bytes) -> None:
        waiters = self._waiters.get(key)
        if waiters:
            for sub in waiters:
                sub.wake()

    def wake_all(self) -> None:
        """Wake every waiter (after wake-ups may have been lost, e.g. a reconnect)."""
        for waiters in self._waiters.values():
            for sub in waiters:
                sub.wake()


def socket_directory_for(db_path: Path) -> Path:
    """Where the processes sharing ``db_path`` meet: ``<db>.wake/`` next to the database, or —
    when that path is too long for a Unix socket address — a private directory in the runtime or
    temporary directory named after a hash of the database path."""
    beside = Path(str(db_path) + ".wake")
    if len(os.fsencode(beside)) + 1 + 24 + len(_SUFFIX) <= _MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(db_path.resolve())).hexdigest()[:16]
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"tigress-wake-{os.getuid()}-{digest}"


def _ensure_private_directory(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    # A directory someone else made (or a symlink) could redirect our wake-ups: refuse it.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PermissionError(f"wake-up directory {path} is not a directory owned by this user")


class DatagramWakeupBus(WakeupBus):
    """Cross-process wake-ups through Unix datagram sockets in one shared directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._local = LocalWakeupBus()
        self._sock: socket.socket | None = None
        self._own_name = ""
        self._peers: list[str] = []
        self._peers_mtime_ns = -1
        self._peers_checked = -_PEERS_RECHECK_SECONDS
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def directory(self) -> Path:
        return self._directory

    def subscribe(self, key: bytes) -> AbstractAsyncContextManager[Subscription]:
        return self._local.subscribe(key)

    async def start(self) -> None:
        if self._sock is not None:
            return
        _ensure_private_directory(self._directory)
        self._own_name = f"{os.getpid()}-{secrets.token_hex(6)}{_SUFFIX}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(self._directory / self._own_name))
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_readable)

    async def aclose(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            (self._directory / self._own_name).unlink()

    def publish(self, key: bytes) -> None:
        self._local.wake_local(key)
        sock = self._sock
        if sock is None:
            return
        for name in self._current_peers():
            try:
                sock.sendto(key, str(self._directory / name))
            except (ConnectionRefusedError, FileNotFoundError):
                # The process behind this socket is gone: forget it.
                with contextlib.suppress(OSError):
                    (self._directory / name).unlink()
                self._peers_mtime_ns = -1
                self._peers_checked = -_PEERS_RECHECK_SECONDS
            except OSError as exc:
                # A full receive buffer (EAGAIN) means that process is stalled; its waiters still
                # wake on their own timeout.  Nothing here may fail the request.
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    _log.warning("wake-up send failed: %s", exc.strerror)

    def _current_peers(self) -> list[str]:
        # Every committed write publishes: look at the directory at most once per interval
        # (a stat costs more than the rest of a publish).  A process that joined within the
        # interval misses at most the wake-ups of that interval; its waiters re-check on their
        # own timeouts, and the directory changes only when a relay process starts or stops.
        now = time.monotonic()
        if now - self._peers_checked < _PEERS_RECHECK_SECONDS:
            return self._peers
        self._peers_checked = now
        try:
            mtime = os.stat(self._directory).st_mtime_ns
        except OSError:
            return []
        if mtime != self._peers_mtime_ns:
            try:
                names = os.listdir(self._directory)
            except OSError:
                return []
            self._peers = [n for n in names if n.endswith(_SUFFIX) and n != self._own_name]
            self._peers_mtime_ns = mtime
        return self._peers

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._local.wake_local(data)
