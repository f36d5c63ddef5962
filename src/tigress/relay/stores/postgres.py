"""The PostgreSQL store: several stateless relay processes, on several machines, share one database.

Every operation is one atomic unit on the server, so two relay processes can never both win a
race:

* The frequent writes (bind, token, append) are *one* statement each, run in autocommit: an
  ``UPDATE … WHERE <condition> RETURNING`` that takes the mailbox row lock and re-checks its
  condition against the newest row version (READ COMMITTED re-evaluates the ``WHERE`` of a row a
  concurrent transaction changed).  Only the winner of a compare-and-set gets a row back; the
  sequence number of an append is ``last_seq + 1`` computed under that lock, so it has no gaps
  and no duplicates.  When no row comes back, a second read classifies why (unknown, tombstone,
  another claim, duplicate request, full) — and if the row meanwhile changed back so the write
  would succeed, the write is simply tried again.
* The wiping writes (relinquish, delete) lock the row with ``SELECT … FOR UPDATE`` inside a
  transaction first, so the statements that follow see every message committed before the lock.
* The sweeper deletes expired mailboxes in small batches with ``FOR UPDATE SKIP LOCKED``: it never
  waits for a request's lock, and sweepers of several processes split the work.

Claims and request ids reach SQL only as keyed hashes and opaque ids, which the service computed;
an attacker cannot steer their bytes, so SQL's equality test leaks nothing by timing.  Every
status this store *reports* from a stored claim is decided in Python with
:func:`hmac.compare_digest`.

Cross-process wake-ups use ``LISTEN``/``NOTIFY`` (:mod:`tigress.relay.wakeup_postgres`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

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
from tigress.relay.stores.postgres_schema import (
    PostgresSettings,
    PostgresURLError,
    migrate,
    parse_postgres_url,
    quote_identifier,
    wakeup_channel,
)
from tigress.relay.wakeup_postgres import PostgresWakeupBus

__all__ = ["PostgresStore", "PostgresURLError", "open_postgres_store"]

_log = logging.getLogger("tigress.relay.store")
T = TypeVar("T")

#: Errors meaning "the database could not do it": turned into StoreUnavailableError (503).
_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
#: Transient conflicts after which a whole atomic operation can safely run again.
_RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
_ATTEMPTS = 5
#: A compare-and-set that failed but whose re-read says it should succeed lost a race with a
#: write that was since undone (e.g. bind vs relinquish); more rounds than this mean a livelock.
_CAS_ROUNDS = 16

_MAILBOX_COLUMNS = (
    "key, i_claim, r_claim, rights, created_at, expires_at, deleted_by, title, description,"
    " image_url, last_seq, i_token, r_token, i_req, r_req, r_req_claim, n_messages, deleted_req"
)
_SELECT_MAILBOX = f"SELECT {_MAILBOX_COLUMNS} FROM mailbox WHERE key = $1 AND expires_at > $2"  # noqa: S608

# A read with no cursor in one round trip: the mailbox and each side's latest message (the
# caller picks the peer's after comparing the claim in Python, in constant time).
_READ_WITH_LATEST = f"""
SELECT {", ".join("b." + column.strip() for column in _MAILBOX_COLUMNS.split(","))},
       li.seq AS i_seq, li.type AS i_type, li.data AS i_data,
       lr.seq AS r_seq, lr.type AS r_type, lr.data AS r_data
FROM mailbox b
LEFT JOIN LATERAL (
    SELECT seq, type, data FROM message m WHERE m.key = b.key AND m.side = 'i'
    ORDER BY seq DESC LIMIT 1
) li ON true
LEFT JOIN LATERAL (
    SELECT seq, type, data FROM message m WHERE m.key = b.key AND m.side = 'r'
    ORDER BY seq DESC LIMIT 1
) lr ON true
WHERE b.key = $1 AND b.expires_at > $2
"""  # noqa: S608
_READ_AFTER = (
    "SELECT seq, type, data FROM message WHERE key = $1 AND seq > $2 AND side = $3"
    " ORDER BY seq LIMIT $4"
)

_CREATE = """
WITH prior AS (
    SELECT sealed_id FROM create_request WHERE claim = $11 AND request_id = $10
), mb AS (
    INSERT INTO mailbox (key, i_claim, rights, created_at, expires_at, title, description,
                         image_url, last_seq, n_messages, i_token, i_req)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, 1, 1, $9, $10
    WHERE NOT EXISTS (SELECT 1 FROM prior)
    RETURNING key
), msg AS (
    INSERT INTO message (key, seq, side, type, data) SELECT key, 1, 'i', $12, $13 FROM mb
), cr AS (
    INSERT INTO create_request (claim, request_id, sealed_id, key)
    SELECT $11, $10, $14, key FROM mb
    ON CONFLICT (claim) DO UPDATE
        SET request_id = EXCLUDED.request_id, sealed_id = EXCLUDED.sealed_id, key = EXCLUDED.key
        WHERE create_request.request_id <> EXCLUDED.request_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM mb) AS created, (SELECT count(*) FROM cr) AS recorded,
       (SELECT sealed_id FROM prior) AS prior_sealed
