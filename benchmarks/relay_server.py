"""Serve the relay or the echo reference on a listening socket handed over by the benchmark.

Usage (by ``relay.py``, not by hand): ``python relay_server.py {relay|echo} FD WORKERS``.

The parent binds ``127.0.0.1:0`` and passes the socket, so the port is known before the server
starts and no other process can take it.  Both apps get identical uvicorn settings — uvloop,
the relay's httptools protocol (tigress.relay.server), no access log, no server header — which is
what makes the echo a fair reference.  The relay reads its settings from
``TIGRESS_RELAY_CONFIG_JSON`` exactly as ``tigress relay serve`` hands them to its workers.
"""

from __future__ import annotations

import resource
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from tigress.relay.server import RelayHttpProtocol

TARGETS = {
    "relay": "tigress.relay.app:app_from_environment",
    "echo": "echo_app:create_echo_app",
}


def raise_open_file_limit() -> None:
    """Idle-waiter runs hold ~10k sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(kind: str, fd: int, workers: int) -> None:
    raise_open_file_limit()
    config = uvicorn.Config(
        TARGETS[kind],
        factory=True,
        workers=workers,
        loop="uvloop",
        # The relay's own protocol for both: on the echo (which has no transfer endpoints) it
        # is exactly uvicorn's httptools protocol.
        http=RelayHttpProtocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level="warning",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=2,
        backlog=4096,
    )
    sock = socket.socket(fileno=fd)  # family and type detected from the descriptor: AF_INET
    server = uvicorn.Server(config)
    if workers > 1:
        # What uvicorn.run does for several workers, with our socket instead of a fresh bind.
        Multiprocess(config, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in TARGETS:
        sys.exit(__doc__)
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
