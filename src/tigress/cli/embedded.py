"""An embedded relay for ``tigress demo``: uvicorn in a thread on an ephemeral loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from tigress.relay.app import create_app
from tigress.relay.config import RelayConfig

STARTUP_TIMEOUT = 15.0


@contextlib.contextmanager
def embedded_relay(directory: Path) -> Iterator[str]:
    """A relay on SQLite in ``directory``; yields its base URL (= its public URL)."""
    directory.mkdir(parents=True, exist_ok=True)
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
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="on")
    )
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
