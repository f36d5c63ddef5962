"""PostgreSQL store settings (parsed from the store URL) and versioned schema migrations.

The store URL is an ordinary libpq-style URL; tigress reads three query parameters of its own and
passes everything else (``sslmode``, ``sslrootcert``, ...) to asyncpg:

* ``schema`` — the schema holding the relay's tables (created when missing).  Without it the
  tables live in the connection's current schema (normally ``public``).
* ``pool_min``, ``pool_max`` — connection pool bounds per relay process (default 2 and 10).

Migrations run on start inside one transaction holding a transaction-scoped advisory lock derived
from the schema name, so relay processes starting at the same moment apply them exactly once; the
``tigress_schema`` table records the version reached.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tigress.relay.stores import StoreURLError
from tigress.relay.stores.base import StoreUnavailableError

#: A schema name we accept in the URL: a plain lower-case identifier (no quoting games), short
#: enough that names derived from it stay within PostgreSQL's 63-byte identifier limit.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")
_OWN_PARAMETERS = ("schema", "pool_min", "pool_max")
_POOL_LIMIT = 1000


class PostgresURLError(StoreURLError):
    """The PostgreSQL store URL is malformed or carries an invalid tigress parameter."""


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    #: The URL asyncpg connects with (tigress's own query parameters removed); it may hold a
    #: password, so it is kept out of ``repr``.
    dsn: str = field(repr=False)
    schema: str | None
    pool_min: int = 2
    pool_max: int = 10


def _pool_size(name: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        raise PostgresURLError(f"{name} must be a whole number")
    value = int(text)
    if not 0 <= value <= _POOL_LIMIT:
        raise PostgresURLError(f"{name} must be between 0 and {_POOL_LIMIT}")
    return value


def parse_postgres_url(url: str) -> PostgresSettings:
    """Split a ``postgresql://`` store URL into the asyncpg DSN and tigress's own settings."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise PostgresURLError(f"malformed PostgreSQL URL: {exc}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise PostgresURLError("a PostgreSQL store URL starts with postgresql://")
    if parts.fragment:
        raise PostgresURLError("a PostgreSQL store URL has no #fragment")
    query: list[tuple[str, str]] = []
    if parts.query:
        try:
            query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise PostgresURLError("malformed query string in the PostgreSQL URL") from None
    own: dict[str, str] = {}
    passed: list[tuple[str, str]] = []
    for name, value in query:
        if name in _OWN_PARAMETERS:
            if name in own:
                raise PostgresURLError(f"the parameter {name} is given twice")
            own[name] = value
        else:
            passed.append((name, value))
    schema = own.get("schema")
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise PostgresURLError(
            "schema must be a lower-case identifier: a-z, 0-9 and _, at most 48 characters,"
            " not starting with a digit"
        )
    if schema is not None and schema.startswith("pg_"):
        raise PostgresURLError("schema names starting with pg_ are reserved by PostgreSQL")
    pool_min = _pool_size("pool_min", own["pool_min"]) if "pool_min" in own else 2
    pool_max = _pool_size("pool_max", own["pool_max"]) if "pool_max" in own else 10
    if pool_max < 1 or pool_min > pool_max:
        raise PostgresURLError("need 1 <= pool_max and pool_min <= pool_max")
    # Built by hand: urlunsplit would drop the empty authority of postgresql:///db?host=/run/x.
    dsn = f"postgresql://{parts.netloc}{parts.path}"
    if passed:
        dsn += "?" + urllib.parse.urlencode(passed)
    return PostgresSettings(dsn=dsn, schema=schema, pool_min=pool_min, pool_max=pool_max)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def advisory_lock_key(schema: str | None) -> int:
    """A stable signed 64-bit advisory lock key for migrating ``schema`` (None: the default)."""
    digest = hashlib.sha256(b"tigress-relay-migrate:" + (schema or "").encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def wakeup_channel(schema: str) -> str:
    """The ``LISTEN``/``NOTIFY`` channel of the relays using ``schema``.  Notifications are
    database-wide, so relays on different schemas must not share a channel; hashing keeps any
    schema name (even one needing quotes) a short, plain identifier."""
    return "tigress_wakeup_" + hashlib.sha256(schema.encode()).hexdigest()[:24]


# Each entry migrates from version N to N+1.  Append only; never edit a released migration.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # fillfactor leaves room on each page so the frequent in-place updates (bind, append,
        # token) stay HOT updates that touch no index.
        """
        CREATE TABLE mailbox (
            key         bytea PRIMARY KEY,
            i_claim     bytea NOT NULL,
            r_claim     bytea,
            rights      text NOT NULL,
            created_at  bigint NOT NULL,
            expires_at  bigint NOT NULL,
            deleted_by  text,
            deleted_req bytea,
            title       text,
            description text,
            image_url   text,
            last_seq    integer NOT NULL,
            n_messages  integer NOT NULL,
            i_token     bytea,
            r_token     bytea,
            i_req       bytea,
            r_req       bytea,
            r_req_claim bytea
        ) WITH (fillfactor = 80)
        """,
        "CREATE INDEX mailbox_expiry ON mailbox (expires_at)",
        """
        CREATE TABLE message (
            key  bytea NOT NULL REFERENCES mailbox (key) ON DELETE CASCADE,
            seq  integer NOT NULL,
            side text NOT NULL,
            type text NOT NULL,
            data text NOT NULL,
            PRIMARY KEY (key, seq)
        )
        """,
        """
        CREATE TABLE create_request (
            claim      bytea PRIMARY KEY,
            request_id bytea NOT NULL,
            sealed_id  bytea NOT NULL,
            key        bytea NOT NULL REFERENCES mailbox (key) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX create_request_key ON create_request (key)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS tigress_schema (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        version   integer NOT NULL
    )
"""


async def migrate(conn: Any, schema: str | None) -> str:
    """Bring the schema to :data:`SCHEMA_VERSION`; returns the schema the tables live in.

    Safe when several relay processes start at once: the advisory lock serialises them, and each
    statement after it (READ COMMITTED) sees what an earlier holder committed.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_lock_key(schema))
        if schema is not None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            # search_path names the schema; make sure the session sees it even if it was just
            # created after the session resolved its path.
            await conn.execute(f"SET LOCAL search_path TO {quote_identifier(schema)}")
        current = await conn.fetchval("SELECT current_schema()")
        if current is None:
            raise StoreUnavailableError(
                "no schema to create the relay's tables in: set ?schema= in the store URL"
            )
        await conn.execute(_VERSION_TABLE)
        version = await conn.fetchval("SELECT version FROM tigress_schema")
        version = 0 if version is None else int(version)
        if version > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"database schema version {version} is newer than this relay ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[number]:
                await conn.execute(statement)
        if version != SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO tigress_schema (version) VALUES ($1)"
                " ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
                SCHEMA_VERSION,
            )
        return str(current)
