"""The embedded SQLite store: one file in WAL mode, group commit on the event loop.

Writes from every request of this process gather into a batch that runs in *one* transaction (a
savepoint per operation, so one failing operation does not undo the others) and commits once —
concurrent writes share one disk sync.  With durability ``normal`` (``synchronous=NORMAL``: a WAL
commit is a write into the page cache, no disk sync) the batch commits on the event loop's thread,
which costs far less than handing every write to a thread and back; with ``full`` the COMMIT and
its disk sync run in a thread while the next batch gathers.  Futures resolve only after the
commit, so a response is never sent for an uncommitted write.  WAL checkpoints run in a
background thread, never inline.

Reads run directly on the event loop's thread on their own connection: in WAL mode a reader never
waits for the writer, and a point lookup costs microseconds, far less than a thread hop.

Several relay processes may share the file: SQLite's write lock serialises their batches (a batch
that finds the lock taken retries after a short, growing delay on the loop — never sleeping in
SQLite's busy handler, which would stall every request), every conditional write re-checks its
condition inside its transaction, and a
:class:`~tigress.relay.wakeup.DatagramWakeupBus` carries wake-ups between them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import logging
import sqlite3
import time
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
    MailboxView,
    NewMailbox,
    Payload,
    Side,
    StoredMessage,
    StoreUnavailableError,
    SweepResult,
    WakeupBus,
    WriteStatus,
    side_of,
)
from tigress.relay.wakeup import DatagramWakeupBus, socket_directory_for

_log = logging.getLogger("tigress.relay.store")
T = TypeVar("T")
Durability = Literal["normal", "full"]

_MAX_BATCH = 256
_BUSY_TIMEOUT_MS = 10_000
_BUSY_FIRST_DELAY = 0.0002
_BUSY_MAX_DELAY = 0.005
# A checkpoint copies every page written since the last one: the hot pages (recent mailbox rows,
# index interiors) are written many times but copied once, so spacing checkpoints out saves CPU
# (~3% of the store's per-transfer cost from 1,000 to 4,000); the WAL then peaks at ~10 MB.
_CHECKPOINT_EVERY_OPS = 4000
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
_WRITER_CACHE_KIB = 64 * 1024  # the writer also serves most reads: keep the hot B-tree pages

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
    # 2: messages move to a rowid table.  A WITHOUT ROWID table is an index B-tree, whose cells
    # keep at most ~1 KB on a 4 KiB page, so every ~1.4 KB frame spilled into an overflow page of
    # its own (one more page to write per message, and a freed overflow page is not zeroed by
    # secure_delete=FAST).  A rowid table keeps up to ~4 KB in the leaf; the unique index keeps
    # (mailbox, seq) lookups and the one-message-per-seq invariant.
    """
    CREATE TABLE message_v2 (
        mailbox INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        side    TEXT NOT NULL,
        type    TEXT NOT NULL,
        data    TEXT NOT NULL
    );
    INSERT INTO message_v2 (mailbox, seq, side, type, data)
        SELECT mailbox, seq, side, type, data FROM message ORDER BY mailbox, seq;
    DROP TABLE message;
    ALTER TABLE message_v2 RENAME TO message;
    CREATE UNIQUE INDEX message_seq ON message (mailbox, seq);
    """,
    # 3: the create-idempotency record moves into its mailbox's row.  A create then costs two
    # statements (the insert finds an earlier record of its claim through the unique index)
    # instead of four, and a delete one less; the partial index holds only live records.
    """
    ALTER TABLE mailbox ADD COLUMN c_claim BLOB;
    ALTER TABLE mailbox ADD COLUMN c_req BLOB;
    ALTER TABLE mailbox ADD COLUMN c_sealed BLOB;
    UPDATE mailbox SET (c_claim, c_req, c_sealed) =
        (SELECT claim, request_id, sealed_id FROM create_request WHERE mailbox = mailbox.id)
        WHERE id IN (SELECT mailbox FROM create_request);
    DROP TABLE create_request;
    CREATE UNIQUE INDEX mailbox_create ON mailbox (c_claim) WHERE c_claim IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

# Column positions are relied on by _state() and the write operations below.
_SELECT_MAILBOX = (
    "SELECT id, key, i_claim, r_claim, rights, created_at, expires_at, deleted_by, title,"
    " description, image_url, last_seq, i_token, r_token, i_req, r_req, r_req_claim, n_messages,"
    " deleted_req FROM mailbox WHERE key = ? AND expires_at > ?"
)


