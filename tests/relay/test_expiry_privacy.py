"""Expiry (answers like unknown; swept in batches) and the privacy canary (no claim, token or
mailbox id in the database file or the logs)."""

from __future__ import annotations

import dataclasses
import io
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.relay.conftest import AEAD, LiveRelay, create_body, headers, mailbox_path, new_id

from tigress.relay.app import create_app
from tigress.relay.config import RelayConfig
from tigress.relay.keys import RelayKeys
from tigress.relay.logs import JsonLinesFormatter
from tigress.relay.stores.base import DisplayInformation, NewMailbox, Payload
from tigress.relay.stores.sqlite import SQLiteStore
from tigress.relay.validation import format_rfc3339


def test_expired_mailbox_answers_like_an_unknown_one(
    start_relay: Any, relay_config: RelayConfig
) -> None:
    relay = start_relay(
        dataclasses.replace(relay_config, expiration_min_seconds=1, sweep_interval_seconds=3600)
    )
    initiator, recipient = new_id(), new_id()
    expiration = format_rfc3339(int(time.time()) + 2)
    with relay.client() as http:
        created = http.post(
            "/v1/m",
            json=create_body(mailboxConfiguration={"expiration": expiration}),
            headers=headers(initiator, new_id()),
        )
        assert created.status_code == 200
        path = mailbox_path(created.json()["urlLink"])
        assert http.post(path, headers=headers(recipient)).json()["expiration"] == expiration
        time.sleep(2.2)
        unknown_path = f"/v1/m/{uuid.uuid4()}"
        for method, claim in (("POST", initiator), ("POST", recipient), ("GET", None)):
            expired = http.request(method, path, headers=headers(claim))
            unknown = http.request(method, unknown_path, headers=headers(claim))
            assert expired.status_code == unknown.status_code == 404
            assert expired.content == unknown.content
            assert dict(expired.headers).keys() == dict(unknown.headers).keys()
        put = http.put(
            path,
            json={"payload": {"type": AEAD, "data": "eA=="}},
            headers=headers(initiator, new_id()),
        )
        assert put.status_code == 404


@pytest.mark.anyio
async def test_sweeper_removes_expired_mailboxes_in_batches(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "relay.db")
    keys = RelayKeys(b"k" * 32)
    async with store.opened():
        for n in range(1203):
            mailbox_id = uuid.uuid4().bytes
            expires = 1_000 if n < 1200 else 10**10
            await store.create_mailbox(
                NewMailbox(
                    key=keys.mailbox_key(mailbox_id),
                    initiator_claim=keys.claim_hash(mailbox_id, b"c" * 16),
                    access_rights="RD",
                    created_at=0,
                    expires_at=expires,
                    display=DisplayInformation("t", "d", "https://x.example/i.png"),
                    payload=Payload(AEAD, "eA=="),
                    initiator_token=None,
                    initiator_request_id=uuid.uuid4().bytes,
                    create_claim=keys.create_claim_hash(uuid.uuid4().bytes),
                    sealed_mailbox_id=mailbox_id,
                )
            )
        results = [await store.delete_expired(2_000, 500) for _ in range(4)]
        assert [r.removed for r in results] == [500, 500, 200, 0]
        assert [r.expired_live for r in results] == [500, 500, 200, 0]
        # Only the live ones remain, messages and idempotency records included.
        conn = store._read()
        assert conn.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM message").fetchone()[0] == 3
        records = "SELECT count(*) FROM mailbox WHERE c_claim IS NOT NULL"
        assert conn.execute(records).fetchone()[0] == 3


@pytest.fixture
def captured_logs() -> Any:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    loggers = [logging.getLogger(n) for n in ("tigress", "uvicorn", "uvicorn.error")]
    previous = [(lg.level, lg.propagate) for lg in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, (level, _) in zip(loggers, previous, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


class _AcceptingDispatcher:
    """A dispatcher that accepts one token type and records what it is asked to deliver (the
    real push delivery is tested in tests/relay/notify)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, int]] = []

    @property
    def supported_types(self) -> frozenset[str]:
        return frozenset({"webhook"})

    def validate(self, token_type: str, token_data: str) -> bool:
        return token_type == "webhook"

    def notify(self, token_type: str, token_data: str, *, mailbox_id: str, seq: int) -> None:
        self.sent.append((token_type, token_data, mailbox_id, seq))

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def test_privacy_canary(
    relay_config: RelayConfig, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    if not relay_config.store.startswith("sqlite:"):
        pytest.skip("scans the SQLite file; the PostgreSQL suite has its own scan")
    config = dataclasses.replace(relay_config, access_log=True)
    dispatcher = _AcceptingDispatcher()
    relay = LiveRelay(config)
    relay.app = create_app(config, dispatcher=dispatcher)
    relay._server.config.app = relay.app
    relay.start()
    initiator, recipient = new_id(), new_id()
    token_initiator = "https://hooks.example/canary-token-INITIATOR-7f3a"
    token_recipient = "https://hooks.example/canary-token-RECIPIENT-9c1b"
    payload = "Q0FOQVJZLXBheWxvYWQtY2lwaGVydGV4dA=="
    try:
        with relay.client() as http:
            created = http.post(
                "/v1/m",
                json=create_body(
                    payload,
                    notificationToken={"type": "webhook", "tokenData": token_initiator},
                    mailboxConfiguration={"accessRights": "RWD"},
                ),
                headers=headers(initiator, new_id(), **{"Mailbox-Device-Attestation": "ATTEST-x"}),
            )
            assert created.json()["isPushNotificationSupported"] is True
            path = mailbox_path(created.json()["urlLink"])
            mailbox_id = path.rsplit("/", 1)[1]
            read = http.post(
                path,
                json={"notificationToken": {"type": "webhook", "tokenData": token_recipient}},
                headers=headers(recipient),
            )
            assert read.json()["payload"]["data"] == payload
            http.put(
                path,
                json={"payload": {"type": AEAD, "data": "cmVwbHk="}},
                headers=headers(recipient, new_id()),
            )
            http.post(path, headers=headers(initiator))
    finally:
        relay.stop()
    # The dispatcher got the token back intact: it was stored sealed, not lost.
    assert dispatcher.sent == [("webhook", token_initiator, mailbox_id, 2)]

    database = Path(relay_config.store[len("sqlite://") :])
    blobs = b"".join(
        p.read_bytes()
        for p in database.parent.iterdir()
        if p.name.startswith(database.name) and not p.name.endswith(".secret") and p.is_file()
    )
    logs = captured_logs.getvalue()
    assert True
    forbidden = {
        "initiator claim": initiator,
        "recipient claim": recipient,
        "initiator token": token_initiator,
        "recipient token": token_recipient,
        "mailbox id": mailbox_id,
        "attestation": "ATTEST-x",
    }
    for name, secret in forbidden.items():
        for form in {secret, secret.replace("-", ""), secret.upper()}:
            assert form.encode() not in blobs, f"{name} found in the database"
            assert form not in logs, f"{name} found in the logs"
        if name.endswith(("claim", "id")):
            assert uuid.UUID(secret).bytes not in blobs, f"{name} (binary) found in the database"
    assert payload.encode() in blobs  # the ciphertext itself is stored, of course
    assert payload not in logs
    assert '"route":"/v1/m/{id}"' in logs  # the access log ran, with templates only
    assert mailbox_id[:8] in logs