"""

_BIND = (
    "UPDATE mailbox SET r_claim = $2, r_token = $3"
    " WHERE key = $1 AND expires_at > $4 AND deleted_by IS NULL AND r_claim IS NULL RETURNING 1"
)
_REBIND_SAME_RECIPIENT = (
    "UPDATE mailbox SET r_token = $3"
    " WHERE key = $1 AND expires_at > $4 AND deleted_by IS NULL AND r_claim = $2 RETURNING 1"
)
_SET_TOKEN = {
    Side.INITIATOR: "UPDATE mailbox SET i_token = $3 WHERE key = $1 AND expires_at > $4"
    " AND deleted_by IS NULL AND i_claim = $2 RETURNING 1",
    Side.RECIPIENT: "UPDATE mailbox SET r_token = $3 WHERE key = $1 AND expires_at > $4"
    " AND deleted_by IS NULL AND r_claim = $2 RETURNING 1",
}
# $1 key, $2 claim, $3 request id, $4 token, $5 now, $6 max messages, $7 type, $8 data.
_APPEND = {
    Side.INITIATOR: """
WITH upd AS (
    UPDATE mailbox SET last_seq = last_seq + 1, n_messages = n_messages + 1, i_req = $3,
                       i_token = coalesce($4, i_token)
    WHERE key = $1 AND expires_at > $5 AND deleted_by IS NULL AND i_claim = $2
      AND i_req IS DISTINCT FROM $3 AND n_messages < $6
    RETURNING last_seq, r_token AS peer_token, i_token IS NOT NULL AS has_token
), ins AS (
    INSERT INTO message (key, seq, side, type, data) SELECT $1, last_seq, 'i', $7, $8 FROM upd
)
SELECT last_seq, peer_token, has_token FROM upd
""",
    Side.RECIPIENT: """
WITH upd AS (
    UPDATE mailbox SET last_seq = last_seq + 1, n_messages = n_messages + 1, r_req = $3,
                       r_req_claim = $2, r_token = coalesce($4, r_token)
    WHERE key = $1 AND expires_at > $5 AND deleted_by IS NULL AND r_claim = $2
      AND (r_req IS DISTINCT FROM $3 OR r_req_claim IS DISTINCT FROM $2) AND n_messages < $6
    RETURNING last_seq, i_token AS peer_token, r_token IS NOT NULL AS has_token
), ins AS (
    INSERT INTO message (key, seq, side, type, data) SELECT $1, last_seq, 'r', $7, $8 FROM upd
)
SELECT last_seq, peer_token, has_token FROM upd
""",
}
_LOCK_MAILBOX = (
    "SELECT i_claim, r_claim, deleted_by, deleted_req, i_token, r_token, r_req, r_req_claim,"
    " rights, last_seq FROM mailbox WHERE key = $1 AND expires_at > $2 FOR UPDATE"
)
_RELINQUISH = """
WITH gone AS (DELETE FROM message WHERE key = $1 AND side = 'r' RETURNING 1)
UPDATE mailbox SET r_claim = NULL, r_token = NULL, r_req = $2, r_req_claim = $3,
                   n_messages = n_messages - (SELECT count(*) FROM gone)
WHERE key = $1
"""
_TOMBSTONE = """
WITH msgs AS (DELETE FROM message WHERE key = $1),
     reqs AS (DELETE FROM create_request WHERE key = $1)