_LATEST_OF_SIDE = (
    "SELECT seq, type, data FROM message WHERE mailbox = ? AND side = ? ORDER BY seq DESC LIMIT 1"
)
_AFTER_OF_SIDE = (
    "SELECT seq, type, data FROM message WHERE mailbox = ? AND seq > ? AND side = ?"
    " ORDER BY seq LIMIT ?"
)
# A create whose claim holds no record (the common case) inserts at once; otherwise it does
# nothing and the caller looks at the earlier record.
_INSERT_MAILBOX = (
    "INSERT INTO mailbox (key, i_claim, rights, created_at, expires_at, title, description,"
    " image_url, last_seq, n_messages, i_token, i_req, c_claim, c_req, c_sealed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?, ?, ?)"
    " ON CONFLICT (c_claim) WHERE c_claim IS NOT NULL DO NOTHING"
)
# The common bind: the recipient seat is free.  Its WHERE is the whole condition, so the winner
# needs no read first; a loser reads the row to learn why.
_BIND_FREE_SEAT = (
    "UPDATE mailbox SET r_claim = ?, r_token = ?"
    " WHERE key = ? AND expires_at > ? AND deleted_by IS NULL AND r_claim IS NULL"
)


def _same(a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a, b)


def _writer_side(row: tuple[Any, ...], side: Side | None, claim: bytes) -> Side | WriteStatus:
    """The side ``claim`` writes as (resolving ``side`` None), or why it may not."""
    if side is None:
        if _same(row[2], claim):
            return Side.INITIATOR
        if _same(row[3], claim):
            return Side.RECIPIENT
        # A stranger learns nothing from a tombstone: it answers like an unknown id.
        return WriteStatus.NOT_FOUND if row[7] is not None else WriteStatus.CLAIM_MISMATCH
    if not _same(row[2] if side is Side.INITIATOR else row[3], claim):
        return WriteStatus.CLAIM_MISMATCH
    return side


def _state(row: tuple[Any, ...]) -> MailboxState:
    # Positional: the field order of MailboxState (keyword matching costs on every read).
    return MailboxState(
        row[1],  # key
        row[2],  # initiator_claim
        row[3],  # recipient_claim
        row[4],  # access_rights
        row[5],  # created_at
        row[6],  # expires_at
        row[7] is not None,  # deleted
        None if row[8] is None else DisplayInformation(row[8], row[9], row[10]),
        row[11],  # last_seq
        row[12],  # initiator_token
        row[13],  # recipient_token
        row[14],  # initiator_request_id
        row[15],  # recipient_request_id
        row[16],  # recipient_request_claim
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


_Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]
_Job = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]


