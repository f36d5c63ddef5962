"""Fixtures for the relay tests: a store URL per store kind, and live relays over real HTTP.

``store_url`` is parametrised by store kind; the PostgreSQL tests extend ``STORE_KINDS`` (and
``make_store_url``) so the whole suite runs against every store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from tests.relay.postgres_helpers import drop_schema, schema_url

from tigress.relay.app import create_app
from tigress.relay.config import RelayConfig
from tigress.relay.server import server_config

STORE_KINDS = ["sqlite", "postgres"]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.db'}"
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_store_url"))
    raise ValueError(kind)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_store_url(request.param, tmp_path, request)


@pytest.fixture
def postgres_store_url(postgres_dsn: str) -> Iterator[str]:
    """A store URL on a fresh, randomly named schema of the test server, dropped afterwards
    (so tests and xdist workers never see each other's tables)."""
    schema = "t_" + uuid.uuid4().hex
    yield schema_url(postgres_dsn, schema)
    drop_schema(postgres_dsn, schema)


@pytest.fixture
def relay_config(store_url: str, tmp_path: Path) -> RelayConfig:
    return RelayConfig(
        store=store_url,
        public_url="https://relay.test",
        secret_file=str(tmp_path / "relay.secret"),
        rate_limit_per_second=0,
        sse_heartbeat_seconds=1.0,
    )


class LiveRelay:
    """A relay served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, config: RelayConfig, app: Starlette | None = None) -> None:
        self.config = config
        self.app = app if app is not None else create_app(config)
        self._server = uvicorn.Server(
            server_config(
                self.app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.base_url = ""

    def start(self) -> LiveRelay:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("relay did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def client(self, **kwargs: Any) -> httpx2.Client:
        return httpx2.Client(base_url=self.base_url, timeout=30, **kwargs)


@pytest.fixture
def start_relay() -> Iterator[Callable[[RelayConfig], LiveRelay]]:
    started: list[LiveRelay] = []

    def start(config: RelayConfig) -> LiveRelay:
        relay = LiveRelay(config).start()
        started.append(relay)
        return relay

    yield start
    for relay in reversed(started):
        relay.stop()


@pytest.fixture
def relay(start_relay: Callable[[RelayConfig], LiveRelay], relay_config: RelayConfig) -> LiveRelay:
    return start_relay(relay_config)


@pytest.fixture
def client(relay: LiveRelay) -> Iterator[httpx2.Client]:
    with relay.client() as http:
        yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RelayProcess:
    """``tigress relay serve`` in a subprocess (several workers possible; killable with -9)."""

    def __init__(
        self, config: RelayConfig, *, workers: int = 1, log_path: Path | None = None
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIGRESS_RELAY_")}
        for field in dataclasses.fields(config):
            if field.name in ("host", "port", "workers"):
                continue
            env[f"TIGRESS_RELAY_{field.name.upper()}"] = str(getattr(config, field.name))
        self._log = open(log_path or os.devnull, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tigress.cli import main; main()",
                "relay",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("relay process exited during start")
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("relay process did not become ready")

    def kill(self) -> None:
        """SIGKILL the whole process group (master and workers): no clean shutdown at all."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def start_process() -> Iterator[Callable[..., RelayProcess]]:
    started: list[RelayProcess] = []

    def start(config: RelayConfig, **kwargs: Any) -> RelayProcess:
        process = RelayProcess(config, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# -- request helpers ------------------------------------------------------------------------------

AEAD = "AEAD_AES_128_GCM"


def new_id() -> str:
    return str(uuid.uuid4())


def create_body(data: str = "aGVsbG8=", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payload": {"type": AEAD, "data": data},
        "displayInformation": {
            "title": "Car key",
            "description": "A key for the blue car",
            "imageURL": "https://img.example/car.png",
        },
    }
    body.update(extra)
    return body


def headers(
    claim: str | None = None, request_id: str | None = None, **extra: str
) -> dict[str, str]:
    result: dict[str, str] = {}
    if claim is not None:
        result["Mailbox-Device-Claim"] = claim
    if request_id is not None:
        result["Mailbox-Request-ID"] = request_id
    result.update(extra)
    return result


def mailbox_path(url_link: str) -> str:
    return "/v1/m/" + url_link.rsplit("/", 1)[1]


def create_mailbox(
    http: httpx2.Client, claim: str, body: dict[str, Any] | None = None
) -> tuple[str, httpx2.Response]:
    response = http.post("/v1/m", json=body or create_body(), headers=headers(claim, new_id()))
    assert response.status_code == 200, response.text
    return mailbox_path(response.json()["urlLink"]), response
