"""The relay's HTTP protocol (tigress.relay.server) over real sockets: transfer requests answered
inline and everything else through uvicorn's ASGI cycle, on the same connections, with
uvicorn's connection rules (keep-alive, pipelining order, HTTP/1.0, Connection: close, 400 on
garbage) and the relay's (413 before the body is read, rate limit by forwarded address, 500 on
an unexpected error)."""

from __future__ import annotations

import gc
import json
import logging
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from tests.relay.conftest import LiveRelay

from tigress.relay.app import RelayApp, app_from_environment, create_app
from tigress.relay.config import CONFIG_JSON_ENV, RelayConfig
from tigress.relay.server import RelayHttpProtocol, _find_front, server_config
from tigress.relay.stores.base import CreateResult, NewMailbox
from tigress.relay.stores.sqlite import SQLiteStore

FRAME = {"type": "tigress-noise-v1", "data": "QUJD" * 40}
DISPLAY = {
    "title": "Car key from Alex",
    "description": "Digital key for the blue sedan.",
    "imageURL": "https://relay.example/p.png",
}
TIMEOUT = 10.0


@pytest.fixture
def sqlite_config(tmp_path: Path) -> RelayConfig:
    return RelayConfig(
        store=f"sqlite:///{tmp_path / 'relay.db'}",
        public_url="https://relay.test",
        secret_file=str(tmp_path / "relay.secret"),
        rate_limit_per_second=0,
        payload_max_bytes=4096,
    )


