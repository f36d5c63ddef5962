"""The wallet's SQLite file: creation with tight permissions, schema and its version."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tigress.wallet.api import WalletCorrupted, WalletError
from tigress.wallet.sealing import Sealer

DATABASE_NAME = "wallet.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    label       TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    private_key BLOB NOT NULL,          -- sealed
    created_at  TEXT NOT NULL
);
CREATE TABLE credentials (
    id         TEXT PRIMARY KEY,
    vertical   TEXT NOT NULL,
    format     TEXT NOT NULL,
    label      TEXT NOT NULL,
    origin     TEXT NOT NULL,
    data       BLOB NOT NULL,           -- sealed JSON
    key_id     TEXT,
    created_at TEXT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE transfers (
    id                   TEXT PRIMARY KEY,
    role                 TEXT NOT NULL,
    vertical             TEXT,
    credential_id        TEXT,
    transport            TEXT NOT NULL,
    relay_origin         TEXT,
    mailbox_id           TEXT,
    invitation_url       TEXT,          -- never with the secret
    direct_host          TEXT,
    direct_port          INTEGER,
    cursor               INTEGER NOT NULL DEFAULT 0,
    status               TEXT NOT NULL,
    detail               TEXT NOT NULL DEFAULT '',
    peer_code            TEXT,
    result_credential_id TEXT,
    expires_at           TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    claim                BLOB,          -- sealed
    session_state        BLOB,          -- sealed; erased when the transfer ends
    flow_state           BLOB,          -- sealed JSON
    outbox               BLOB           -- sealed JSON: frames saved before they are sent
);
CREATE INDEX transfers_by_status ON transfers (status);
"""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def to_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Database:
    """One connection shared by the stores, serialised by a lock (runners may use threads)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.lock = threading.RLock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return list(self.connection.execute(sql, parameters))

    def meta(self, name: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE name = ?", (name,))
        return None if not rows else str(rows[0]["value"])

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class SealedStore:
    """Base of the stores on the wallet database whose secret columns ``sealer`` encrypts."""

    def __init__(self, database: Database, sealer: Sealer) -> None:
        self._db = database
        self._sealer = sealer

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"  # nothing of the database or its keys


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")  # a wallet write is small and must survive
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def create_database(directory: Path) -> Database:
    """Make the directory (0700) and an empty wallet file (0600); fails if one exists."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / DATABASE_NAME
    try:
        # O_EXCL: never adopt a file someone else created; 0600 before any byte is written.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise WalletError(f"A wallet already exists in {directory}.") from exc
    os.close(descriptor)
    connection = _connect(path)
    database = Database(connection)
    # One script, one transaction: a crash leaves either no schema or all of it.
    version_row = f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"  # noqa: S608 - a constant
    connection.executescript("BEGIN IMMEDIATE;" + _SCHEMA + version_row + "COMMIT;")
    return database


def open_database(directory: Path) -> Database:
    path = directory / DATABASE_NAME
    if not path.is_file():
        raise WalletError(
            f"No wallet found in {directory}; create one first (tigress wallet init)."
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Someone loosened the permissions: tighten them again rather than refuse to work.
        os.chmod(path, 0o600)
    try:
        connection = _connect(path)
        database = Database(connection)
        version = database.meta("schema_version")
    except sqlite3.DatabaseError as exc:
        raise WalletCorrupted(f"{path} is not a tigress wallet database.") from exc
    if version is None or not version.isdigit():
        database.close()
        raise WalletCorrupted(f"{path} is not a tigress wallet database.")
    if int(version) != SCHEMA_VERSION:
        database.close()
        raise WalletCorrupted(
            f"The wallet has schema version {version}; this tigress understands "
            f"version {SCHEMA_VERSION}. Upgrade tigress."
        )
    return database
