"""Unit and property tests of the relay's parsers, configuration, keys, stores and wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.relay.config import ConfigError, RelayConfig, build_config, config_from_json
from tigress.relay.keys import RelayKeys, SecretFileError, load_or_create_secret
from tigress.relay.problems import PROBLEM_TYPES, ProblemError
from tigress.relay.stores import StoreURLError, open_store, sqlite_path_from_url
from tigress.relay.stores import sqlite as sqlite_store
from tigress.relay.stores.base import (
    DisplayInformation,
    NewMailbox,
    Payload,
    Side,
    WriteStatus,
)
from tigress.relay.stores.sqlite import SQLiteStore
from tigress.relay.validation import (
    MailboxId,
    parse_claim,
    parse_create,
    parse_cursor,
    parse_json_object,
    parse_mailbox_id,
    parse_read,
    parse_update,
    parse_wait,
    require_json_media_type,
)
from tigress.relay.wakeup import DatagramWakeupBus, LocalWakeupBus, socket_directory_for

CONFIG = RelayConfig()
NOW = 1_800_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "payload",
                    "type",
                    "data",
                    "displayInformation",
                    "title",
                    "description",
                    "imageURL",
                    "notificationToken",
                    "tokenData",
                    "mailboxConfiguration",
                    "accessRights",
                    "expiration",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_json_parser_raises_only_problems(raw: bytes) -> None:
    status = 400
    try:
        parse_json_object(raw)
    except ProblemError as problem:
        status = problem.status
    assert status == 400


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'\xef\xbb\xbf{"a": 1}', "invalid JSON: the body starts with a byte order mark"),
        (b'{"a": 1, "a": 2}', "duplicate member 'a' in a JSON object"),
        (b'{"a": NaN}', "NaN is not allowed in JSON"),
        (b"[1]", "the body must be a JSON object"),
        (b"\xff{}", "the body is not valid UTF-8"),
        (b'{"a": ', "invalid JSON: Expecting value: line 1 column 7 (char 6)"),
    ],
)
def test_json_parser_names_what_is_wrong(raw: bytes, detail: str) -> None:
    with pytest.raises(ProblemError) as caught:
        parse_json_object(raw)
    assert caught.value.detail == detail


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_body_parsers_raise_only_problems(value: Any) -> None:
    for parser in (
        lambda body: parse_create(body, NOW, CONFIG),
        lambda body: parse_update(body, CONFIG),
        lambda body: parse_read(body, CONFIG),
    ):
        if not isinstance(value, dict):
            continue
        outcome = (400, "invalid-field")
        try:
            parser(value)
        except ProblemError as problem:
            outcome = (problem.status, problem.slug)
        assert outcome[0] == 400
        assert outcome[1] in PROBLEM_TYPES


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_header_and_query_parsers_raise_only_problems(text: str) -> None:
    for parser in (
        parse_claim,
        lambda v: parse_cursor(v, "after"),
        lambda v: parse_wait(v, 60),
        require_json_media_type,
    ):
        with contextlib.suppress(ProblemError):
            parser(text)


def test_create_parser_defaults_and_normalisation() -> None:
    body = {
        "payload": {"type": "tigress-noise-v1", "data": "AAEC_-=="},
        "displayInformation": {
            "title": "Cafe\u0301",
            "description": "",
            "imageURL": "https://x.example/a.png",
        },
        "mailboxConfiguration": {"accessRights": "DR"},
    }
    parsed = parse_create(json.loads(json.dumps(body)), NOW, CONFIG)
    assert parsed.access_rights == "RD"
    assert parsed.expires_at == NOW + 48 * 3600
    assert parsed.display.title == "Caf\u00e9"
    assert parsed.token is None


def test_config_sources_and_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "relay.toml"
    toml.write_text('[relay]\nport = 9000\ndurability = "full"\nworkers = 3\n')
    config = build_config(
        toml_path=toml,
        environ={"TIGRESS_RELAY_PORT": "9100", "TIGRESS_RELAY_ACCESS_LOG": "yes"},
        overrides={"workers": 2, "host": None},
    )
    assert (config.port, config.durability, config.workers, config.access_log) == (
        9100,
        "full",
        2,
        True,
    )
    assert config_from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="unknown setting"):
        build_config(environ={"TIGRESS_RELAY_PROT": "1"})
    with pytest.raises(ConfigError, match="invalid int"):
        build_config(environ={"TIGRESS_RELAY_PORT": "many"})
    with pytest.raises(ConfigError, match="durability"):
        build_config(environ={"TIGRESS_RELAY_DURABILITY": "fast"})
    with pytest.raises(ConfigError, match="expiration"):
        build_config(overrides={"expiration_default_seconds": 10**9})


def test_store_urls(tmp_path: Path) -> None:
    assert sqlite_path_from_url("sqlite:///var/lib/relay.db") == Path("/var/lib/relay.db")
    assert sqlite_path_from_url("sqlite:data/relay.db") == Path("data/relay.db")
    for bad in ("sqlite://host/x.db", "sqlite:///", "sqlite:///x.db?mode=ro", "mysql://x"):
        with pytest.raises(StoreURLError):
            open_store(bad)
    with pytest.raises(StoreURLError):
        open_store(f"sqlite:///{tmp_path}/x.db", durability="fast")


def test_secret_file_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "relay.secret"
    first = load_or_create_secret(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == first
    assert "secret" not in repr(first) or first.secret.hex() not in repr(first)
    mailbox, claim, request = uuid.uuid4().bytes, uuid.uuid4().bytes, uuid.uuid4().bytes
    sealed = first.seal_mailbox_id(claim, request, mailbox)
    assert sealed != mailbox
    assert first.unseal_mailbox_id(claim, request, sealed) == mailbox
    assert first.claim_hash(mailbox, claim) != first.claim_hash(uuid.uuid4().bytes, claim)
    token = first.seal_token(mailbox, "i", "webhook", "https://h.example/x")
    assert first.open_token(mailbox, "i", token) == ("webhook", "https://h.example/x")
    assert first.open_token(mailbox, "r", token) is None  # bound to the side
    assert first.open_token(uuid.uuid4().bytes, "i", token) is None  # and to the mailbox
    assert first.open_token(mailbox, "i", token[:-1] + bytes([token[-1] ^ 1])) is None
    path.write_bytes(b"short")
    with pytest.raises(SecretFileError):
        load_or_create_secret(path)


def _new(keys: RelayKeys, mailbox: bytes, claim: bytes, expires: int = 10**10) -> NewMailbox:
    return NewMailbox(
        key=keys.mailbox_key(mailbox),
        initiator_claim=keys.claim_hash(mailbox, claim),
        access_rights="RWD",
        created_at=0,
        expires_at=expires,
        display=DisplayInformation("t", "d", "https://x.example/i.png"),
        payload=Payload("AEAD_AES_128_GCM", "eA=="),
        initiator_token=None,
        initiator_request_id=uuid.uuid4().bytes,
        create_claim=keys.create_claim_hash(claim),
        sealed_mailbox_id=mailbox,
    )


@pytest.mark.anyio
async def test_sqlite_bind_race_has_one_winner_and_group_commit(tmp_path: Path) -> None:
    keys = RelayKeys(b"s" * 32)
    store = SQLiteStore(tmp_path / "relay.db", durability="full")
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    async with store.opened():
        await store.create_mailbox(_new(keys, mailbox, claim))
        key = keys.mailbox_key(mailbox)
        claims = [keys.claim_hash(mailbox, uuid.uuid4().bytes) for _ in range(200)]
        results = await asyncio.gather(*(store.bind_recipient(key, c, None, 0) for c in claims))
        assert results.count(WriteStatus.OK) == 1
        assert results.count(WriteStatus.ALREADY_BOUND) == 199
        state = await store.get_mailbox(key, 0)
        assert state is not None
        assert state.recipient_claim == claims[results.index(WriteStatus.OK)]
        # 100 concurrent appends from one side: distinct, gap-free sequence numbers.
        initiator = keys.claim_hash(mailbox, claim)
        appended = await asyncio.gather(
            *(
                store.append_message(
                    key,
                    Side.INITIATOR,
                    initiator,
                    payload=Payload("AEAD_AES_128_GCM", f"m{n}"),
                    request_id=uuid.uuid4().bytes,
                    token=None,
                    now=0,
                    max_messages=1000,
                )
                for n in range(100)
            )
        )
        assert sorted(a.seq for a in appended) == list(range(2, 102))
        assert len(await store.read_messages(key, Side.INITIATOR, 50, 1000)) == 51
        # Expired is the same as unknown.
        assert await store.get_mailbox(key, 10**10) is None
        assert await store.bind_recipient(key, claims[0], None, 10**10) is WriteStatus.NOT_FOUND


@pytest.mark.anyio
async def test_schema_migration_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    async with SQLiteStore(path).opened():
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    async with SQLiteStore(path).opened() as reopened:
        await reopened.health_check()


@pytest.mark.anyio
async def test_version_one_database_keeps_its_messages_in_a_rowid_table(tmp_path: Path) -> None:
    """Migration 2 rebuilds the message table (version 1 was WITHOUT ROWID, which pushed every
    ~1.4 KB frame into an overflow page); what a live mailbox holds survives it."""
    path = tmp_path / "relay.db"
    keys = RelayKeys(b"m" * 32)
    mailbox, claim = uuid.uuid4().bytes, uuid.uuid4().bytes
    key = keys.mailbox_key(mailbox)
    frame = "QUJD" * 350  # 1,400 characters, like a padded frame
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in sqlite_store._MIGRATIONS[0].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO mailbox (id, key, i_claim, rights, created_at, expires_at, title,"
            " description, image_url, last_seq, n_messages) VALUES"
            " (7, ?, ?, 'RWD', 0, ?, 't', 'd', 'https://i.example/x.png', 2, 2)",
            (key, keys.claim_hash(mailbox, claim), 10**10),
        )
        conn.executemany(
            "INSERT INTO message (mailbox, seq, side, type, data) VALUES (7, ?, ?, 'T', ?)",
            [(1, "i", frame), (2, "r", "cmVwbHk=")],
        )
    async with SQLiteStore(path).opened() as store:
        latest = await store.latest_message(key, Side.INITIATOR)
        assert latest is not None and (latest.seq, latest.payload.data) == (1, frame)
        replies = await store.read_messages(key, Side.RECIPIENT, 0, 10)
        assert [(m.seq, m.payload.data) for m in replies] == [(2, "cmVwbHk=")]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION
        table = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'message'").fetchone()
        assert "WITHOUT ROWID" not in table[0].upper()
        # One message per (mailbox, seq) is still enforced.
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO message VALUES (7, 2, 'i', 'T', 'eA==')")
        # A 1.4 KB frame now fits in its leaf page: no overflow page per message.
        conn.execute("INSERT INTO message VALUES (7, 3, 'i', 'T', ?)", (frame,))
        overflow = conn.execute(
            "SELECT count(*) FROM dbstat WHERE name = 'message' AND pagetype = 'overflow'"
        ).fetchone()[0]
        assert overflow == 0


@pytest.mark.anyio
async def test_version_two_database_keeps_its_create_records(tmp_path: Path) -> None:
    """Migration 3 moves each create-idempotency record into its mailbox's row: a retried
    create is still answered with the earlier mailbox, and a new one from the claim replaces it."""
    path = tmp_path / "relay.db"
    keys = RelayKeys(b"m" * 32)
    mailbox, claim, rid = uuid.uuid4().bytes, uuid.uuid4().bytes, uuid.uuid4().bytes
    key = keys.mailbox_key(mailbox)
    sealed = keys.seal_mailbox_id(claim, rid, mailbox)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for migration in sqlite_store._MIGRATIONS[:2]:
            for statement in migration.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO mailbox (id, key, i_claim, rights, created_at, expires_at, title,"
            " description, image_url, last_seq, n_messages, i_req) VALUES"
            " (7, ?, ?, 'RD', 0, ?, 't', 'd', 'https://i.example/x.png', 1, 1, ?)",
            (key, keys.claim_hash(mailbox, claim), 10**10, rid),
        )
        conn.execute(
            "INSERT INTO create_request (claim, request_id, sealed_id, mailbox)"
            " VALUES (?, ?, ?, 7)",
            (keys.create_claim_hash(claim), rid, sealed),
        )

    def new_mailbox(request_id: bytes) -> NewMailbox:
        fresh = uuid.uuid4().bytes
        return NewMailbox(
            key=keys.mailbox_key(fresh),
            initiator_claim=keys.claim_hash(fresh, claim),
            access_rights="RD",
            created_at=0,
            expires_at=10**10,
            display=DisplayInformation("t", "d", "https://i.example/x.png"),
            payload=Payload("T", "eA=="),
            initiator_token=None,
            initiator_request_id=request_id,
            create_claim=keys.create_claim_hash(claim),
            sealed_mailbox_id=keys.seal_mailbox_id(claim, request_id, fresh),
        )

    async with SQLiteStore(path).opened() as store:
        retry = await store.create_mailbox(new_mailbox(rid))
        assert retry.status is WriteStatus.DUPLICATE and retry.sealed_mailbox_id is not None
        assert keys.unseal_mailbox_id(claim, rid, retry.sealed_mailbox_id) == mailbox
        assert (await store.create_mailbox(new_mailbox(uuid.uuid4().bytes))).status is (
            WriteStatus.OK
        )
        # The record followed the newer mailbox: the old Request-ID now creates afresh.
        assert (await store.create_mailbox(new_mailbox(rid))).status is WriteStatus.OK
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
        assert "create_request" not in tables and "mailbox_create" in tables
        records = "SELECT count(*) FROM mailbox WHERE c_claim IS NOT NULL"
        assert conn.execute(records).fetchone()[0] == 1


@pytest.mark.anyio
async def test_wakeup_buses(tmp_path: Path) -> None:
    local = LocalWakeupBus()
    async with local.subscribe(b"k" * 16) as subscription:
        local.publish(b"k" * 16)  # before wait: not lost
        assert await subscription.wait(1) is True
        assert await subscription.wait(0.05) is False
    assert local.waiter_count == 0

    directory = socket_directory_for(tmp_path / "relay.db")
    first, second = DatagramWakeupBus(directory), DatagramWakeupBus(directory)
    await first.start()
    await second.start()
    try:
        async with second.subscribe(b"x" * 16) as subscription:
            first.publish(b"x" * 16)
            assert await subscription.wait(2) is True
            first.publish(b"y" * 16)  # another mailbox: no wake-up
            assert await subscription.wait(0.1) is False
        await second.aclose()
        first.publish(b"x" * 16)  # the dead peer's socket is gone: never raises
    finally:
        await first.aclose()
        await second.aclose()


def test_long_database_paths_get_a_short_socket_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / "relay.db"
    directory = socket_directory_for(deep)
    assert len(str(directory)) < 80
    assert directory == socket_directory_for(deep)


@given(raw=st.binary(min_size=16, max_size=16))
def test_mailbox_id_reads_and_writes_like_uuid(raw: bytes) -> None:
    reference = uuid.UUID(bytes=raw)
    mailbox_id = MailboxId(raw)
    assert str(mailbox_id) == str(reference)
    for text in (str(reference), str(reference).upper()):
        parsed = parse_mailbox_id(text)
        assert parsed == mailbox_id and parsed is not None and parsed.bytes == raw
    assert hash(parsed) == hash(mailbox_id) and mailbox_id != raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-uuid",
        "0" * 36,
        "{12345678-1234-1234-1234-123456789abc}",
        "12345678123412341234123456789abc",
        "12345678-1234-1234-1234-123456789abg",
        "12345678-1234-1234-1234-123456789abc\n",
    ],
)
def test_malformed_mailbox_ids_are_refused(text: str) -> None:
    assert parse_mailbox_id(text) is None


def test_random_mailbox_ids_are_version_4() -> None:
    made = {MailboxId.random() for _ in range(200)}
    assert len(made) == 200
    for mailbox_id in made:
        reference = uuid.UUID(str(mailbox_id))
        assert reference.version == 4 and reference.variant == uuid.RFC_4122
    with pytest.raises(ValueError, match="16 bytes"):
        MailboxId(b"short")
