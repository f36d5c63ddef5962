"""Idle event streams do not read the database on every heartbeat; a mass expiry is paced."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.relay.conftest import AEAD

from tigress.relay.config import RelayConfig
from tigress.relay.keys import RelayKeys
from tigress.relay.metrics import RelayMetrics
from tigress.relay.notify.base import NoPushDispatcher
from tigress.relay.service import MailboxService
from tigress.relay.stores.base import DisplayInformation, NewMailbox, Payload
from tigress.relay.stores.sqlite import SQLiteStore
from tigress.relay.validation import MailboxId

pytestmark = pytest.mark.anyio
CLAIM = b"c" * 16


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingStore(SQLiteStore):
    reads = 0

    async def get_mailbox(self, *args: Any, **kwargs: Any) -> Any:
        type(self).reads += 1
        return await super().get_mailbox(*args, **kwargs)


async def add_mailbox(store: SQLiteStore, keys: RelayKeys, expires_at: int) -> bytes:
    mailbox_id = uuid.uuid4().bytes
    await store.create_mailbox(
        NewMailbox(
            key=keys.mailbox_key(mailbox_id),
            initiator_claim=keys.claim_hash(mailbox_id, CLAIM),
            access_rights="RD",
            created_at=0,
            expires_at=expires_at,
            display=DisplayInformation("t", "d", "https://x.example/i.png"),
            payload=Payload(AEAD, "eA=="),
            initiator_token=None,
            initiator_request_id=uuid.uuid4().bytes,
            create_claim=keys.create_claim_hash(uuid.uuid4().bytes),
            sealed_mailbox_id=mailbox_id,
        )
    )
    return mailbox_id


def service(store: SQLiteStore, keys: RelayKeys, **config: Any) -> MailboxService:
    return MailboxService(store, NoPushDispatcher(), keys, RelayConfig(**config), RelayMetrics())


async def test_idle_stream_heartbeats_without_reading_the_store(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "relay.db")
    keys = RelayKeys(b"k" * 32)
    async with store.opened():
        mailbox_id = await add_mailbox(store, keys, int(time.time()) + 3600)
        relay = service(store, keys, sse_heartbeat_seconds=0.02)
        handle = await relay.open_stream(MailboxId(mailbox_id), CLAIM)
        CountingStore.reads = 0
        events = []
        stream = relay.stream(handle, after=0)
        while len(events) < 12:
            events.append(await anext(stream))
        await stream.aclose()
    assert [e.kind for e in events].count("heartbeat") >= 11
    # One read to start, then one every fourth heartbeat (to catch a lost wake-up) — not twelve.
    assert CountingStore.reads <= 4


class TimedService(MailboxService):
    """Records when each sweep batch ran."""

    batches: list[tuple[float, float, int]]

    async def sweep_once(self) -> Any:
        begun = time.perf_counter()
        result = await super().sweep_once()
        self.batches.append((begun, time.perf_counter(), result.removed))
        return result


async def test_mass_expiry_is_paced_so_requests_keep_the_writer(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "relay.db")
    keys = RelayKeys(b"k" * 32)
    async with store.opened():
        for _ in range(500):
            await add_mailbox(store, keys, expires_at=1_000)
        relay = TimedService(
            store,
            NoPushDispatcher(),
            keys,
            RelayConfig(sweep_batch=100, sweep_interval_seconds=30.0),
            RelayMetrics(),
        )
        relay.batches = []
        sweeper = asyncio.create_task(relay.run_sweeper())
        deadline = time.perf_counter() + 20
        while len(relay.batches) < 6 and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        sweeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeper
    removed = [n for _, _, n in relay.batches]
    assert removed[:6] == [100, 100, 100, 100, 100, 0]
    # After each full batch the sweeper waits at least twice as long as the batch took,
    # so requests get most of the single writer while a backlog lasts.
    for (start, end, _), (next_start, _, _) in zip(relay.batches, relay.batches[1:], strict=False):
        assert next_start - end >= 2 * (end - start)
