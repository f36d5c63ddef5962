"""The in-run reference for the relay benchmarks: a bare Starlette echo.

One JSON POST in, a small JSON answer out — the least work a Starlette app on uvicorn can do per
request, so a relay figure divided by this one shows the cost of the relay itself, whatever the
machine and whatever else is running on it.  Served by ``relay_server.py`` with exactly the uvicorn
settings the relay gets.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    document = json.loads(await request.body())
    size = len(document) if isinstance(document, dict) else 0
    body = json.dumps({"ok": True, "members": size}, separators=(",", ":")).encode()
    return Response(body, 200, headers={"cache-control": "no-store"}, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', 200, media_type="application/json")


def create_echo_app() -> Starlette:
    """The uvicorn ``--factory`` entry point."""
    return Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
