"""The embedded SQLite store: one file in WAL mode, one writer thread with group commit.

Writes from every request of this process go through a queue to a single writer thread, which
takes everything queued, runs it in *one* transaction (a savepoint per operation, so one failing
operation does not undo the others) and commits once — concurrent writes share one disk sync.
Futures resolve only after the commit, so a response is never sent for an uncommitted write.

Reads run directly on the event loop's thread on their own connection: in WAL mode a reader never
waits for the writer, and a point lookup costs microseconds, far less than a thread hop.

Several relay processes may share the file: SQLite's lock serialises their writer threads, every
conditional write re-checks its condition inside its transaction, and a
:class:`~tigress.relay.wakeup.DatagramWakeupBus` carries wake-ups between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from tigress.relay.stores.base import (
    AppendResult,
    CreateResult,
    DeleteResult,
    DisplayInformation,
    MailboxState,
    MailboxStore,
    NewMailbox,
    Payload,
    Side,
    StoredMessage,
    StoreUnavailableError,
    SweepResult,
    WakeupBus,
    WriteStatus,
)
from tigress.relay.wakeup import DatagramWakeupBus, socket_directory_for

_log = logging.getLogger("tigress.relay.store")
T = TypeVar("T")
Durability = Literal["normal", "full"]

_MAX_BATCH = 256
_BUSY_TIMEOUT_MS = 10_000

# Schema migrations, applied in order; PRAGMA user_version records how many ran.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE mailbox (
        id          INTEGER PRIMARY KEY,
        key         BLOB NOT NULL UNIQUE,
        i_claim     BLOB NOT NULL,
        r_claim     BLOB,
        rights      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        deleted_by  TEXT,
        deleted_req BLOB,
        title       TEXT,
        description TEXT,
        image_url   TEXT,
        last_seq    INTEGER NOT NULL,
        n_messages  INTEGER NOT NULL,
        i_token     BLOB,
        r_token     BLOB,
        i_req       BLOB,
        r_req       BLOB,
        r_req_claim BLOB
    );
    CREATE INDEX mailbox_expiry ON mailbox (expires_at);
    CREATE TABLE message (
        mailbox INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        side    TEXT NOT NULL,
        type    TEXT NOT NULL,
        data    TEXT NOT NULL,
        PRIMARY KEY (mailbox, seq)
    ) WITHOUT ROWID;
    CREATE TABLE create_request (
        claim      BLOB PRIMARY KEY,
        request_id BLOB NOT NULL,
        sealed_id  BLOB NOT NULL,
        mailbox    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX create_request_mailbox ON create_request (mailbox);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

# Column positions are relied on by _state() and the write operations below.
_SELECT_MAILBOX = (
    "SELECT id, key, i_claim, r_claim, rights, created_at, expires_at, deleted_by, title,"
    " description, image_url, last_seq, i_token, r_token, i_req, r_req, r_req_claim, n_messages,"
    " deleted_req FROM mailbox WHERE key = ? AND expires_at > ?"
)


def _same(a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a, b)


def _state(row: tuple[Any, ...]) -> MailboxState:
    display = None if row[8] is None else DisplayInformation(row[8], row[9], row[10])
    return MailboxState(
        key=row[1],
        initiator_claim=row[2],
        recipient_claim=row[3],
        access_rights=row[4],
        created_at=row[5],
        expires_at=row[6],
        deleted=row[7] is not None,
        display=display,
        last_seq=row[11],
        initiator_token=row[12],
        recipient_token=row[13],
        initiator_request_id=row[14],
        recipient_request_id=row[15],
        recipient_request_claim=row[16],
    )


def _connect(path: Path, durability: Durability) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=64
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = " + ("FULL" if durability == "full" else "NORMAL"))
    # Deleted mailboxes should not linger in free pages of the file.
    conn.execute("PRAGMA secure_delete = FAST")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    # BEGIN IMMEDIATE serialises concurrently starting worker processes.
    conn.execute("BEGIN IMMEDIATE")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        conn.execute("ROLLBACK")
        raise StoreUnavailableError(
            f"database schema version {version} is newer than this relay ({SCHEMA_VERSION})"
        )
    try:
        for number in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class _WriteJob:
    __slots__ = ("fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop


def _settle(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in results:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class SQLiteStore(MailboxStore):
    """Mailboxes in one SQLite file.  ``durability="normal"`` survives a crash of the process
    (``synchronous=NORMAL``); ``"full"`` survives power loss (``synchronous=FULL``)."""

    def __init__(self, path: Path, *, durability: Durability = "normal") -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
        self._path = path
        self._durability: Durability = durability
        self._bus = DatagramWakeupBus(socket_directory_for(path))
        self._reader: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    @property
    def wakeups(self) -> WakeupBus:
        return self._bus

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        self._closed = False
        self._writer = threading.Thread(
            target=self._writer_main, args=(loop, ready), name="tigress-sqlite-writer", daemon=True
        )
        self._writer.start()
        await ready
        self._reader = _connect(self._path, self._durability)
        await self._bus.start()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(writer.join)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await self._bus.aclose()

    # -- the writer thread ---------------------------------------------------------------------

    def _writer_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = _connect(self._path, self._durability)
            _migrate(conn)
        except BaseException as exc:
            failed: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = [
                (ready, None, exc)
            ]
            loop.call_soon_threadsafe(_settle, failed)
            return
        started: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = [(ready, None, None)]
        loop.call_soon_threadsafe(_settle, started)
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < _MAX_BATCH:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_WriteJob]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT op")
                try:
                    value = job.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((job.future, None, exc))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((job.future, value, None))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            _log.error("sqlite write transaction failed: %s", exc)
            failure = StoreUnavailableError(f"database write failed: {exc}")
            outcomes = [(job.future, None, failure) for job in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append(outcome)
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop already closed
                loop.call_soon_threadsafe(_settle, results)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None or self._closed:
            raise StoreUnavailableError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_WriteJob(fn, future, loop))
        return await future

    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            raise StoreUnavailableError("the store is not open")
        return self._reader

    # -- reads -----------------------------------------------------------------------------------

    async def health_check(self) -> None:
        try:
            self._read().execute("SELECT 1 FROM mailbox LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"database read failed: {exc}") from exc

    async def get_mailbox(self, key: bytes, now: int) -> MailboxState | None:
        try:
            row = self._read().execute(_SELECT_MAILBOX, (key, now)).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"database read failed: {exc}") from exc
        return None if row is None else _state(row)

    async def read_messages(
        self, key: bytes, side: Side, after: int, limit: int
    ) -> list[StoredMessage]:
        try:
            rows = (
                self._read()
                .execute(
                    "SELECT m.seq, m.type, m.data FROM mailbox b JOIN message m ON m.mailbox = b.id"
                    " WHERE b.key = ? AND m.seq > ? AND m.side = ? ORDER BY m.seq LIMIT ?",
                    (key, after, side.value, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"database read failed: {exc}") from exc
        return [StoredMessage(seq, side, Payload(t, d)) for seq, t, d in rows]

    async def latest_message(self, key: bytes, side: Side) -> StoredMessage | None:
        try:
            row = (
                self._read()
                .execute(
                    "SELECT m.seq, m.type, m.data FROM mailbox b JOIN message m ON m.mailbox = b.id"
                    " WHERE b.key = ? AND m.side = ? ORDER BY m.seq DESC LIMIT 1",
                    (key, side.value),
                )
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"database read failed: {exc}") from exc
        return None if row is None else StoredMessage(row[0], side, Payload(row[1], row[2]))

    # -- writes ----------------------------------------------------------------------------------

    async def create_mailbox(self, new: NewMailbox) -> CreateResult:
        def op(conn: sqlite3.Connection) -> CreateResult:
            earlier = conn.execute(
                "SELECT request_id, sealed_id FROM create_request WHERE claim = ?",
                (new.create_claim,),
            ).fetchone()
            if earlier is not None and hmac.compare_digest(earlier[0], new.initiator_request_id):
                return CreateResult(WriteStatus.DUPLICATE, earlier[1])
            cursor = conn.execute(
                "INSERT INTO mailbox (key, i_claim, rights, created_at, expires_at, title,"
                " description, image_url, last_seq, n_messages, i_token, i_req)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)",
                (
                    new.key,
                    new.initiator_claim,
                    new.access_rights,
                    new.created_at,
                    new.expires_at,
                    new.display.title,
                    new.display.description,
                    new.display.image_url,
                    new.initiator_token,
                    new.initiator_request_id,
                ),
            )
            rowid = cursor.lastrowid
            conn.execute(
                "INSERT INTO message (mailbox, seq, side, type, data) VALUES (?, 1, 'i', ?, ?)",
                (rowid, new.payload.type, new.payload.data),
            )
            conn.execute(
                "INSERT OR REPLACE INTO create_request (claim, request_id, sealed_id, mailbox)"
                " VALUES (?, ?, ?, ?)",
                (new.create_claim, new.initiator_request_id, new.sealed_mailbox_id, rowid),
            )
            return CreateResult(WriteStatus.OK)

        return await self._write(op)

    async def bind_recipient(
        self, key: bytes, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        def op(conn: sqlite3.Connection) -> WriteStatus:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return WriteStatus.NOT_FOUND
            if row[7] is not None:
                return WriteStatus.DELETED
            if row[3] is None:
                conn.execute(
                    "UPDATE mailbox SET r_claim = ?, r_token = ? WHERE id = ?",
                    (claim, token, row[0]),
                )
                return WriteStatus.OK
            if not _same(row[3], claim):
                return WriteStatus.ALREADY_BOUND
            if token is not None:
                conn.execute("UPDATE mailbox SET r_token = ? WHERE id = ?", (token, row[0]))
            return WriteStatus.OK

        return await self._write(op)

    async def set_token(
        self, key: bytes, side: Side, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        def op(conn: sqlite3.Connection) -> WriteStatus:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return WriteStatus.NOT_FOUND
            if row[7] is not None:
                return WriteStatus.DELETED
            if not _same(row[2] if side is Side.INITIATOR else row[3], claim):
                return WriteStatus.CLAIM_MISMATCH
            column = "i_token" if side is Side.INITIATOR else "r_token"
            conn.execute(f"UPDATE mailbox SET {column} = ? WHERE id = ?", (token, row[0]))  # noqa: S608
            return WriteStatus.OK

        return await self._write(op)

    async def append_message(
        self,
        key: bytes,
        side: Side,
        claim: bytes,
        *,
        payload: Payload,
        request_id: bytes,
        token: bytes | None,
        now: int,
        max_messages: int,
    ) -> AppendResult:
        initiator = side is Side.INITIATOR

        def op(conn: sqlite3.Connection) -> AppendResult:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return AppendResult(WriteStatus.NOT_FOUND)
            if not _same(row[2] if initiator else row[3], claim):
                return AppendResult(WriteStatus.CLAIM_MISMATCH)
            if row[7] is not None:
                return AppendResult(WriteStatus.DELETED)
            if initiator:
                duplicate = _same(row[14], request_id)
            else:
                duplicate = _same(row[15], request_id) and _same(row[16], claim)
            if duplicate:
                return AppendResult(WriteStatus.DUPLICATE)
            if row[17] >= max_messages:
                return AppendResult(WriteStatus.FULL)
            seq = row[11] + 1
            conn.execute(
                "INSERT INTO message (mailbox, seq, side, type, data) VALUES (?, ?, ?, ?, ?)",
                (row[0], seq, side.value, payload.type, payload.data),
            )
            if initiator:
                conn.execute(
                    "UPDATE mailbox SET last_seq = ?, n_messages = n_messages + 1, i_req = ?,"
                    " i_token = coalesce(?, i_token) WHERE id = ?",
                    (seq, request_id, token, row[0]),
                )
            else:
                conn.execute(
                    "UPDATE mailbox SET last_seq = ?, n_messages = n_messages + 1, r_req = ?,"
                    " r_req_claim = ?, r_token = coalesce(?, r_token) WHERE id = ?",
                    (seq, request_id, claim, token, row[0]),
                )
            return AppendResult(WriteStatus.OK, seq, row[13] if initiator else row[12])

        return await self._write(op)

    async def relinquish(
        self, key: bytes, claim: bytes, request_id: bytes, now: int
    ) -> WriteStatus:
        def op(conn: sqlite3.Connection) -> WriteStatus:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return WriteStatus.NOT_FOUND
            if _same(row[15], request_id) and _same(row[16], claim) and not _same(row[3], claim):
                return WriteStatus.DUPLICATE
            if row[7] is not None:
                return WriteStatus.DELETED
            if not _same(row[3], claim):
                return WriteStatus.CLAIM_MISMATCH
            removed = conn.execute(
                "DELETE FROM message WHERE mailbox = ? AND side = 'r'", (row[0],)
            ).rowcount
            conn.execute(
                "UPDATE mailbox SET r_claim = NULL, r_token = NULL, r_req = ?, r_req_claim = ?,"
                " n_messages = n_messages - ? WHERE id = ?",
                (request_id, claim, removed, row[0]),
            )
            return WriteStatus.OK

        return await self._write(op)

    async def delete_mailbox(
        self, key: bytes, side: Side, claim: bytes, request_id: bytes, now: int
    ) -> DeleteResult:
        initiator = side is Side.INITIATOR

        def op(conn: sqlite3.Connection) -> DeleteResult:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return DeleteResult(WriteStatus.NOT_FOUND)
            if not _same(row[2] if initiator else row[3], claim):
                return DeleteResult(WriteStatus.CLAIM_MISMATCH)
            if row[7] is not None:
                if row[7] == side.value and _same(row[18], request_id):
                    return DeleteResult(WriteStatus.DUPLICATE)
                return DeleteResult(WriteStatus.DELETED)
            conn.execute("DELETE FROM message WHERE mailbox = ?", (row[0],))
            conn.execute("DELETE FROM create_request WHERE mailbox = ?", (row[0],))
            conn.execute(
                "UPDATE mailbox SET deleted_by = ?, deleted_req = ?, title = NULL,"
                " description = NULL, image_url = NULL, i_token = NULL, r_token = NULL,"
                " n_messages = 0 WHERE id = ?",
                (side.value, request_id, row[0]),
            )
            peer_token = row[13] if initiator else row[12]
            return DeleteResult(WriteStatus.OK, row[3] is not None, peer_token)

        return await self._write(op)

    async def delete_expired(self, now: int, batch: int) -> SweepResult:
        def op(conn: sqlite3.Connection) -> SweepResult:
            rows = conn.execute(
                "SELECT id, deleted_by FROM mailbox WHERE expires_at <= ? LIMIT ?", (now, batch)
            ).fetchall()
            if not rows:
                return SweepResult(0, 0)
            ids = [(r[0],) for r in rows]
            conn.executemany("DELETE FROM message WHERE mailbox = ?", ids)
            conn.executemany("DELETE FROM create_request WHERE mailbox = ?", ids)
            conn.executemany("DELETE FROM mailbox WHERE id = ?", ids)
            return SweepResult(len(rows), sum(1 for r in rows if r[1] is None))

        return await self._write(op)
