"""Two separate relay processes sharing one PostgreSQL database over real HTTP: exactly one of 50
racing claimants binds, a write through one process wakes waiters on the other at once, and no
claim, token or mailbox id is stored in the clear."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.relay.conftest import AEAD, LiveRelay, create_body, create_mailbox, headers, new_id
from tests.relay.postgres_helpers import fetch_all, run_sync

from tigress.relay.config import RelayConfig
from tigress.relay.stores.postgres_schema import parse_postgres_url

pytestmark = pytest.mark.slow


def _config(store_url: str, tmp_path: Path) -> RelayConfig:
    return RelayConfig(
        store=store_url,
        public_url="https://relay.test",
        secret_file=str(tmp_path / "relay.secret"),  # relays sharing a database share it
        rate_limit_per_second=0,
        # Long enough that a waiter seeing a write within seconds can only have been woken by
        # the other process's NOTIFY, never by its own heartbeat re-read.
        sse_heartbeat_seconds=15.0,
    )


def test_two_relay_processes_fifty_claimants_exactly_one_binds(
    start_process: Any, postgres_store_url: str, tmp_path: Path
) -> None:
    config = _config(postgres_store_url, tmp_path)
    servers = [start_process(config), start_process(config)]
    with httpx2.Client(base_url=servers[0].base_url, timeout=30) as http:
        path, _ = create_mailbox(http, new_id())
    claims = [new_id() for _ in range(50)]
    barrier = threading.Barrier(50)

    def claim(index: int) -> int:
        server = servers[index % 2]
        with httpx2.Client(base_url=server.base_url, timeout=30) as own:
            own.get("/healthz")  # connect first so the reads start together
            barrier.wait()
            return own.post(path, headers=headers(claims[index])).status_code

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(claim, range(50)))
    assert statuses.count(200) == 1, statuses
    assert all(status == 409 for status in statuses if status != 200)
    winner = claims[statuses.index(200)]
    loser = claims[(statuses.index(200) + 1) % 50]
    for server in servers:
        with httpx2.Client(base_url=server.base_url, timeout=30) as http:
            assert http.post(path, headers=headers(winner)).status_code == 200
            assert http.post(path, headers=headers(loser)).status_code == 409


def _wake_round(
    writer: Any, waiter: Any, path: str, initiator: str, recipient: str, seq: int
) -> dict[str, float]:
    """Park a long-poll and an SSE stream on ``waiter``, write message ``seq`` through
    ``writer``; returns how long after the write each waiter saw it."""
    woken: dict[str, float] = {}
    ready = threading.Barrier(3)

    def long_poll() -> None:
        with httpx2.Client(base_url=waiter.base_url, timeout=30) as own:
            ready.wait()
            reply = own.post(f"{path}?after={seq - 1}&wait=20", headers=headers(recipient))
            assert [m["seq"] for m in reply.json()["messages"]] == [seq]
            woken["long-poll"] = time.monotonic()

    def sse() -> None:
        listener_headers = headers(recipient, **{"Last-Event-ID": str(seq - 1)})
        with (
            httpx2.Client(base_url=waiter.base_url, timeout=30) as own,
            own.stream("GET", path + "/events", headers=listener_headers) as stream,
        ):
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            ready.wait()
            for line in lines:
                if line.startswith("data:"):
                    assert line == f'data: {{"seq": {seq}}}'
                    woken["sse"] = time.monotonic()
                    return

    threads = [threading.Thread(target=long_poll), threading.Thread(target=sse)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(0.3)  # let the long-poll subscribe on the waiting process
    with httpx2.Client(base_url=writer.base_url, timeout=30) as http:
        written_at = time.monotonic()
        reply = http.put(
            path,
            json={"payload": {"type": AEAD, "data": "d2FrZQ=="}},
            headers=headers(initiator, new_id()),
        )
        assert reply.status_code == 200
    for thread in threads:
        thread.join(timeout=20)
    assert woken.keys() == {"long-poll", "sse"}
    return {name: at - written_at for name, at in woken.items()}


def test_write_on_one_process_wakes_waiters_on_the_other(
    start_process: Any, postgres_store_url: str, tmp_path: Path
) -> None:
    config = _config(postgres_store_url, tmp_path)
    writer, waiter = start_process(config), start_process(config)
    initiator, recipient = new_id(), new_id()
    with httpx2.Client(base_url=writer.base_url, timeout=30) as http:
        path, _ = create_mailbox(http, initiator)
    with httpx2.Client(base_url=waiter.base_url, timeout=30) as http:
        assert http.post(path, headers=headers(recipient)).status_code == 200

    latencies: dict[str, list[float]] = {"long-poll": [], "sse": []}
    for seq in range(2, 7):
        for name, delay in _wake_round(writer, waiter, path, initiator, recipient, seq).items():
            latencies[name].append(delay)
    # Woken by NOTIFY, not by a heartbeat (15 s) or the long-poll timeout (20 s).  Typically a
    # few milliseconds; the bound leaves room for a heavily loaded test machine.
    for name, values in latencies.items():
        assert max(values) < 3.0, (name, values)


def test_privacy_scan_of_every_table(
    postgres_store_url: str, postgres_dsn: str, tmp_path: Path
) -> None:
    relay = LiveRelay(_config(postgres_store_url, tmp_path)).start()
    initiator, recipient = new_id(), new_id()
    attestation = "ATTEST-canary-3d9e"
    payload = "Q0FOQVJZLXBheWxvYWQtY2lwaGVydGV4dA=="
    try:
        with relay.client() as http:
            created = http.post(
                "/v1/m",
                json=create_body(payload, mailboxConfiguration={"accessRights": "RWD"}),
                headers=headers(initiator, new_id(), **{"Mailbox-Device-Attestation": attestation}),
            )
            assert created.status_code == 200
            path = "/v1/m/" + created.json()["urlLink"].rsplit("/", 1)[1]
            mailbox_id = path.rsplit("/", 1)[1]
            assert http.post(path, headers=headers(recipient)).json()["payload"]["data"] == payload
            http.put(
                path,
                json={"payload": {"type": AEAD, "data": "cmVwbHk="}},
                headers=headers(recipient, new_id()),
            )
    finally:
        relay.stop()
    schema = parse_postgres_url(postgres_store_url).schema
    assert schema is not None
    tables = run_sync(
        fetch_all(
            postgres_dsn,
            schema,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            schema,
        )
    )
    names = sorted(t[0] for t in tables)
    assert names == ["create_request", "mailbox", "message", "tigress_schema"]
    # Every row as text: bytea columns appear as hex, so binary ids would show as their hex.
    dump = "\n".join(
        str(row[0])
        for name in names
        for row in run_sync(fetch_all(postgres_dsn, schema, f'SELECT t::text FROM "{name}" t'))
    )
    for label, secret in {
        "initiator claim": initiator,
        "recipient claim": recipient,
        "mailbox id": mailbox_id,
        "attestation": attestation,
    }.items():
        for form in {secret, secret.replace("-", ""), secret.upper()}:
            assert form not in dump, f"{label} found in the database"
            assert form.lower() not in dump.lower(), f"{label} found in the database"
        if label.endswith(("claim", "id")):
            assert uuid.UUID(secret).hex not in dump, f"{label} (binary) found in the database"
    assert payload in dump  # the end-to-end ciphertext itself is stored, of course
