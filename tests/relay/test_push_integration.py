"""The relay wired to the real push dispatcher: a peer's write reaches the other side's webhook,
carrying only "mailbox changed, seq N" (delivery itself is tested in tests/relay/notify)."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from tests.relay.conftest import AEAD, create_body, headers, mailbox_path, new_id

from tigress.relay.config import RelayConfig


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Hook.received
    server.shutdown()
    server.server_close()


def test_peer_write_triggers_the_webhook(
    start_relay: Any, relay_config: RelayConfig, hook_server: tuple[str, list[Any]]
) -> None:
    base, received = hook_server
    relay = start_relay(
        dataclasses.replace(relay_config, push=True, push_allow_insecure_loopback=True)
    )
    token = json.dumps(
        {"url": base + "/initiator", "secret": "whsec_" + base64.b64encode(b"s" * 32).decode()}
    )
    initiator, recipient = new_id(), new_id()
    with relay.client() as http:
        meta = http.get("/.well-known/tigress").json()
        assert {"webhook", "webpush", "sse", "long-poll"} <= set(meta["notificationTypes"])
        bad = http.post(
            "/v1/m",
            json=create_body(notificationToken={"type": "webhook", "tokenData": "{}"}),
            headers=headers(new_id(), new_id()),
        )
        assert bad.status_code == 400
        assert bad.json()["field"] == "notificationToken.tokenData"
        unsupported = http.post(
            "/v1/m",
            json=create_body(notificationToken={"type": "com.apple.apns", "tokenData": "ab"}),
            headers=headers(new_id(), new_id()),
        )
        assert unsupported.json()["isPushNotificationSupported"] is False
        created = http.post(
            "/v1/m",
            json=create_body(
                notificationToken={"type": "webhook", "tokenData": token},
                mailboxConfiguration={"accessRights": "RWD"},
            ),
            headers=headers(initiator, new_id()),
        )
        assert created.json()["isPushNotificationSupported"] is True
        path = mailbox_path(created.json()["urlLink"])
        http.post(path, headers=headers(recipient))
        assert not received  # reads notify nobody
        reply = http.put(
            path,
            json={"payload": {"type": AEAD, "data": "U0VDUkVUcGF5bG9hZA=="}},
            headers=headers(recipient, new_id()),
        )
        assert reply.status_code == 200
        assert reply.json()["isPushNotificationSupported"] is False  # the recipient has none
        # The initiator's token, deposited at create, still counts for its later updates.
        onward = http.put(
            path,
            json={"payload": {"type": AEAD, "data": "b253YXJk"}},
            headers=headers(initiator, new_id()),
        )
        assert onward.json() == {"isPushNotificationSupported": True, "seq": 3}
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(received) == 1
    target, body = received[0]
    assert target == "/initiator"
    assert b'"seq":2' in body.replace(b" ", b"")
    assert b"U0VDUkVUcGF5bG9hZA" not in body