def _settle(outcomes: list[_Outcome]) -> None:
    for future, value, error in outcomes:
        if future.done():  # the request was cancelled; its write still committed
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _is_busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


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
        self._writer: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # Group commit state, touched on the event loop's thread only.
        self._pending: list[_Job] = []
        self._flush_handle: asyncio.Handle | None = None
        self._committing = False  # "full": a batch's COMMIT (the disk sync) runs in a thread
        self._busy_since: float | None = None
        self._busy_delay = _BUSY_FIRST_DELAY
        self._ops_since_checkpoint = 0
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._commit_thread: concurrent.futures.ThreadPoolExecutor | None = None

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
        # Connecting and migrating may wait for another starting process: not on the loop.
        writer = await asyncio.to_thread(self._open_writer)
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._writer = writer
        if self._durability == "full":
            self._commit_thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="tigress-sqlite-commit"
            )
        self._reader = _connect(self._path, self._durability)
        await self._bus.start()

    def _open_writer(self) -> sqlite3.Connection:
        conn = _connect(self._path, self._durability)
        try:
            _migrate(conn)
            # The writer runs on the event loop: it must never sleep in SQLite's busy handler
            # (we retry on the loop instead) nor checkpoint inline (a background thread does).
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self._closed = True  # refuse new writes; finish the ones already accepted
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000 + 1
        while (self._pending or self._committing) and time.monotonic() < deadline:
            if self._flush_handle is None and not self._committing:
                self._flush()
            await asyncio.sleep(0.001)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._fail_pending(StoreUnavailableError("the store closed"))
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        self._writer = None
        if self._commit_thread is not None:
            self._commit_thread.shutdown(wait=True)
            self._commit_thread = None
        checkpointer, self._checkpointer = self._checkpointer, None
        reader, self._reader = self._reader, None
        for conn in (checkpointer, reader, writer):
            if conn is not None:
                # The last connection to close checkpoints the WAL: off the loop.
                await asyncio.to_thread(conn.close)
        await self._bus.aclose()

    # -- group commit on the event loop --------------------------------------------------------
    #
    # Every write of this process joins a batch that the event loop runs in *one* transaction,
    # a savepoint per operation, as soon as the current callbacks finish.  With
    # ``synchronous=NORMAL`` a WAL commit is a write() into the page cache, so the batch commits
    # inline and no thread hop is paid; with ``FULL`` the COMMIT (the disk sync) runs in a
    # thread while the next batch gathers.  A future resolves only after its COMMIT returned.

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = self._loop
        if self._writer is None or self._closed or loop is None:
            raise StoreUnavailableError("the store is not open")
        if asyncio.get_running_loop() is not loop:
            raise StoreUnavailableError("the store is used from another event loop")
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if self._flush_handle is None and not self._committing:
            self._flush_handle = loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_handle = None
        if self._committing or not self._pending:
            return
        conn = self._writer
        if conn is None:
            self._fail_pending(StoreUnavailableError("the store is not open"))
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if _is_busy(exc):  # another process is writing: retry shortly, the batch grows
                self._retry_busy()
                return
            _log.error("sqlite write transaction failed: %s", exc)
            self._fail_pending(StoreUnavailableError(f"database write failed: {exc}"))
            return
        self._busy_since = None
        batch = self._pending[:_MAX_BATCH]
        del self._pending[:_MAX_BATCH]
        try:
            outcomes = self._run_batch(conn, batch)
        except sqlite3.Error as exc:
            self._abort(conn, batch, exc)
            return
        if outcomes is None:  # a lone operation failed and was rolled back with its transaction
            self._schedule_next()
            return
        if self._durability == "full":
            assert self._loop is not None and self._commit_thread is not None
            self._committing = True
            commit = self._loop.run_in_executor(self._commit_thread, conn.execute, "COMMIT")
            commit.add_done_callback(lambda done: self._committed(done, conn, batch, outcomes))
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._abort(conn, batch, exc)
            return
        self._after_commit(len(batch))
        _settle(outcomes)
        self._schedule_next()

    @staticmethod
    def _run_batch(conn: sqlite3.Connection, batch: list[_Job]) -> list[_Outcome] | None:
        """Run every operation; the outcomes to settle after COMMIT, or None when the batch was
        one failed operation (its transaction is rolled back and its future failed).

        Operations almost never fail, so they first run without savepoints (two statements per
        operation saved).  If one does fail, the batch is rolled back to its start and runs
        again with a savepoint around each operation, so only the failing one is undone: the
        operations are closures over their arguments that read their conditions inside the
        transaction, so running them again from the same state gives the same result."""
        if len(batch) == 1:
            # A lone failing operation rolls back its whole transaction instead.
            fn, future = batch[0]
            try:
                value = fn(conn)
            except Exception as exc:
                conn.execute("ROLLBACK")
                _settle([(future, None, exc)])
                return None
            return [(future, value, None)]
        conn.execute("SAVEPOINT batch")
        try:
            return [(future, fn(conn), None) for fn, future in batch]
        except Exception:
            conn.execute("ROLLBACK TO batch")  # the transaction (and the write lock) stay ours
        outcomes: list[_Outcome] = []
        for fn, future in batch:
            conn.execute("SAVEPOINT op")
            try:
                value = fn(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((future, None, exc))
            else:
                conn.execute("RELEASE op")
                outcomes.append((future, value, None))
        return outcomes

    def _committed(
        self,
        done: asyncio.Future[Any],
        conn: sqlite3.Connection,
        batch: list[_Job],
        outcomes: list[_Outcome],
    ) -> None:
        self._committing = False
        error = done.exception()
        if error is None:
            self._after_commit(len(batch))
            _settle(outcomes)
        elif isinstance(error, sqlite3.Error):
            self._abort(conn, batch, error)
            return
        else:
            _settle([(future, None, error) for _, future in batch])
        self._schedule_next()

    def _abort(self, conn: sqlite3.Connection, batch: list[_Job], exc: sqlite3.Error) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        _log.error("sqlite write transaction failed: %s", exc)
        failure = StoreUnavailableError(f"database write failed: {exc}")
        _settle([(future, None, failure) for _, future in batch])
        self._schedule_next()

    def _schedule_next(self) -> None:
        if self._pending and self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _retry_busy(self) -> None:
        assert self._loop is not None
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
            self._busy_delay = _BUSY_FIRST_DELAY
        elif now - self._busy_since > _BUSY_TIMEOUT_MS / 1000:
            self._busy_since = None
            _log.error("sqlite write transaction failed: the database stayed locked")
            self._fail_pending(StoreUnavailableError("database write failed: database is locked"))
            return
        else:
            self._busy_delay = min(self._busy_delay * 2, _BUSY_MAX_DELAY)
        self._flush_handle = self._loop.call_later(self._busy_delay, self._flush)

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, []
        _settle([(future, None, error) for _, future in pending])

    def _after_commit(self, operations: int) -> None:
        self._ops_since_checkpoint += operations
        if self._ops_since_checkpoint >= _CHECKPOINT_EVERY_OPS and self._checkpoint is None:
            self._ops_since_checkpoint = 0
            assert self._loop is not None
            self._checkpoint = self._loop.run_in_executor(None, self._run_checkpoint)
            self._checkpoint.add_done_callback(self._checkpoint_done)

    def _run_checkpoint(self) -> None:
        """Copy committed WAL frames into the database file (PASSIVE: never blocks writers)."""
        if self._checkpointer is None:
            self._checkpointer = _connect(self._path, self._durability)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpoint_done(self, done: asyncio.Future[None]) -> None:
        self._checkpoint = None
        error = done.exception()
        if error is not None:
            _log.warning("sqlite checkpoint failed: %s", error)

    def _read(self) -> sqlite3.Connection:
        """The connection for a read: the writer's whenever it holds no open transaction.

        Reads follow writes closely, and a connection's page cache is dropped whenever *another*
        connection commits: reading on the writer keeps its cache warm (no pread per B-tree page).
        Its transactions never stay open across an ``await`` with ``normal`` durability, so a
        read there sees exactly the committed state; while a ``full`` batch's COMMIT is still
        running, reads go to the separate reader connection, which sees only committed data."""
        writer = self._writer
        if writer is not None and not self._committing and not writer.in_transaction:
            return writer
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

    async def read_mailbox(
        self, key: bytes, claim: bytes, now: int, *, after: int | None, limit: int
    ) -> MailboxView | None:
        # Two point lookups on one connection, no explicit transaction: BEGIN and COMMIT would
        # cost more than the second read-lock they save.
        try:
            conn = self._read()
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return None
            state = _state(row)
            side = side_of(state, claim)
            if state.deleted:
                return MailboxView(state, side, [])
            peer = Side.RECIPIENT if side is Side.INITIATOR else Side.INITIATOR
            if after is None:
                latest = conn.execute(_LATEST_OF_SIDE, (row[0], peer.value)).fetchone()
                rows = [] if latest is None else [latest]
            else:
                rows = conn.execute(_AFTER_OF_SIDE, (row[0], after, peer.value, limit)).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"database read failed: {exc}") from exc
        return MailboxView(
            state, side, [StoredMessage(seq, peer, Payload(t, d)) for seq, t, d in rows]
        )

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
        values = (
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
            new.create_claim,
            new.initiator_request_id,
            new.sealed_mailbox_id,
        )

        def op(conn: sqlite3.Connection) -> CreateResult:
            cursor = conn.execute(_INSERT_MAILBOX, values)
            if not cursor.rowcount:  # this claim's record is held by an earlier mailbox
                earlier = conn.execute(
                    "SELECT id, c_req, c_sealed FROM mailbox WHERE c_claim = ?",
                    (new.create_claim,),
                ).fetchone()
                if earlier is None:
                    raise sqlite3.IntegrityError("the mailbox insert was ignored")
                if hmac.compare_digest(earlier[1], new.initiator_request_id):
                    return CreateResult(WriteStatus.DUPLICATE, earlier[2])
                # One record per claim: the latest request wins.
                conn.execute(
                    "UPDATE mailbox SET c_claim = NULL, c_req = NULL, c_sealed = NULL WHERE id = ?",
                    (earlier[0],),
                )
                cursor = conn.execute(_INSERT_MAILBOX, values)
            conn.execute(
                "INSERT INTO message (mailbox, seq, side, type, data) VALUES (?, 1, 'i', ?, ?)",
                (cursor.lastrowid, new.payload.type, new.payload.data),
            )
            return CreateResult(WriteStatus.OK)

        return await self._write(op)

    async def bind_recipient(
        self, key: bytes, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        def op(conn: sqlite3.Connection) -> WriteStatus:
            if conn.execute(_BIND_FREE_SEAT, (claim, token, key, now)).rowcount:
                return WriteStatus.OK
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return WriteStatus.NOT_FOUND
            if row[7] is not None:
                return WriteStatus.DELETED
            if row[3] is None:  # unreachable while we hold the write lock; kept for safety
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
        side: Side | None,
        claim: bytes,
        *,
        payload: Payload,
        request_id: bytes,
        token: bytes | None,
        now: int,
        max_messages: int,
        recipient_right: str | None = None,
    ) -> AppendResult:
        def op(conn: sqlite3.Connection) -> AppendResult:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return AppendResult(WriteStatus.NOT_FOUND)
            writer = _writer_side(row, side, claim)
            if isinstance(writer, WriteStatus):
                return AppendResult(writer)
            if row[7] is not None:
                return AppendResult(WriteStatus.DELETED)
            initiator = writer is Side.INITIATOR
            if not initiator and recipient_right is not None and recipient_right not in row[4]:
                return AppendResult(WriteStatus.ACCESS_DENIED)
            own_token = row[12] if initiator else row[13]
            if initiator:
                duplicate = _same(row[14], request_id)
            else:
                duplicate = _same(row[15], request_id) and _same(row[16], claim)
            if duplicate:
                return AppendResult(
                    WriteStatus.DUPLICATE, side=writer, has_token=own_token is not None
                )
            if row[17] >= max_messages:
                return AppendResult(WriteStatus.FULL)
            seq = row[11] + 1
            conn.execute(
                "INSERT INTO message (mailbox, seq, side, type, data) VALUES (?, ?, ?, ?, ?)",
                (row[0], seq, writer.value, payload.type, payload.data),
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
            return AppendResult(
                WriteStatus.OK,
                seq,
                row[13] if initiator else row[12],
                side=writer,
                has_token=token is not None or own_token is not None,
            )

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
        self,
        key: bytes,
        side: Side | None,
        claim: bytes,
        request_id: bytes,
        now: int,
        *,
        recipient_right: str | None = None,
    ) -> DeleteResult:
        def op(conn: sqlite3.Connection) -> DeleteResult:
            row = conn.execute(_SELECT_MAILBOX, (key, now)).fetchone()
            if row is None:
                return DeleteResult(WriteStatus.NOT_FOUND)
            deleter = _writer_side(row, side, claim)
            if isinstance(deleter, WriteStatus):
                return DeleteResult(deleter)
            if row[7] is not None:
                if row[7] == deleter.value and _same(row[18], request_id):
                    return DeleteResult(WriteStatus.DUPLICATE)
                return DeleteResult(WriteStatus.DELETED)
            initiator = deleter is Side.INITIATOR
            if not initiator and recipient_right is not None and recipient_right not in row[4]:
                return DeleteResult(WriteStatus.ACCESS_DENIED)
            conn.execute("DELETE FROM message WHERE mailbox = ?", (row[0],))
            conn.execute(
                "UPDATE mailbox SET deleted_by = ?, deleted_req = ?, title = NULL,"
                " description = NULL, image_url = NULL, i_token = NULL, r_token = NULL,"
                " n_messages = 0, c_claim = NULL, c_req = NULL, c_sealed = NULL WHERE id = ?",
                (deleter.value, request_id, row[0]),
            )
            peer_token = row[13] if initiator else row[12]
            return DeleteResult(
                WriteStatus.OK, row[3] is not None, peer_token, side=deleter, last_seq=row[11]
            )

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
            conn.executemany("DELETE FROM mailbox WHERE id = ?", ids)
            return SweepResult(len(rows), sum(1 for r in rows if r[1] is None))

        return await self._write(op)
