"""The PostgreSQL store: URL parsing, the store contract (checked on SQLite and PostgreSQL alike,
so both behave the same), races, expiry batches, migrations and failure handling."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from tests.relay.conftest import make_store_url
from tests.relay.postgres_helpers import fetch_all, schema_url

from tigress.relay.keys import RelayKeys
from tigress.relay.stores import StoreURLError, open_store
from tigress.relay.stores.base import (
    AppendResult,
    DisplayInformation,
    MailboxStore,
    MailboxView,
    NewMailbox,
    Payload,
    Side,
    StoreUnavailableError,
    WriteStatus,
)
from tigress.relay.stores.postgres import PostgresStore, open_postgres_store
from tigress.relay.stores.postgres_schema import (
    SCHEMA_VERSION,
    PostgresURLError,
    advisory_lock_key,
    parse_postgres_url,
    wakeup_channel,
)

AEAD = "AEAD_AES_128_GCM"
KEYS = RelayKeys(b"p" * 32)
NOW = 1_000


def _rid() -> bytes:
    return uuid.uuid4().bytes


def _new(
    mailbox: bytes,
    claim: bytes,
    *,
    request_id: bytes | None = None,
    create_claim: bytes | None = None,
    expires_at: int = 10**10,
    token: bytes | None = b"itoken",
    rights: str = "RWD",
) -> NewMailbox:
    return NewMailbox(
        key=KEYS.mailbox_key(mailbox),
        initiator_claim=KEYS.claim_hash(mailbox, claim),
        access_rights=rights,
        created_at=0,
        expires_at=expires_at,
        display=DisplayInformation("Car key", "blue car", "https://img.example/car.png"),
        payload=Payload(AEAD, "Zmlyc3Q="),
        initiator_token=token,
        initiator_request_id=request_id or _rid(),
        create_claim=create_claim or KEYS.create_claim_hash(claim),
        sealed_mailbox_id=b"sealed:" + mailbox,
    )


# -- URL parsing -----------------------------------------------------------------------------------


def test_url_parameters_are_split_from_the_dsn() -> None:
    settings = parse_postgres_url(
        "postgresql://relay:s3cret@db.internal:6432/tigress?sslmode=require&schema=relay_a"
        "&pool_min=0&pool_max=20"
    )
    assert settings.dsn == "postgresql://relay:s3cret@db.internal:6432/tigress?sslmode=require"
    assert (settings.schema, settings.pool_min, settings.pool_max) == ("relay_a", 0, 20)
    assert "s3cret" not in repr(settings)
    plain = parse_postgres_url("postgres:///tigress?host=/run/postgresql")
    assert plain.dsn == "postgresql:///tigress?host=%2Frun%2Fpostgresql"
    assert (plain.schema, plain.pool_min, plain.pool_max) == (None, 2, 10)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "starts with postgresql"),
        ("postgresql://x/y#frag", "fragment"),
        ("postgresql://x/y?schema=Relay", "lower-case identifier"),
        ("postgresql://x/y?schema=a-b", "lower-case identifier"),
        ("postgresql://x/y?schema=1abc", "lower-case identifier"),
        ("postgresql://x/y?schema=" + "a" * 49, "lower-case identifier"),
        ("postgresql://x/y?schema=", "lower-case identifier"),
        ('postgresql://x/y?schema=a"b', "lower-case identifier"),
        ("postgresql://x/y?schema=pg_catalog", "reserved"),
        ("postgresql://x/y?schema=a&schema=b", "twice"),
        ("postgresql://x/y?pool_max=0", "pool_max"),
        ("postgresql://x/y?pool_max=-1", "whole number"),
        ("postgresql://x/y?pool_max=1e3", "whole number"),
        ("postgresql://x/y?pool_max=\u0661", "whole number"),
        ("postgresql://x/y?pool_max=99999", "whole number"),
        ("postgresql://x/y?pool_max=1001", "between"),
        ("postgresql://x/y?pool_min=5&pool_max=4", "pool_min"),
        ("postgresql://x/y?novalue", "malformed query"),
        ("postgresql://[::1/y", "malformed"),
    ],
)
def test_bad_urls_are_refused_precisely(url: str, message: str) -> None:
    with pytest.raises(PostgresURLError, match=message):
        parse_postgres_url(url)
    # The store factory refuses the same URL with the factory's own error type.
    with pytest.raises(StoreURLError):
        open_store(url)


def test_factory_builds_an_unopened_store_and_hides_the_password() -> None:
    store = open_store("postgresql://u:hunter2@127.0.0.1/db?schema=s1", durability="full")
    assert isinstance(store, PostgresStore)
    assert "hunter2" not in repr(store)
    assert store.schema is None  # not open yet
    override = open_postgres_store("postgresql://127.0.0.1/db?schema=s1", schema="s2")
    assert "s2" in repr(override)
    with pytest.raises(ValueError, match="durability"):
        open_postgres_store("postgresql://127.0.0.1/db", durability="fast")


def test_derived_names_are_stable_and_distinct() -> None:
    assert advisory_lock_key("a") == advisory_lock_key("a") != advisory_lock_key("b")
    assert advisory_lock_key(None) != advisory_lock_key("a")
    assert -(2**63) <= advisory_lock_key("a") < 2**63
    channel = wakeup_channel("public")
    assert channel != wakeup_channel("other")
    assert channel.isidentifier() and len(channel) <= 63


# -- the store contract, on both stores --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MailboxStore]:
    the_store = open_store(make_store_url(request.param, tmp_path, request))
    async with the_store.opened():
        yield the_store


@pytest.mark.anyio
async def test_create_is_idempotent_per_claim_and_request(store: MailboxStore) -> None:
    mailbox, claim, rid = uuid.uuid4().bytes, uuid.uuid4().bytes, _rid()
    first = await store.create_mailbox(_new(mailbox, claim, request_id=rid))
    assert first.status is WriteStatus.OK
    # A retry (same claim, same Request-ID, new id made by the relay) changes nothing.
    retry = await store.create_mailbox(_new(uuid.uuid4().bytes, claim, request_id=rid))
    assert retry.status is WriteStatus.DUPLICATE
    assert retry.sealed_mailbox_id == b"sealed:" + mailbox
    # A new Request-ID from the same claim creates another mailbox; the record follows it.
    other = uuid.uuid4().bytes
    assert (await store.create_mailbox(_new(other, claim))).status is WriteStatus.OK
    again = await store.create_mailbox(_new(uuid.uuid4().bytes, claim, request_id=rid))
    assert again.status is WriteStatus.OK
    state = await store.get_mailbox(KEYS.mailbox_key(mailbox), NOW)
    assert state is not None and not state.deleted
    assert state.display == DisplayInformation("Car key", "blue car", "https://img.example/car.png")
    assert (state.last_seq, state.access_rights, state.initiator_token) == (1, "RWD", b"itoken")
    assert state.initiator_request_id == rid and state.recipient_claim is None
    latest = await store.latest_message(KEYS.mailbox_key(mailbox), Side.INITIATOR)
    assert latest is not None and (latest.seq, latest.payload.data) == (1, "Zmlyc3Q=")


@pytest.mark.anyio
async def test_bind_token_append_and_read(store: MailboxStore) -> None:
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    await store.create_mailbox(_new(mailbox, claim))
    key = KEYS.mailbox_key(mailbox)
    initiator = KEYS.claim_hash(mailbox, claim)
    recipient = KEYS.claim_hash(mailbox, b"r" * 16)
    stranger = KEYS.claim_hash(mailbox, b"s" * 16)
    unknown = KEYS.mailbox_key(b"u" * 16)

    assert await store.bind_recipient(unknown, recipient, None, NOW) is WriteStatus.NOT_FOUND
    assert await store.bind_recipient(key, recipient, b"rt1", NOW) is WriteStatus.OK
    assert await store.bind_recipient(key, recipient, None, NOW) is WriteStatus.OK
    assert await store.bind_recipient(key, stranger, b"x", NOW) is WriteStatus.ALREADY_BOUND
    assert await store.bind_recipient(key, recipient, b"rt2", NOW) is WriteStatus.OK
    state = await store.get_mailbox(key, NOW)
    assert state is not None and state.recipient_token == b"rt2"

    set_token = store.set_token
    assert await set_token(key, Side.INITIATOR, initiator, b"it2", NOW) is WriteStatus.OK
    assert await set_token(key, Side.INITIATOR, recipient, b"no", NOW) is WriteStatus.CLAIM_MISMATCH
    assert await set_token(key, Side.RECIPIENT, stranger, b"no", NOW) is WriteStatus.CLAIM_MISMATCH
    assert await set_token(key, Side.RECIPIENT, recipient, None, NOW) is WriteStatus.OK
    assert await set_token(unknown, Side.INITIATOR, initiator, None, NOW) is WriteStatus.NOT_FOUND

    async def append(
        side: Side, claim_hash: bytes, rid: bytes, data: str, cap: int = 64
    ) -> AppendResult:
        return await store.append_message(
            key,
            side,
            claim_hash,
            payload=Payload(AEAD, data),
            request_id=rid,
            token=None,
            now=NOW,
            max_messages=cap,
        )

    rid = _rid()
    reply = await append(Side.RECIPIENT, recipient, rid, "cmVwbHk=")
    assert (reply.status, reply.seq, reply.peer_token) == (WriteStatus.OK, 2, b"it2")
    dup = await append(Side.RECIPIENT, recipient, rid, "cmVwbHk=")
    assert dup.status is WriteStatus.DUPLICATE
    mismatch = await append(Side.RECIPIENT, stranger, _rid(), "eA==")
    assert mismatch.status is WriteStatus.CLAIM_MISMATCH
    third = await append(Side.INITIATOR, initiator, _rid(), "dGhpcmQ=")
    assert (third.status, third.seq, third.peer_token) == (WriteStatus.OK, 3, None)
    full = await append(Side.INITIATOR, initiator, _rid(), "eA==", cap=3)
    assert full.status is WriteStatus.FULL
    gone = await store.append_message(
        unknown,
        Side.INITIATOR,
        initiator,
        payload=Payload(AEAD, "eA=="),
        request_id=_rid(),
        token=None,
        now=NOW,
        max_messages=64,
    )
    assert gone.status is WriteStatus.NOT_FOUND

    mine = await store.read_messages(key, Side.INITIATOR, 0, 10)
    assert [(m.seq, m.payload.data) for m in mine] == [(1, "Zmlyc3Q="), (3, "dGhpcmQ=")]
    assert [m.seq for m in await store.read_messages(key, Side.INITIATOR, 1, 10)] == [3]
    assert [m.seq for m in await store.read_messages(key, Side.INITIATOR, 0, 1)] == [1]
    theirs = await store.read_messages(key, Side.RECIPIENT, 0, 10)
    assert [(m.seq, m.side, m.payload.data) for m in theirs] == [(2, Side.RECIPIENT, "cmVwbHk=")]
    state = await store.get_mailbox(key, NOW)
    assert state is not None and state.last_seq == 3


@pytest.mark.anyio
async def test_relinquish_delete_and_tombstones(store: MailboxStore) -> None:
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    await store.create_mailbox(_new(mailbox, claim))
    key = KEYS.mailbox_key(mailbox)
    initiator = KEYS.claim_hash(mailbox, claim)
    first = KEYS.claim_hash(mailbox, b"1" * 16)
    second = KEYS.claim_hash(mailbox, b"2" * 16)
    assert await store.bind_recipient(key, first, b"t1", NOW) is WriteStatus.OK
    await store.append_message(
        key,
        Side.RECIPIENT,
        first,
        payload=Payload(AEAD, "ZnJvbTE="),
        request_id=_rid(),
        token=None,
        now=NOW,
        max_messages=64,
    )
    rid = _rid()
    assert await store.relinquish(key, second, rid, NOW) is WriteStatus.CLAIM_MISMATCH
    assert await store.relinquish(key, first, rid, NOW) is WriteStatus.OK
    assert await store.relinquish(key, first, rid, NOW) is WriteStatus.DUPLICATE
    assert await store.relinquish(key, first, _rid(), NOW) is WriteStatus.CLAIM_MISMATCH
    state = await store.get_mailbox(key, NOW)
    assert state is not None
    assert (state.recipient_claim, state.recipient_token, state.last_seq) == (None, None, 2)
    assert await store.read_messages(key, Side.RECIPIENT, 0, 10) == []
    # The next recipient starts afresh; sequence numbers keep increasing.
    assert await store.bind_recipient(key, second, None, NOW) is WriteStatus.OK
    appended = await store.append_message(
        key,
        Side.RECIPIENT,
        second,
        payload=Payload(AEAD, "ZnJvbTI="),
        request_id=_rid(),
        token=b"t2",
        now=NOW,
        max_messages=2,  # the relinquished message no longer counts
    )
    assert (appended.status, appended.seq) == (WriteStatus.OK, 3)

    drid = _rid()
    assert (
        await store.delete_mailbox(key, Side.RECIPIENT, first, drid, NOW)
    ).status is WriteStatus.CLAIM_MISMATCH
    deleted = await store.delete_mailbox(key, Side.RECIPIENT, second, drid, NOW)
    assert (deleted.status, deleted.had_recipient, deleted.peer_token) == (
        WriteStatus.OK,
        True,
        b"itoken",
    )
    duplicate = await store.delete_mailbox(key, Side.RECIPIENT, second, drid, NOW)
    assert duplicate.status is WriteStatus.DUPLICATE
    assert (
        await store.delete_mailbox(key, Side.INITIATOR, initiator, drid, NOW)
    ).status is WriteStatus.DELETED
    tomb = await store.get_mailbox(key, NOW)
    assert tomb is not None and tomb.deleted
    assert (tomb.display, tomb.initiator_token, tomb.recipient_token) == (None, None, None)
    assert tomb.initiator_claim == initiator and tomb.recipient_claim == second
    assert await store.read_messages(key, Side.INITIATOR, 0, 10) == []
    assert await store.latest_message(key, Side.RECIPIENT) is None
    assert await store.bind_recipient(key, first, None, NOW) is WriteStatus.DELETED
    assert await store.set_token(key, Side.INITIATOR, initiator, None, NOW) is WriteStatus.DELETED
    assert await store.relinquish(key, second, _rid(), NOW) is WriteStatus.DELETED
    late = await store.append_message(
        key,
        Side.INITIATOR,
        initiator,
        payload=Payload(AEAD, "eA=="),
        request_id=_rid(),
        token=None,
        now=NOW,
        max_messages=64,
    )
    assert late.status is WriteStatus.DELETED
    # The idempotency record went with the mailbox: the same create request now creates anew.
    unknown = await store.delete_mailbox(KEYS.mailbox_key(b"?" * 16), Side.INITIATOR, b"", drid, 0)
    assert unknown.status is WriteStatus.NOT_FOUND
    # Past its expiry a tombstone is unknown too.
    assert await store.get_mailbox(key, 10**10) is None


@pytest.mark.anyio
async def test_read_mailbox_finds_the_side_and_the_peers_messages(store: MailboxStore) -> None:
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    await store.create_mailbox(_new(mailbox, claim, expires_at=5_000))
    key = KEYS.mailbox_key(mailbox)
    initiator = KEYS.claim_hash(mailbox, claim)
    recipient = KEYS.claim_hash(mailbox, b"r" * 16)
    stranger = KEYS.claim_hash(mailbox, b"s" * 16)

    async def view(claim_hash: bytes, after: int | None = None, limit: int = 64) -> MailboxView:
        found = await store.read_mailbox(key, claim_hash, NOW, after=after, limit=limit)
        assert found is not None
        return found

    def seqs(found: MailboxView) -> list[tuple[int, Side, str]]:
        return [(m.seq, m.side, m.payload.data) for m in found.messages]

    unknown = KEYS.mailbox_key(b"u" * 16)
    assert await store.read_mailbox(unknown, initiator, NOW, after=None, limit=64) is None
    # A claim that holds no side (a reader about to bind) sees the initiator's messages.
    first = await view(stranger)
    assert first.side is None and seqs(first) == [(1, Side.INITIATOR, "Zmlyc3Q=")]
    assert first.state == await store.get_mailbox(key, NOW)
    own = await view(initiator)
    assert own.side is Side.INITIATOR and own.messages == []

    assert await store.bind_recipient(key, recipient, None, NOW) is WriteStatus.OK
    for side, claim_hash, data in (
        (Side.RECIPIENT, recipient, "dHdv"),
        (Side.RECIPIENT, recipient, "dGhyZWU="),
        (Side.INITIATOR, initiator, "Zm91cg=="),
    ):
        appended = await store.append_message(
            key,
            side,
            claim_hash,
            payload=Payload(AEAD, data),
            request_id=_rid(),
            token=None,
            now=NOW,
            max_messages=64,
        )
        assert appended.status is WriteStatus.OK
    # Without a cursor: the peer's latest message only.
    as_recipient = await view(recipient)
    assert as_recipient.side is Side.RECIPIENT
    assert seqs(as_recipient) == [(4, Side.INITIATOR, "Zm91cg==")]
    as_initiator = await view(initiator)
    assert as_initiator.side is Side.INITIATOR
    assert seqs(as_initiator) == [(3, Side.RECIPIENT, "dGhyZWU=")]
    assert as_initiator.state.recipient_claim == recipient and as_initiator.state.last_seq == 4
    # With a cursor: every peer message after it, ascending, at most ``limit``.
    assert [m.seq for m in (await view(initiator, after=0)).messages] == [2, 3]
    assert [m.seq for m in (await view(initiator, after=2)).messages] == [3]
    assert [m.seq for m in (await view(initiator, after=0, limit=1)).messages] == [2]
    assert [m.seq for m in (await view(initiator, after=3)).messages] == []
    assert [m.seq for m in (await view(recipient, after=0)).messages] == [1, 4]
    assert (await view(stranger)).side is None

    deleted = await store.delete_mailbox(key, Side.INITIATOR, initiator, _rid(), NOW)
    assert deleted.status is WriteStatus.OK
    tomb = await view(recipient, after=0)
    assert tomb.state.deleted and tomb.side is Side.RECIPIENT and tomb.messages == []
    assert (await view(stranger)).side is None
    assert await store.read_mailbox(key, initiator, 5_000, after=None, limit=64) is None


@pytest.mark.anyio
async def test_writes_find_the_claims_side_and_check_its_rights(store: MailboxStore) -> None:
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    await store.create_mailbox(_new(mailbox, claim, rights="R"))
    key = KEYS.mailbox_key(mailbox)
    initiator = KEYS.claim_hash(mailbox, claim)
    recipient = KEYS.claim_hash(mailbox, b"r" * 16)
    stranger = KEYS.claim_hash(mailbox, b"s" * 16)

    async def append(
        claim_hash: bytes, rid: bytes, token: bytes | None = None, right: str | None = "W"
    ) -> AppendResult:
        return await store.append_message(
            key,
            None,
            claim_hash,
            payload=Payload(AEAD, "eA=="),
            request_id=rid,
            token=token,
            now=NOW,
            max_messages=64,
            recipient_right=right,
        )

    rid = _rid()
    mine = await append(initiator, rid)
    assert (mine.status, mine.seq, mine.side, mine.has_token) == (
        WriteStatus.OK,
        2,
        Side.INITIATOR,
        True,
    )
    again = await append(initiator, rid)
    assert (again.status, again.side, again.has_token) == (
        WriteStatus.DUPLICATE,
        Side.INITIATOR,
        True,
    )
    assert (await append(stranger, _rid())).status is WriteStatus.CLAIM_MISMATCH
    assert await store.bind_recipient(key, recipient, None, NOW) is WriteStatus.OK
    # The rights are "R": the recipient may neither write nor delete.
    assert (await append(recipient, _rid())).status is WriteStatus.ACCESS_DENIED
    explicit = await store.append_message(
        key,
        Side.RECIPIENT,
        recipient,
        payload=Payload(AEAD, "eA=="),
        request_id=_rid(),
        token=None,
        now=NOW,
        max_messages=64,
        recipient_right="W",
    )
    assert explicit.status is WriteStatus.ACCESS_DENIED
    allowed = await append(recipient, _rid(), token=b"rtoken", right=None)
    assert (allowed.status, allowed.seq, allowed.side, allowed.has_token, allowed.peer_token) == (
        WriteStatus.OK,
        3,
        Side.RECIPIENT,
        True,
        b"itoken",
    )
    denied = await store.delete_mailbox(key, None, recipient, _rid(), NOW, recipient_right="D")
    assert denied.status is WriteStatus.ACCESS_DENIED
    assert (await store.delete_mailbox(key, None, stranger, _rid(), NOW)).status is (
        WriteStatus.CLAIM_MISMATCH
    )
    drid = _rid()
    deleted = await store.delete_mailbox(key, None, initiator, drid, NOW, recipient_right="D")
    assert (deleted.status, deleted.side, deleted.last_seq, deleted.had_recipient) == (
        WriteStatus.OK,
        Side.INITIATOR,
        3,
        True,
    )
    assert deleted.peer_token == b"rtoken"
    # On a tombstone: a stranger cannot tell it from an unknown id; the parties learn it is gone
    # (before any rights check); the deleting request again is a duplicate.
    assert (await store.delete_mailbox(key, None, stranger, drid, NOW)).status is (
        WriteStatus.NOT_FOUND
    )
    assert (await store.delete_mailbox(key, None, initiator, drid, NOW)).status is (
        WriteStatus.DUPLICATE
    )
    late = await store.delete_mailbox(key, None, recipient, _rid(), NOW, recipient_right="D")
    assert late.status is WriteStatus.DELETED
    assert (await append(stranger, _rid())).status is WriteStatus.NOT_FOUND
    assert (await append(recipient, _rid())).status is WriteStatus.DELETED
    assert (await append(initiator, _rid())).status is WriteStatus.DELETED
    unknown = KEYS.mailbox_key(b"u" * 16)
    assert (await store.delete_mailbox(unknown, None, initiator, drid, NOW)).status is (
        WriteStatus.NOT_FOUND
    )


@pytest.mark.anyio
async def test_races_have_one_winner_and_gap_free_sequences(store: MailboxStore) -> None:
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    await store.create_mailbox(_new(mailbox, claim))
    key = KEYS.mailbox_key(mailbox)
    claims = [KEYS.claim_hash(mailbox, uuid.uuid4().bytes) for _ in range(100)]
    results = await asyncio.gather(*(store.bind_recipient(key, c, None, NOW) for c in claims))
    assert results.count(WriteStatus.OK) == 1
    assert results.count(WriteStatus.ALREADY_BOUND) == 99
    winner = claims[results.index(WriteStatus.OK)]
    state = await store.get_mailbox(key, NOW)
    assert state is not None and state.recipient_claim == winner
    # Both sides append concurrently: distinct, gap-free sequence numbers.
    initiator = KEYS.claim_hash(mailbox, claim)
    appended = await asyncio.gather(
        *(
            store.append_message(
                key,
                side,
                initiator if side is Side.INITIATOR else winner,
                payload=Payload(AEAD, f"m{n}"),
                request_id=_rid(),
                token=None,
                now=NOW,
                max_messages=1000,
            )
            for n in range(80)
            for side in (Side.INITIATOR, Side.RECIPIENT)
        )
    )
    assert sorted(a.seq for a in appended) == list(range(2, 162))
    assert len(await store.read_messages(key, Side.INITIATOR, 0, 1000)) == 81
    assert len(await store.read_messages(key, Side.RECIPIENT, 0, 1000)) == 80


@pytest.mark.anyio
async def test_expired_is_unknown(store: MailboxStore) -> None:
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    await store.create_mailbox(_new(mailbox, claim, expires_at=2_000))
    key = KEYS.mailbox_key(mailbox)
    initiator = KEYS.claim_hash(mailbox, claim)
    assert await store.get_mailbox(key, 1_999) is not None
    assert await store.get_mailbox(key, 2_000) is None
    assert await store.bind_recipient(key, b"c" * 32, None, 2_000) is WriteStatus.NOT_FOUND
    status = await store.set_token(key, Side.INITIATOR, initiator, None, 2_000)
    assert status is WriteStatus.NOT_FOUND
    deleted = await store.delete_mailbox(key, Side.INITIATOR, initiator, _rid(), 2_000)
    assert deleted.status is WriteStatus.NOT_FOUND
    assert await store.relinquish(key, initiator, _rid(), 2_000) is WriteStatus.NOT_FOUND


# -- PostgreSQL specifics ----------------------------------------------------------------------


@pytest.fixture
async def pg_store(postgres_store_url: str) -> AsyncIterator[PostgresStore]:
    store = open_postgres_store(postgres_store_url)
    async with store.opened():
        yield store


@pytest.mark.anyio
async def test_concurrent_duplicate_creates_make_one_mailbox(
    pg_store: PostgresStore, postgres_dsn: str
) -> None:
    claim, rid = uuid.uuid4().bytes, _rid()
    mailboxes = [uuid.uuid4().bytes for _ in range(20)]
    results = await asyncio.gather(
        *(pg_store.create_mailbox(_new(m, claim, request_id=rid)) for m in mailboxes)
    )
    assert [r.status for r in results].count(WriteStatus.OK) == 1
    winner = mailboxes[[r.status for r in results].index(WriteStatus.OK)]
    assert all(
        r.sealed_mailbox_id == b"sealed:" + winner
        for r in results
        if r.status is WriteStatus.DUPLICATE
    )
    assert pg_store.schema is not None
    rows = await fetch_all(postgres_dsn, pg_store.schema, "SELECT key FROM mailbox")
    assert [r["key"] for r in rows] == [KEYS.mailbox_key(winner)]
    messages = await fetch_all(postgres_dsn, pg_store.schema, "SELECT count(*) FROM message")
    assert messages[0][0] == 1


@pytest.mark.anyio
async def test_sweeper_deletes_in_batches_and_sweepers_share_work(
    postgres_store_url: str, postgres_dsn: str
) -> None:
    first = open_postgres_store(postgres_store_url)
    second = open_postgres_store(postgres_store_url)
    async with first.opened(), second.opened():
        creates = []
        for n in range(1203):
            mailbox = uuid.uuid4().bytes
            creates.append(
                _new(mailbox, uuid.uuid4().bytes, expires_at=1_000 if n < 1200 else 10**10)
            )
        await asyncio.gather(*(first.create_mailbox(new) for new in creates))
        # Tombstones expire too, but do not count as "expired live" mailboxes.
        tomb = creates[0]
        await first.delete_mailbox(tomb.key, Side.INITIATOR, tomb.initiator_claim, _rid(), 999)
        results = [await first.delete_expired(2_000, 500) for _ in range(2)]
        assert [r.removed for r in results] == [500, 500]
        # Two sweepers in two "processes" at once: SKIP LOCKED splits the rest between them.
        rest = await asyncio.gather(
            *(s.delete_expired(2_000, 150) for s in (first, second, first, second))
        )
        assert sum(r.removed for r in rest) == 200
        assert (await first.delete_expired(2_000, 500)).removed == 0
        total_live = sum(r.expired_live for r in [*results, *rest])
        assert total_live == 1199
        assert first.schema is not None
        for table in ("mailbox", "message", "create_request"):
            rows = await fetch_all(postgres_dsn, first.schema, f"SELECT count(*) FROM {table}")
            assert rows[0][0] == 3, table


@pytest.mark.anyio
async def test_migrations_run_concurrently_once(postgres_store_url: str, postgres_dsn: str) -> None:
    stores = [open_postgres_store(postgres_store_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for store in stores:
            await store.health_check()
        schema = stores[0].schema
        assert schema is not None and schema == parse_postgres_url(postgres_store_url).schema
        rows = await fetch_all(postgres_dsn, schema, "SELECT version FROM tigress_schema")
        assert [r[0] for r in rows] == [SCHEMA_VERSION]
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    # Reopening an up-to-date schema changes nothing; open and close are idempotent.
    again = open_postgres_store(postgres_store_url)
    await again.open()
    await again.open()
    await again.close()
    await again.close()
    # A schema from a newer relay is refused rather than misread.
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f'UPDATE "{schema}".tigress_schema SET version = 99')
    finally:
        await conn.close()
    with pytest.raises(StoreUnavailableError, match="newer"):
        await open_postgres_store(postgres_store_url).open()


@pytest.mark.anyio
async def test_unreachable_database_and_closed_store_raise_store_unavailable(
    postgres_store_url: str, postgres_dsn: str
) -> None:
    closed = open_postgres_store(postgres_store_url)
    with pytest.raises(StoreUnavailableError, match="not open"):
        await closed.get_mailbox(b"k" * 16, NOW)
    # Nothing listens on port 1 of the loopback interface.
    nowhere = open_postgres_store(schema_url("postgresql://postgres@127.0.0.1:1/test", "t_x"))
    with pytest.raises(StoreUnavailableError, match="cannot connect"):
        await nowhere.open()
    store = open_postgres_store(postgres_store_url)
    async with store.opened():
        await store.health_check()
        assert store.schema is not None
        # The database goes away under a running relay: answers turn into StoreUnavailableError.
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute(f'DROP SCHEMA "{store.schema}" CASCADE')
        finally:
            await conn.close()
        with pytest.raises(StoreUnavailableError):
            await store.health_check()
        with pytest.raises(StoreUnavailableError):
            await store.create_mailbox(_new(uuid.uuid4().bytes, b"c" * 16))


@pytest.mark.anyio
async def test_pool_replaces_connections_the_server_dropped(
    pg_store: PostgresStore, postgres_dsn: str
) -> None:
    pool = pg_store._pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        pids = [await conn.fetchval("SELECT pg_backend_pid()") for conn in held]
    finally:
        for conn in held:
            await pool.release(conn)
    admin = await asyncpg.connect(postgres_dsn)
    try:
        for pid in pids:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
    finally:
        await admin.close()
    await asyncio.sleep(0.3)  # the client notices the closed sockets
    # Every pooled connection was killed; the pool reconnects on the next acquire.
    await pg_store.health_check()
    mailbox = uuid.uuid4().bytes
    assert (await pg_store.create_mailbox(_new(mailbox, b"c" * 16))).status is WriteStatus.OK
    assert await pg_store.get_mailbox(KEYS.mailbox_key(mailbox), NOW) is not None


@pytest.mark.anyio
async def test_durability_full_forces_synchronous_commit(postgres_store_url: str) -> None:
    # Other URL parameters reach the server as session settings; "full" overrides a lower one.
    lowered = postgres_store_url + "&synchronous_commit=off"
    for durability, expected in (("normal", "off"), ("full", "on")):
        store = open_store(lowered.replace("postgresql://", "postgres://"), durability=durability)
        assert isinstance(store, PostgresStore)
        async with store.opened():
            setting = await store._pool.fetchval("SHOW synchronous_commit")
            assert setting == expected, durability
            timeout = await store._pool.fetchval("SHOW idle_in_transaction_session_timeout")
            assert timeout == "10s"