@pytest.fixture
def inline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the protocol answered inline (not through ASGI)."""
    served: list[str] = []
    original = RelayHttpProtocol._serve

    async def counting(self: RelayHttpProtocol, exchange: Any) -> None:
        served.append(exchange.path)
        await original(self, exchange)

    monkeypatch.setattr(RelayHttpProtocol, "_serve", counting)
    return served


@pytest.fixture
def live(start_relay: Callable[[RelayConfig], LiveRelay], sqlite_config: RelayConfig) -> LiveRelay:
    return start_relay(sqlite_config)


# -- a minimal raw HTTP/1.1 client: what goes on the wire is exactly what the test writes ------


class Wire:
    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """One response (status, headers with lower-case names, body)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError("closed before a response")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed inside a body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed_by_server(self) -> bool:
        """True when the server closed the connection (EOF with nothing more to read)."""
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def request(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    version: str = "1.1",
    length: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "host: relay.test"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def create_request(claim: str, **extra: Any) -> bytes:
    body = json.dumps(
        {
            "payload": FRAME,
            "displayInformation": DISPLAY,
            "mailboxConfiguration": {"accessRights": "RWD"},
            **extra,
        }
    ).encode()
    return request(
        "POST",
        "/v1/m",
        {
            "content-type": "application/json",
            "mailbox-device-claim": claim,
            "mailbox-request-id": str(uuid.uuid4()),
        },
        body,
    )


def read_request(mailbox: str, claim: str) -> bytes:
    return request("POST", f"/v1/m/{mailbox}", {"mailbox-device-claim": claim})


def mailbox_of(body: bytes) -> str:
    return str(json.loads(body)["urlLink"].rsplit("/", 1)[1])


def mailbox_rows(config: RelayConfig) -> int:
    path = config.store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM mailbox").fetchone()[0])


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


# -- keep-alive, mixing inline and ASGI requests ---------------------------------------------------


def test_one_connection_carries_a_whole_transfer_and_other_routes(
    live: LiveRelay, inline: list[str]
) -> None:
    sender, receiver = str(uuid.uuid4()), str(uuid.uuid4())
    wire = Wire(live.base_url)
    try:
        wire.send(create_request(sender))
        status, headers, body = wire.response()
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        assert "date" in headers  # uvicorn's default headers are kept on inline answers
        assert "server" not in headers
        mailbox = mailbox_of(body)

        wire.send(request("GET", "/healthz"))  # ASGI between two inline requests
        assert wire.response()[0] == 200

        wire.send(read_request(mailbox, receiver))
        status, _, body = wire.response()
        assert status == 200
        assert json.loads(body)["payload"] == FRAME

        wire.send(request("GET", f"/v1/m/{mailbox}"))  # the preview page: ASGI
        status, headers, _ = wire.response()
        assert status == 200
        assert headers["content-type"].startswith("text/html")

        update = json.dumps({"payload": FRAME}).encode()
        wire.send(
            request(
                "PUT",
                f"/v1/m/{mailbox}",
                {
                    "content-type": "application/json",
                    "mailbox-device-claim": receiver,
                    "mailbox-request-id": str(uuid.uuid4()),
                },
                update,
            )
        )
        assert json.loads(wire.response()[2]) == {"isPushNotificationSupported": False, "seq": 2}

        wire.send(
            request(
                "DELETE",
                f"/v1/m/{mailbox}",
                {"mailbox-device-claim": sender, "mailbox-request-id": str(uuid.uuid4())},
            )
        )
        assert wire.response()[0] == 200
        wire.send(read_request(mailbox, receiver))
        status, headers, body = wire.response()
        assert status == 410
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["type"].endswith("/mailbox-deleted")
    finally:
        wire.close()
    path = f"/v1/m/{mailbox}"
    assert inline == ["/v1/m", path, path, path, path]  # not /healthz, not the preview


def test_pipelined_requests_are_answered_in_order(live: LiveRelay, inline: list[str]) -> None:
    claim = str(uuid.uuid4())
    unknown = str(uuid.uuid4())
    wire = Wire(live.base_url)
    try:
        # Inline, ASGI, inline behind inline (which then goes through ASGI), ASGI — one write.
        wire.send(
            create_request(claim)
            + request("GET", "/healthz")
            + read_request(unknown, claim)
            + create_request(str(uuid.uuid4()))
            + request("GET", "/.well-known/tigress")
        )
        first = wire.response()
        assert first[0] == 200
        assert "urlLink" in json.loads(first[2])
        assert json.loads(wire.response()[2]) == {"status": "ok"}
        assert wire.response()[0] == 404
        assert "urlLink" in json.loads(wire.response()[2])
        assert "apiVersions" in json.loads(wire.response()[2])
    finally:
        wire.close()
    assert inline == ["/v1/m"]  # the rest waited behind it, in uvicorn's pipeline


def test_http_1_0_and_connection_close_end_the_connection(live: LiveRelay) -> None:
    for raw in (
        request(
            "POST",
            f"/v1/m/{uuid.uuid4()}",
            {"mailbox-device-claim": str(uuid.uuid4())},
            version="1.0",
        ),
        request(
            "POST",
            f"/v1/m/{uuid.uuid4()}",
            {"mailbox-device-claim": str(uuid.uuid4()), "connection": "close"},
        ),
    ):
        wire = Wire(live.base_url)
        try:
            wire.send(raw)
            status, headers, _ = wire.response()
            assert status == 404
            assert headers["connection"] == "close"
            assert wire.closed_by_server()
        finally:
            wire.close()


def test_chunked_request_body_is_read_whole(live: LiveRelay) -> None:
    body = json.dumps({"payload": FRAME, "displayInformation": DISPLAY}).encode()
    head = request(
        "POST",
        "/v1/m",
        {
            "content-type": "application/json",
            "mailbox-device-claim": str(uuid.uuid4()),
            "mailbox-request-id": str(uuid.uuid4()),
            "transfer-encoding": "chunked",
        },
        length=False,
    )
    wire = Wire(live.base_url)
    try:
        wire.send(head + chunked(body[:50], body[50:120], body[120:]))
        status, _, answer = wire.response()
        assert status == 200, answer
        assert "urlLink" in json.loads(answer)
    finally:
        wire.close()


# -- oversized bodies: 413 before the body is read, nothing stored ----------------------------


def test_declared_oversized_body_is_refused_before_it_is_read(
    live: LiveRelay, sqlite_config: RelayConfig
) -> None:
    before = mailbox_rows(sqlite_config)
    head = request(
        "POST",
        "/v1/m",
        {
            "content-type": "application/json",
            "mailbox-device-claim": str(uuid.uuid4()),
            "mailbox-request-id": str(uuid.uuid4()),
            "content-length": str(sqlite_config.body_max_bytes + 1),
        },
        length=False,
    )
    wire = Wire(live.base_url)
    try:
        wire.send(head)  # the body is never sent: the answer must not wait for it
        status, headers, body = wire.response()
        assert status == 413
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert json.loads(body)["type"].endswith("/body-too-large")
        assert wire.closed_by_server()
    finally:
        wire.close()
    assert mailbox_rows(sqlite_config) == before


def test_chunked_body_growing_past_the_limit_is_refused(
    live: LiveRelay, sqlite_config: RelayConfig
) -> None:
    before = mailbox_rows(sqlite_config)
    head = request(
        "PUT",
        f"/v1/m/{uuid.uuid4()}",
        {
            "content-type": "application/json",
            "mailbox-device-claim": str(uuid.uuid4()),
            "mailbox-request-id": str(uuid.uuid4()),
            "transfer-encoding": "chunked",
        },
        length=False,
    )
    piece = b"x" * (sqlite_config.body_max_bytes // 2)
    wire = Wire(live.base_url)
    try:
        # Three chunks exceed the limit; the terminating chunk is never sent.
        wire.send(head + b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(3)))
        status, headers, body = wire.response()
        assert status == 413
        assert headers["connection"] == "close"
        limit = sqlite_config.body_max_bytes
        assert json.loads(body)["detail"] == f"the body exceeds the limit of {limit} bytes"
        assert wire.closed_by_server()
    finally:
        wire.close()
    assert mailbox_rows(sqlite_config) == before


# -- requests uvicorn keeps: 100-continue, percent-encoding, garbage -----------------------------


def test_expect_100_continue_is_served(live: LiveRelay, inline: list[str]) -> None:
    body = json.dumps({"payload": FRAME, "displayInformation": DISPLAY}).encode()
    head = request(
        "POST",
        "/v1/m",
        {
            "content-type": "application/json",
            "mailbox-device-claim": str(uuid.uuid4()),
            "mailbox-request-id": str(uuid.uuid4()),
            "expect": "100-continue",
            "content-length": str(len(body)),
        },
        length=False,
    )
    wire = Wire(live.base_url)
    try:
        wire.send(head)
        while b"\r\n\r\n" not in wire.buffer:
            assert wire._fill()
        assert wire.buffer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        wire.buffer = wire.buffer[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        wire.send(body)
        status, _, answer = wire.response()
        assert status == 200
        assert "urlLink" in json.loads(answer)
    finally:
        wire.close()
    assert inline == []  # uvicorn sends the 100 Continue


def test_percent_encoded_mailbox_path_answers_like_an_unknown_id(live: LiveRelay) -> None:
    wire = Wire(live.base_url)
    try:
        wire.send(read_request("%41%42", str(uuid.uuid4())))
        status, _, body = wire.response()
        assert status == 404
        assert json.loads(body)["type"].endswith("/mailbox-not-found")
    finally:
        wire.close()


def test_garbage_gets_400_and_the_server_keeps_serving(live: LiveRelay) -> None:
    wire = Wire(live.base_url)
    try:
        wire.send(b"POST /v1/m HTTP/1.1\r\ncontent-length: nope\r\n\r\n")
        assert wire.response()[0] == 400
    finally:
        wire.close()
    wire = Wire(live.base_url)
    try:
        wire.send(request("GET", "/healthz"))
        assert wire.response()[0] == 200
    finally:
        wire.close()


def test_client_leaving_mid_request_harms_nothing(live: LiveRelay) -> None:
    for partial in (
        create_request(str(uuid.uuid4()))[:-10],  # inside the body
        create_request(str(uuid.uuid4())),  # whole request, answer never read
    ):
        wire = Wire(live.base_url)
        wire.send(partial)
        wire.close()
    wire = Wire(live.base_url)
    try:
        wire.send(create_request(str(uuid.uuid4())))
        assert wire.response()[0] == 200
    finally:
        wire.close()


# -- rate limit by forwarded address; unexpected errors ------------------------------------------


def test_rate_limit_counts_the_address_a_trusted_proxy_forwards(
    start_relay: Callable[[RelayConfig], LiveRelay], sqlite_config: RelayConfig
) -> None:
    relay = start_relay(replace(sqlite_config, rate_limit_per_second=1, rate_limit_burst=2))
    wire = Wire(relay.base_url)
    try:

        def read_from(address: str) -> tuple[int, dict[str, str], bytes]:
            wire.send(
                request(
                    "POST",
                    f"/v1/m/{uuid.uuid4()}",
                    {"mailbox-device-claim": str(uuid.uuid4()), "x-forwarded-for": address},
                )
            )
            return wire.response()

        assert [read_from("203.0.113.7")[0] for _ in range(2)] == [404, 404]
        status, headers, body = read_from("203.0.113.7")
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        assert json.loads(body)["type"].endswith("/rate-limited")
        # Another forwarded client has its own bucket (127.0.0.1 is a trusted proxy).
        assert read_from("198.51.100.9")[0] == 404
    finally:
        wire.close()


class _BrokenStore(SQLiteStore):
    async def create_mailbox(self, new: NewMailbox) -> CreateResult:
        raise RuntimeError("simulated defect")


def test_unexpected_error_is_a_500_that_closes_the_connection(
    tmp_path: Path, sqlite_config: RelayConfig, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(sqlite_config, store=_BrokenStore(tmp_path / "broken.db"))
    relay = LiveRelay(sqlite_config, app).start()
    try:
        wire = Wire(relay.base_url)
        try:
            with caplog.at_level(logging.ERROR, logger="tigress.relay.server"):
                wire.send(create_request(str(uuid.uuid4())))
                status, headers, body = wire.response()
                assert wire.closed_by_server()
            assert status == 500
            assert body == b"Internal Server Error"
            assert headers["connection"] == "close"
        finally:
            wire.close()
        logged = [r for r in caplog.records if r.name == "tigress.relay.server"]
        assert [r.getMessage() for r in logged] == ["unexpected error answering a transfer request"]
        assert "simulated defect" in (logged[0].exc_text or "")
    finally:
        relay.stop()


def test_only_the_relay_application_is_served_inline() -> None:
    assert _find_front(Starlette()) == (None, None)


def test_a_worker_process_tunes_its_garbage_collector(
    monkeypatch: pytest.MonkeyPatch, sqlite_config: RelayConfig
) -> None:
    monkeypatch.setenv(CONFIG_JSON_ENV, sqlite_config.to_json())
    before = gc.get_threshold()
    try:
        app = app_from_environment()
        assert isinstance(app, RelayApp)
        assert gc.get_threshold() == (100_000, 50, 50)
        assert gc.get_freeze_count() > 0  # start-up objects are left out of later collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_long_poll_cut_by_shutdown_gets_an_answer(sqlite_config: RelayConfig) -> None:
    """uvicorn cancels what still runs once its graceful shutdown times out; an inline request
    then answers 500 and closes, as uvicorn's own ASGI cycle does, instead of going silent."""
    app = create_app(sqlite_config)
    server = uvicorn.Server(
        server_config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="critical",
            lifespan="on",
            timeout_graceful_shutdown=0.5,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    sender, receiver = str(uuid.uuid4()), str(uuid.uuid4())
    wire = Wire(f"http://127.0.0.1:{port}")
    try:
        wire.send(create_request(sender))
        mailbox = mailbox_of(wire.response()[2])
        wire.send(read_request(mailbox, receiver))  # binds; the sender's frame is there
        assert wire.response()[0] == 200
        # Wait for the sender's reply, which never comes.
        wire.send(
            request("POST", f"/v1/m/{mailbox}?after=1&wait=30", {"mailbox-device-claim": receiver})
        )
        time.sleep(0.3)
        started = time.monotonic()
        server.should_exit = True
        status, headers, body = wire.response()
        assert (status, body, headers["connection"]) == (500, b"Internal Server Error", "close")
        assert time.monotonic() - started < 10
        assert wire.closed_by_server()
    finally:
        wire.close()
        server.should_exit = True
        thread.join(timeout=15)
