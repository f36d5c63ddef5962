"""Cross-process wake-ups through PostgreSQL ``LISTEN``/``NOTIFY``.

Every relay process sharing one database holds one dedicated connection that ``LISTEN``s on a
channel named after the store's schema.  ``publish`` wakes this process's waiters at once and
queues the key; a sender task sends the queued keys with one ``pg_notify`` per batch *on the
listening connection*, so the notifications that come back to ourselves carry our own backend pid
and are ignored (our waiters were already woken).

The payload is the mailbox's blinded key in hex (a keyed hash, never a mailbox id).  Payloads that
are not exactly such a key are dropped: anyone able to ``NOTIFY`` on the database could send them.

The listening connection is supervised: if it drops (server restart, ``pg_terminate_backend``, a
silent network failure caught by the keepalive query) it is reopened with backoff, and after every
reconnection all local waiters are woken, because notifications sent while we were away are lost.
Delivery stays best-effort as :class:`~tigress.relay.stores.base.WakeupBus` allows: a lost wake-up
costs a waiter latency up to its own timeout, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from tigress.relay.stores.base import Subscription, WakeupBus
from tigress.relay.wakeup import LocalWakeupBus

_log = logging.getLogger("tigress.relay.wakeup")

#: Mailbox keys are 16-byte keyed hashes, so a valid payload is 32 hex digits.
KEY_BYTES = 16
#: Keys waiting to be sent while the listener is down are capped: beyond this, waiters elsewhere
#: fall back to their own timeouts rather than this process growing without bound.
MAX_PENDING = 10_000
#: One ``pg_notify`` statement carries at most this many keys.
MAX_BATCH = 500
_CLOSE_TIMEOUT = 5.0

ConnectFactory = Callable[[], Awaitable[Any]]


def parse_payload(payload: object) -> bytes | None:
    """The mailbox key a notification payload names, or None when it is not one."""
    if not isinstance(payload, str) or len(payload) != 2 * KEY_BYTES:
        return None
    if payload.strip("0123456789abcdef"):
        return None
    return bytes.fromhex(payload)


class PostgresWakeupBus(WakeupBus):
    """Wake-ups shared by every relay process listening on ``channel`` of one database.

    ``connect`` opens a fresh asyncpg connection to the database (the store passes its own DSN and
    settings).  ``channel`` may be set after construction with :meth:`use_channel`, but before
    :meth:`start`.
    """

    def __init__(
        self,
        connect: ConnectFactory,
        channel: str | None = None,
        *,
        keepalive_seconds: float = 10.0,
        reconnect_max_seconds: float = 5.0,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._keepalive = keepalive_seconds
        self._reconnect_max = reconnect_max_seconds
        self._local = LocalWakeupBus()  # this process's waiters
        self._pending: dict[str, None] = {}  # insertion-ordered set of hex keys
        self._pending_event = asyncio.Event()
        self._conn: Any = None
        self._conn_lock = asyncio.Lock()
        self._own_pid: int | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closing = False

    # -- configuration and state -------------------------------------------------------------

    def use_channel(self, channel: str) -> None:
        if self._supervisor is not None:
            raise RuntimeError("the channel cannot change once the bus has started")
        self._channel = channel

    @property
    def channel(self) -> str | None:
        return self._channel

    @property
    def listener_pid(self) -> int | None:
        """Backend pid of the listening connection while connected (for operators and tests)."""
        return self._own_pid if self._connected.is_set() else None

    @property
    def waiter_count(self) -> int:
        return self._local.waiter_count

    async def wait_connected(self, timeout: float) -> bool:
        """True once the listening connection is up (at most ``timeout`` seconds)."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    # -- WakeupBus ------------------------------------------------------------------------------

    def subscribe(self, key: bytes) -> AbstractAsyncContextManager[Subscription]:
        return self._local.subscribe(key)

    def publish(self, key: bytes) -> None:
        self._local.wake_local(key)
        if self._supervisor is None or self._closing:
            return
        if len(self._pending) >= MAX_PENDING:
            return
        self._pending[key.hex()] = None
        self._pending_event.set()

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        if not self._channel:
            raise RuntimeError("PostgresWakeupBus needs a channel before start()")
        self._closing = False
        # Fresh primitives: a bus closed on one event loop may be started again on another.
        self._pending_event = asyncio.Event()
        self._conn_lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._supervisor = asyncio.create_task(self._supervise(), name="tigress-pg-listener")
        self._sender = asyncio.create_task(self._send_loop(), name="tigress-pg-notifier")

    async def aclose(self) -> None:
        supervisor, sender = self._supervisor, self._sender
        if supervisor is None:
            return
        self._closing = True
        for task in (sender, supervisor):
            if task is not None:
                task.cancel()
        tasks = [task for task in (sender, supervisor) if task is not None]
        # Bounded: asyncio.wait_for on Python 3.11 can swallow a cancellation that races with a
        # completed connect, and shutdown must never hang on a background task.
        _done, pending = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)
        if pending:
            _log.warning("wake-up listener did not stop within %.0f s", _CLOSE_TIMEOUT)
        conn = self._conn
        if conn is not None and pending:
            conn.terminate()
        self._supervisor = self._sender = None
        self._pending.clear()

    # -- wake-ups from other processes ---------------------------------------------------------

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: object) -> None:
        if pid == self._own_pid:
            return  # our own publish: those waiters were woken when it was queued
        key = parse_payload(payload)
        if key is not None:
            self._local.wake_local(key)

    # -- the listening connection -------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = 0.05
        was_connected = False
        while not self._closing:
            try:
                conn = await asyncio.wait_for(self._connect(), timeout=10)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure to connect: retry with backoff
                _log.warning("wake-up listener cannot connect: %s", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._reconnect_max)
                continue
            try:
                await self._listen_on(conn, was_connected)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection failed: reconnect
                _log.warning("wake-up listener lost its connection: %s", type(exc).__name__)
            finally:
                if self._connected.is_set():
                    was_connected = True
                    backoff = 0.05
                self._connected.clear()
                self._conn = None
                await _discard(conn)
            if not self._closing:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._reconnect_max)

    async def _listen_on(self, conn: Any, reconnected: bool) -> None:
        terminated = asyncio.Event()
        conn.add_termination_listener(lambda _conn: terminated.set())
        await conn.add_listener(self._channel, self._on_notification)
        self._own_pid = int(conn.get_server_pid())
        self._conn = conn
        self._connected.set()
        if reconnected:
            # Notifications sent while we were disconnected are lost: let every waiter re-read.
            self._local.wake_all()
            _log.info("wake-up listener reconnected")
        while not terminated.is_set() and not self._closing:
            try:
                async with asyncio.timeout(self._keepalive):
                    await terminated.wait()
            except TimeoutError:
                # Idle: prove the connection still works (a silent network failure shows here).
                async with self._conn_lock, asyncio.timeout(self._keepalive):
                    await conn.execute("SELECT 1")
        if self._closing:
            return
        raise ConnectionError("listener connection terminated")

    # -- sending ------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            while self._pending:
                batch = list(self._pending)[:MAX_BATCH]
                for hex_key in batch:
                    del self._pending[hex_key]
                await self._send(batch)

    async def _send(self, batch: list[str]) -> None:
        conn = self._conn
        if conn is None:
            return  # not connected: waiters elsewhere wake on their own timeout
        try:
            async with self._conn_lock, asyncio.timeout(self._keepalive):
                await conn.execute(
                    "SELECT pg_notify($1, k) FROM unnest($2::text[]) AS k", self._channel, batch
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let a failed notify escape
            _log.warning("wake-up notify failed: %s", type(exc).__name__)
            # Drop the connection so the supervisor reconnects rather than failing again.
            if conn is self._conn:
                conn.terminate()


async def _discard(conn: Any) -> None:
    try:
        async with asyncio.timeout(2):
            await conn.close()
    except Exception:  # the connection is already broken: drop it without a goodbye
        conn.terminate()
