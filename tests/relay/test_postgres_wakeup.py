"""LISTEN/NOTIFY wake-ups between stores (as in separate relay processes) on one database: the
payload is the blinded key, hostile payloads are ignored, schemas do not hear each other, and a
dropped listener connection comes back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from tests.relay.postgres_helpers import drop_schema_async, schema_url

from tigress.relay.stores.postgres import PostgresStore, open_postgres_store
from tigress.relay.wakeup_postgres import PostgresWakeupBus, parse_payload

KEY = bytes(range(16))
OTHER = bytes(range(16, 32))


def test_payload_parsing_accepts_only_a_hex_key() -> None:
    assert parse_payload(KEY.hex()) == KEY
    for bad in (
        "",
        KEY.hex()[:-1],
        KEY.hex() + "00",
        KEY.hex().upper(),
        " " + KEY.hex()[1:],
        "g" * 32,
        "\u0660" * 32,
        None,
        b"0" * 32,
    ):
        assert parse_payload(bad) is None


@pytest.fixture
async def two_stores(postgres_store_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first = open_postgres_store(postgres_store_url, listener_keepalive=0.5)
    second = open_postgres_store(postgres_store_url, listener_keepalive=0.5)
    async with first.opened(), second.opened():
        assert isinstance(first.wakeups, PostgresWakeupBus)
        assert isinstance(second.wakeups, PostgresWakeupBus)
        assert await first.wakeups.wait_connected(10)
        assert await second.wakeups.wait_connected(10)
        yield first, second


def _bus(store: PostgresStore) -> PostgresWakeupBus:
    bus = store.wakeups
    assert isinstance(bus, PostgresWakeupBus)
    return bus


@pytest.mark.anyio
async def test_publish_wakes_the_other_store_quickly(
    two_stores: tuple[PostgresStore, PostgresStore], postgres_dsn: str
) -> None:
    first, second = two_stores
    # A plain listener on the same channel sees exactly the hex key, nothing else.
    seen: list[str] = []
    spy = await asyncpg.connect(postgres_dsn)
    channel = _bus(first).channel
    assert channel is not None
    await spy.add_listener(channel, lambda *args: seen.append(args[3]))
    try:
        latencies = []
        async with second.wakeups.subscribe(KEY) as remote, first.wakeups.subscribe(KEY) as local:
            for _ in range(20):
                started = time.perf_counter()
                first.wakeups.publish(KEY)
                assert await remote.wait(5) is True
                latencies.append(time.perf_counter() - started)
                assert await local.wait(0) is True  # the publisher's own waiters, at once
            # Another mailbox's key wakes nobody here; our own echo is not a second wake-up.
            first.wakeups.publish(OTHER)
            assert await remote.wait(0.2) is False
            assert await local.wait(0.05) is False
        latencies.sort()
        assert latencies[len(latencies) // 2] < 0.05, latencies
        await asyncio.sleep(0.1)
    finally:
        await spy.close()
    assert set(seen) == {KEY.hex(), OTHER.hex()}
    assert _bus(second).waiter_count == 0


@pytest.mark.anyio
async def test_hostile_notifications_are_ignored(
    two_stores: tuple[PostgresStore, PostgresStore], postgres_dsn: str
) -> None:
    _, second = two_stores
    channel = _bus(second).channel
    intruder = await asyncpg.connect(postgres_dsn)
    try:
        async with second.wakeups.subscribe(KEY) as subscription:
            for payload in ("", "not hex", KEY.hex().upper(), KEY.hex() + "00", "x" * 7000):
                await intruder.execute("SELECT pg_notify($1, $2)", channel, payload)
            assert await subscription.wait(0.3) is False
            await intruder.execute("SELECT pg_notify($1, $2)", channel, KEY.hex())
            assert await subscription.wait(5) is True
    finally:
        await intruder.close()


@pytest.mark.anyio
async def test_schemas_do_not_hear_each_other(postgres_dsn: str, postgres_store_url: str) -> None:
    other_schema = "t_" + uuid.uuid4().hex
    first = open_postgres_store(postgres_store_url)
    elsewhere = open_postgres_store(schema_url(postgres_dsn, other_schema))
    try:
        async with first.opened(), elsewhere.opened():
            assert _bus(first).channel != _bus(elsewhere).channel
            assert await _bus(elsewhere).wait_connected(10)
            async with elsewhere.wakeups.subscribe(KEY) as subscription:
                first.wakeups.publish(KEY)
                assert await subscription.wait(0.3) is False
    finally:
        await drop_schema_async(postgres_dsn, other_schema)


@pytest.mark.anyio
async def test_dropped_listener_reconnects_and_wakes_its_waiters(
    two_stores: tuple[PostgresStore, PostgresStore], postgres_dsn: str
) -> None:
    first, second = two_stores
    old_pid = _bus(second).listener_pid
    assert old_pid is not None
    admin = await asyncpg.connect(postgres_dsn)
    try:
        async with second.wakeups.subscribe(KEY) as subscription:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", old_pid) is True
            # While the listener was gone notifications were lost, so reconnecting wakes every
            # local waiter to re-read.
            assert await subscription.wait(10) is True
            deadline = time.monotonic() + 10
            while _bus(second).listener_pid in (None, old_pid):
                assert time.monotonic() < deadline, "the listener did not reconnect"
                await asyncio.sleep(0.02)
            first.wakeups.publish(KEY)
            assert await subscription.wait(5) is True
            # The publisher's own listener can be dropped too: its sends resume after reconnect.
            first_pid = _bus(first).listener_pid
            await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
            deadline = time.monotonic() + 10
            while _bus(first).listener_pid in (None, first_pid):
                assert time.monotonic() < deadline, "the publisher did not reconnect"
                await asyncio.sleep(0.02)
            await subscription.wait(0.2)  # drain any wake-up caused by the reconnection
            first.wakeups.publish(KEY)
            assert await subscription.wait(5) is True
    finally:
        await admin.close()


@pytest.mark.anyio
async def test_listener_retries_while_the_database_is_unreachable() -> None:
    attempts = 0

    async def refuse() -> object:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("no database here")

    bus = PostgresWakeupBus(refuse, "tigress_wakeup_test", reconnect_max_seconds=0.05)
    with pytest.raises(RuntimeError, match="channel"):
        await PostgresWakeupBus(refuse).start()
    await bus.start()
    try:
        async with bus.subscribe(KEY) as subscription:
            bus.publish(KEY)  # never raises; local waiters still wake
            assert await subscription.wait(1) is True
            await asyncio.sleep(0.3)
            assert attempts >= 3
            assert await bus.wait_connected(0.01) is False
            assert bus.listener_pid is None
        with pytest.raises(RuntimeError, match="channel"):
            bus.use_channel("another")
    finally:
        await bus.aclose()
        await bus.aclose()
    bus.publish(KEY)  # after close: still never raises


def test_a_store_can_be_reopened_on_another_event_loop(postgres_store_url: str) -> None:
    store = open_postgres_store(postgres_store_url)

    async def round_trip() -> bool:
        async with store.opened():
            bus = _bus(store)
            assert await bus.wait_connected(10)
            async with bus.subscribe(KEY) as subscription:
                bus.publish(KEY)
                return await subscription.wait(1)

    assert asyncio.run(round_trip()) is True
    assert asyncio.run(round_trip()) is True