UPDATE mailbox SET deleted_by = $2, deleted_req = $3, title = NULL, description = NULL,
                   image_url = NULL, i_token = NULL, r_token = NULL, n_messages = 0
WHERE key = $1
"""
# Messages and idempotency records go with their mailbox (ON DELETE CASCADE).
_SWEEP = """
WITH doomed AS (
    SELECT key, deleted_by IS NULL AS live FROM mailbox WHERE expires_at <= $1
    LIMIT $2 FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM mailbox m USING doomed d WHERE m.key = d.key RETURNING d.live
)
SELECT count(*) AS removed, count(*) FILTER (WHERE live) AS expired_live FROM gone
"""


async def _keep_session(conn: Any) -> None:
    """The pool's reset hook.  asyncpg's default runs ``RESET ALL; UNLISTEN *; …`` — one more
    round trip per operation — but this store never changes session state on pooled connections
    (every ``SET`` and lock is transaction-scoped), and asyncpg itself still rolls back an open
    transaction before calling this."""
    del conn


def _same(a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return False
    return hmac.compare_digest(a, b)


def _writer_side(row: Any, side: Side | None, claim: bytes) -> Side | WriteStatus:
    """The side ``claim`` writes as (resolving ``side`` None), or why it may not."""
    if side is None:
        if _same(row["i_claim"], claim):
            return Side.INITIATOR
        if _same(row["r_claim"], claim):
            return Side.RECIPIENT
        # A stranger learns nothing from a tombstone: it answers like an unknown id.
        return (
            WriteStatus.NOT_FOUND if row["deleted_by"] is not None else WriteStatus.CLAIM_MISMATCH
        )
    if not _same(row["i_claim"] if side is Side.INITIATOR else row["r_claim"], claim):
        return WriteStatus.CLAIM_MISMATCH
    return side


def _state(row: Any) -> MailboxState:
    display = (
        None
        if row["title"] is None
        else DisplayInformation(row["title"], row["description"], row["image_url"])
    )
    return MailboxState(
        key=row["key"],
        initiator_claim=row["i_claim"],
        recipient_claim=row["r_claim"],
        access_rights=row["rights"],
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
        deleted=row["deleted_by"] is not None,
        display=display,
        last_seq=int(row["last_seq"]),
        initiator_token=row["i_token"],
        recipient_token=row["r_token"],
        initiator_request_id=row["i_req"],
        recipient_request_id=row["r_req"],
        recipient_request_claim=row["r_req_claim"],
    )


class PostgresStore(MailboxStore):
    """Mailboxes in a PostgreSQL database, shared by any number of relay processes.

    ``durability="normal"`` commits with the server's configured ``synchronous_commit``;
    ``"full"`` forces ``synchronous_commit=on`` for the relay's sessions (a commit waits for its
    WAL flush, and for synchronous standbys where configured), whatever the server default.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        durability: str = "normal",
        pool_min: int = 2,
        pool_max: int = 10,
        command_timeout: float = 30.0,
        acquire_timeout: float = 10.0,
        listener_keepalive: float = 10.0,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
        self._dsn = dsn
        self._schema = schema
        self._durability = durability
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._command_timeout = command_timeout
        self._acquire_timeout = acquire_timeout
        self._pool: Any = None
        self._open_lock = asyncio.Lock()
        self._table_schema: str | None = None
        self._bus = PostgresWakeupBus(self._connect_listener, keepalive_seconds=listener_keepalive)

    def __repr__(self) -> str:  # the DSN may hold a password
        return f"PostgresStore(schema={self._schema!r}, durability={self._durability!r})"

    @property
    def wakeups(self) -> WakeupBus:
        return self._bus

    @property
    def schema(self) -> str | None:
        """The schema holding the tables, once open."""
        return self._table_schema

    def _server_settings(self) -> dict[str, str]:
        settings = {
            "application_name": "tigress-relay",
            # A relay process frozen inside one of its short transactions must not hold a
            # mailbox's row lock (and stall every other process) for longer than this.
            "idle_in_transaction_session_timeout": "10s",
        }
        if self._schema is not None:
            settings["search_path"] = quote_identifier(self._schema)
        if self._durability == "full":
            settings["synchronous_commit"] = "on"
        return settings

    async def _connect_listener(self) -> Any:
        return await asyncpg.connect(
            self._dsn,
            server_settings=self._server_settings(),
            command_timeout=self._command_timeout,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._open_lock:
            if self._pool is not None:
                return
            try:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._pool_min,
                    max_size=self._pool_max,
                    command_timeout=self._command_timeout,
                    server_settings=self._server_settings(),
                    max_inactive_connection_lifetime=300.0,
                    reset=_keep_session,
                )
            except _DB_ERRORS as exc:
                raise StoreUnavailableError(
                    f"cannot connect to PostgreSQL: {type(exc).__name__}"
                ) from exc
            try:
                async with pool.acquire(timeout=self._acquire_timeout) as conn:
                    schema = await migrate(conn, self._schema)
            except BaseException as exc:
                await pool.close()
                if isinstance(exc, _DB_ERRORS):
                    raise StoreUnavailableError(
                        f"PostgreSQL schema migration failed: {type(exc).__name__}: {exc}"
                    ) from exc
                raise
            self._table_schema = schema
            self._bus.use_channel(wakeup_channel(schema))
            await self._bus.start()
            self._pool = pool

    async def close(self) -> None:
        async with self._open_lock:
            pool, self._pool = self._pool, None
            if pool is None:
                return
            await self._bus.aclose()
            try:
                async with asyncio.timeout(self._command_timeout):
                    await pool.close()
            except TimeoutError:
                pool.terminate()

    # -- running statements ----------------------------------------------------------------------

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``fn`` on a pooled connection; retry transient conflicts; map failures to
        :class:`StoreUnavailableError`."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError("the store is not open")
        for attempt in range(_ATTEMPTS):
            try:
                async with pool.acquire(timeout=self._acquire_timeout) as conn:
                    return await fn(conn)
            except _RETRYABLE:
                if attempt == _ATTEMPTS - 1:
                    raise StoreUnavailableError("database conflict persisted") from None
                await asyncio.sleep(0.001 * (attempt + 1))
            except _DB_ERRORS as exc:
                _log.error("postgresql operation failed: %s", type(exc).__name__)
                raise StoreUnavailableError(f"database failed: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetchrow(self, query: str, *args: Any) -> Any:
        async def op(conn: Any) -> Any:
            return await conn.fetchrow(query, *args)

        return await self._run(op)

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        async def op(conn: Any) -> list[Any]:
            return list(await conn.fetch(query, *args))

        return await self._run(op)

    # -- reads ---------------------------------------------------------------------------------

    async def health_check(self) -> None:
        await self._fetchrow("SELECT 1 FROM mailbox LIMIT 1")

    async def get_mailbox(self, key: bytes, now: int) -> MailboxState | None:
        row = await self._fetchrow(_SELECT_MAILBOX, key, now)
        return None if row is None else _state(row)

    async def read_mailbox(
        self, key: bytes, claim: bytes, now: int, *, after: int | None, limit: int
    ) -> MailboxView | None:
        async def op(conn: Any) -> MailboxView | None:
            if after is None:
                row = await conn.fetchrow(_READ_WITH_LATEST, key, now)
            else:
                row = await conn.fetchrow(_SELECT_MAILBOX, key, now)
            if row is None:
                return None
            state = _state(row)
            side = side_of(state, claim)
            if state.deleted:
                return MailboxView(state, side, [])
            peer = Side.RECIPIENT if side is Side.INITIATOR else Side.INITIATOR
            if after is None:
                prefix = peer.value + "_"
                seq = row[prefix + "seq"]
                if seq is None:
                    return MailboxView(state, side, [])
                payload = Payload(row[prefix + "type"], row[prefix + "data"])
                return MailboxView(state, side, [StoredMessage(int(seq), peer, payload)])
            rows = await conn.fetch(_READ_AFTER, key, after, peer.value, limit)
            return MailboxView(
                state, side, [StoredMessage(int(r[0]), peer, Payload(r[1], r[2])) for r in rows]
            )

        return await self._run(op)

    async def read_messages(
        self, key: bytes, side: Side, after: int, limit: int
    ) -> list[StoredMessage]:
        rows = await self._fetch(
            "SELECT seq, type, data FROM message WHERE key = $1 AND seq > $2 AND side = $3"
            " ORDER BY seq LIMIT $4",
            key,
            after,
            side.value,
            limit,
        )
        return [StoredMessage(int(r[0]), side, Payload(r[1], r[2])) for r in rows]

    async def latest_message(self, key: bytes, side: Side) -> StoredMessage | None:
        row = await self._fetchrow(
            "SELECT seq, type, data FROM message WHERE key = $1 AND side = $2"
            " ORDER BY seq DESC LIMIT 1",
            key,
            side.value,
        )
        return None if row is None else StoredMessage(int(row[0]), side, Payload(row[1], row[2]))

    # -- writes ----------------------------------------------------------------------------------

    async def create_mailbox(self, new: NewMailbox) -> CreateResult:
        async def op(conn: Any) -> CreateResult:
            row = await conn.fetchrow(
                _CREATE,
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
                new.payload.type,
                new.payload.data,
                new.sealed_mailbox_id,
            )
            if row["prior_sealed"] is not None:
                return CreateResult(WriteStatus.DUPLICATE, row["prior_sealed"])
            if row["recorded"]:
                return CreateResult(WriteStatus.OK)
            # A concurrent create with the same claim and Request-ID committed first: ours is the
            # duplicate.  Its fresh mailbox was never shown to anyone; remove it again.
            await conn.execute("DELETE FROM mailbox WHERE key = $1", new.key)
            sealed = await conn.fetchval(
                "SELECT sealed_id FROM create_request WHERE claim = $1", new.create_claim
            )
            return CreateResult(WriteStatus.DUPLICATE, sealed)

        return await self._run(op)

    async def bind_recipient(
        self, key: bytes, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        async def op(conn: Any) -> WriteStatus:
            for _ in range(_CAS_ROUNDS):
                if await conn.fetchval(_BIND, key, claim, token, now) is not None:
                    return WriteStatus.OK
                row = await conn.fetchrow(
                    "SELECT r_claim, deleted_by FROM mailbox WHERE key = $1 AND expires_at > $2",
                    key,
                    now,
                )
                if row is None:
                    return WriteStatus.NOT_FOUND
                if row["deleted_by"] is not None:
                    return WriteStatus.DELETED
                if row["r_claim"] is None:
                    continue  # a relinquish freed it since: try to bind again
                if not _same(row["r_claim"], claim):
                    return WriteStatus.ALREADY_BOUND
                if token is None:
                    return WriteStatus.OK
                if await conn.fetchval(_REBIND_SAME_RECIPIENT, key, claim, token, now) is not None:
                    return WriteStatus.OK
            raise StoreUnavailableError("bind kept racing with concurrent writes")

        return await self._run(op)

    async def set_token(
        self, key: bytes, side: Side, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        async def op(conn: Any) -> WriteStatus:
            for _ in range(_CAS_ROUNDS):
                if await conn.fetchval(_SET_TOKEN[side], key, claim, token, now) is not None:
                    return WriteStatus.OK
                row = await conn.fetchrow(
                    "SELECT i_claim, r_claim, deleted_by FROM mailbox"
                    " WHERE key = $1 AND expires_at > $2",
                    key,
                    now,
                )
                if row is None:
                    return WriteStatus.NOT_FOUND
                if row["deleted_by"] is not None:
                    return WriteStatus.DELETED
                stored = row["i_claim"] if side is Side.INITIATOR else row["r_claim"]
                if not _same(stored, claim):
                    return WriteStatus.CLAIM_MISMATCH
            raise StoreUnavailableError("set_token kept racing with concurrent writes")

        return await self._run(op)

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
        async def op(conn: Any) -> AppendResult:
            writer = side
            if writer is None or recipient_right is not None:
                # Learn the side (and the rights) first; the append below re-checks the claim
                # under the row lock, so a change in between only turns into a failed CAS.
                row = await conn.fetchrow(_SELECT_MAILBOX, key, now)
                if row is None:
                    return AppendResult(WriteStatus.NOT_FOUND)
                resolved = _writer_side(row, writer, claim)
                if isinstance(resolved, WriteStatus):
                    return AppendResult(resolved)
                if row["deleted_by"] is not None:
                    return AppendResult(WriteStatus.DELETED)
                if (
                    resolved is Side.RECIPIENT
                    and recipient_right is not None
                    and recipient_right not in row["rights"]
                ):
                    return AppendResult(WriteStatus.ACCESS_DENIED)
                writer = resolved
            initiator = writer is Side.INITIATOR
            for _ in range(_CAS_ROUNDS):
                done = await conn.fetchrow(
                    _APPEND[writer],
                    key,
                    claim,
                    request_id,
                    token,
                    now,
                    max_messages,
                    payload.type,
                    payload.data,
                )
                if done is not None:
                    return AppendResult(
                        WriteStatus.OK, int(done[0]), done[1], side=writer, has_token=done[2]
                    )
                row = await conn.fetchrow(_SELECT_MAILBOX, key, now)
                if row is None:
                    return AppendResult(WriteStatus.NOT_FOUND)
                if not _same(row["i_claim"] if initiator else row["r_claim"], claim):
                    return AppendResult(WriteStatus.CLAIM_MISMATCH)
                if row["deleted_by"] is not None:
                    return AppendResult(WriteStatus.DELETED)
                if initiator:
                    duplicate = _same(row["i_req"], request_id)
                else:
                    duplicate = _same(row["r_req"], request_id) and _same(row["r_req_claim"], claim)
                if duplicate:
                    own_token = row["i_token"] if initiator else row["r_token"]
                    return AppendResult(
                        WriteStatus.DUPLICATE, side=writer, has_token=own_token is not None
                    )
                if row["n_messages"] >= max_messages:
                    return AppendResult(WriteStatus.FULL)
            raise StoreUnavailableError("append kept racing with concurrent writes")

        return await self._run(op)

    async def relinquish(
        self, key: bytes, claim: bytes, request_id: bytes, now: int
    ) -> WriteStatus:
        async def op(conn: Any) -> WriteStatus:
            async with conn.transaction():
                row = await conn.fetchrow(_LOCK_MAILBOX, key, now)
                if row is None:
                    return WriteStatus.NOT_FOUND
                if (
                    _same(row["r_req"], request_id)
                    and _same(row["r_req_claim"], claim)
                    and not _same(row["r_claim"], claim)
                ):
                    return WriteStatus.DUPLICATE
                if row["deleted_by"] is not None:
                    return WriteStatus.DELETED
                if not _same(row["r_claim"], claim):
                    return WriteStatus.CLAIM_MISMATCH
                await conn.execute(_RELINQUISH, key, request_id, claim)
                return WriteStatus.OK

        return await self._run(op)

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
        async def op(conn: Any) -> DeleteResult:
            async with conn.transaction():
                row = await conn.fetchrow(_LOCK_MAILBOX, key, now)
                if row is None:
                    return DeleteResult(WriteStatus.NOT_FOUND)
                deleter = _writer_side(row, side, claim)
                if isinstance(deleter, WriteStatus):
                    return DeleteResult(deleter)
                if row["deleted_by"] is not None:
                    if row["deleted_by"] == deleter.value and _same(row["deleted_req"], request_id):
                        return DeleteResult(WriteStatus.DUPLICATE)
                    return DeleteResult(WriteStatus.DELETED)
                initiator = deleter is Side.INITIATOR
                if (
                    not initiator
                    and recipient_right is not None
                    and recipient_right not in row["rights"]
                ):
                    return DeleteResult(WriteStatus.ACCESS_DENIED)
                await conn.execute(_TOMBSTONE, key, deleter.value, request_id)
                peer_token = row["r_token"] if initiator else row["i_token"]
                return DeleteResult(
                    WriteStatus.OK,
                    row["r_claim"] is not None,
                    peer_token,
                    side=deleter,
                    last_seq=int(row["last_seq"]),
                )

        return await self._run(op)

    async def delete_expired(self, now: int, batch: int) -> SweepResult:
        row = await self._fetchrow(_SWEEP, now, batch)
        return SweepResult(int(row["removed"]), int(row["expired_live"]))


def open_postgres_store(url: str, *, durability: str = "normal", **options: Any) -> PostgresStore:
    """Build (not yet open) the store a ``postgresql://`` URL names; ``options`` override the
    URL's tigress parameters (``schema``, ``pool_min``, ``pool_max``) and pass the rest to
    :class:`PostgresStore`."""
    settings: PostgresSettings = parse_postgres_url(url)
    values: dict[str, Any] = {
        "schema": settings.schema,
        "pool_min": settings.pool_min,
        "pool_max": settings.pool_max,
    }
    values.update(options)
    return PostgresStore(settings.dsn, durability=durability, **values)
