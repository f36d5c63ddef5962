"""The relay's fast paths compute exactly what the straightforward code they replaced computed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tigress.relay.keys import RelayKeys
from tigress.relay.stores.base import Side
from tigress.relay.stores.sqlite import Durability, SQLiteStore

_INSERT = "INSERT INTO message (mailbox, seq, side, type, data) VALUES (?, 1, 'i', 't', 'd')"
secrets_ = st.binary(min_size=32, max_size=32)
ids = st.binary(min_size=16, max_size=16)


def _reference(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.digest(secret, label + b"".join(parts), hashlib.sha256)


@given(secrets_, ids, ids, ids)
def test_keyed_hashes_are_hmac_sha256_of_label_and_parts(
    secret: bytes, mailbox: bytes, claim: bytes, request_id: bytes
) -> None:
    keys = RelayKeys(secret)
    assert keys.mailbox_key(mailbox) == _reference(secret, b"tigress-relay mailbox\0", mailbox)[:16]
    assert (
        keys.claim_hash(mailbox, claim)
        == _reference(secret, b"tigress-relay claim\0", mailbox, claim)[:16]
    )
    assert (
        keys.create_claim_hash(claim) == _reference(secret, b"tigress-relay create\0", claim)[:16]
    )
    pad = _reference(secret, b"tigress-relay create-seal\0", claim, request_id)
    sealed = keys.seal_mailbox_id(claim, request_id, mailbox)
    assert sealed == bytes(a ^ b for a, b in zip(mailbox, pad, strict=False))
    assert keys.unseal_mailbox_id(claim, request_id, sealed) == mailbox


def test_keys_never_show_key_material() -> None:
    keys = RelayKeys(b"\x01" * 32)
    assert repr(keys) == "RelayKeys()"
    assert "01" not in repr(keys._mailbox)


@pytest.mark.anyio
@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_a_failing_write_in_a_batch_undoes_only_itself(
    tmp_path: Path, durability: Durability
) -> None:
    store = SQLiteStore(tmp_path / "relay.db", durability=durability)
    await store.open()
    try:

        def insert(rowid: int, fail: bool) -> Callable[[sqlite3.Connection], int]:
            def op(conn: sqlite3.Connection) -> int:
                conn.execute(_INSERT, (rowid,))
                if fail:
                    raise ValueError("refused")
                return rowid

            return op

        # Queued in one loop iteration, so they share one transaction.
        results = await asyncio.gather(
            *(store._write(insert(n, n == 3)) for n in range(6)), return_exceptions=True
        )
        assert [r if isinstance(r, int) else "error" for r in results] == [0, 1, 2, "error", 4, 5]
        lone = await asyncio.gather(store._write(insert(9, True)), return_exceptions=True)
        assert isinstance(lone[0], ValueError)
        rows = store._read().execute("SELECT mailbox FROM message ORDER BY mailbox").fetchall()
        assert [r[0] for r in rows] == [0, 1, 2, 4, 5]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_writes_wait_for_another_process_holding_the_lock(tmp_path: Path) -> None:
    """A batch that finds the write lock taken retries on the loop (never blocking it) and
    commits once the lock is free; reads go on meanwhile."""
    store = SQLiteStore(tmp_path / "relay.db")
    await store.open()
    other = sqlite3.connect(tmp_path / "relay.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(
            store._write(lambda conn: conn.execute(_INSERT, (7,)).rowcount)
        )
        await asyncio.sleep(0.05)
        assert not write.done()
        assert await store.latest_message(b"\0" * 16, Side.INITIATOR) is None  # reads go on
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 5) == 1
    finally:
        other.close()
        await store.close()
