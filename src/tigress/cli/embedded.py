"""An embedded relay for ``tigress demo``: uvicorn in a thread on an ephemeral loopback port."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from tigress.relay.app import create_app
from tigress.relay.config import RelayConfig
from tigress.relay.server import server_config

STARTUP_TIMEOUT = 15.0


# The SQLite store's wake-up bus binds Unix sockets in the database's directory; their paths
# are limited to about 100 bytes, so a deep temporary directory falls back to /tmp.
_MAX_DIRECTORY_LENGTH = 48


@contextlib.contextmanager
def embedded_relay(parent: Path) -> Iterator[str]:
    """A relay on SQLite in a new temporary directory (removed afterwards); yields its URL."""
    base = str(parent) if len(str(parent)) <= _MAX_DIRECTORY_LENGTH else "/tmp"  # noqa: S108
    with (
        tempfile.TemporaryDirectory(prefix="tigress-relay-", dir=base) as name,
        _relay_in(Path(name)) as url,
    ):
        yield url


@contextlib.contextmanager
def _relay_in(directory: Path) -> Iterator[str]:
    # The public URL must name the port, which is known only once the socket is bound: bind a
    # probe socket to learn a free port, then give uvicorn that exact socket.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = RelayConfig(
        host="127.0.0.1",
        port=port,
        store=f"sqlite:///{directory / 'relay.db'}",
        public_url=f"http://127.0.0.1:{port}",
        secret_file=str(directory / "relay.secret"),
        vapid_key_file=str(directory / "vapid.pem"),
        push=False,
        rate_limit_per_second=0,
        log_level="warning",
    )
    server = uvicorn.Server(server_config(create_app(config), log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="relay", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the embedded relay did not start")
            time.sleep(0.01)
        yield config.public_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
