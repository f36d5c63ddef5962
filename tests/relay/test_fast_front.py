"""The fast front answers exactly as the Starlette route it stands in front of.

Each request is sent twice to one application: once at the top (served by the fast front) and
once under a ``root_path`` (which the fast front declines, so Starlette's middleware, router and
route serve it).  Status, headers and body must be identical, for answers and for problems."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tigress.relay.app import create_app
from tigress.relay.config import RelayConfig

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
AEAD = "AEAD_AES_128_GCM"
CREATE = {
    "payload": {"type": AEAD, "data": "aGVsbG8="},
    "displayInformation": {"title": "T", "description": "D", "imageURL": "https://i.test/x"},
    "mailboxConfiguration": {"accessRights": "RWD"},
}


async def _call(
    app: Any,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    root: str = "",
    chunks: int = 1,
    out: list[Answer] | None = None,
) -> Answer:
    raw = [(b"host", b"relay.test")] + [(k.encode(), v.encode()) for k, v in headers]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root + path,
        "raw_path": (root + path).encode(),
        "root_path": root,
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    finally:
        if out is not None and sent:
            out.append(
                (sent[0]["status"], sent[0]["headers"], b"".join(m["body"] for m in sent[1:]))
            )
    return sent[0]["status"], sent[0]["headers"], b"".join(m.get("body", b"") for m in sent[1:])


async def _both(app: Any, *args: Any, **kwargs: Any) -> Answer:
    fast = await _call(app, *args, **kwargs)
    slow = await _call(app, *args, root="/base", **kwargs)
    assert fast == slow
    return fast


@pytest.mark.anyio
async def test_fast_front_answers_like_starlette(tmp_path: Path) -> None:
    config = RelayConfig(
        store=f"sqlite:///{tmp_path / 'relay.db'}",
        secret_file=str(tmp_path / "secret"),
        rate_limit_per_second=0,
        push=False,
        public_url="https://relay.test",
    )
    app = create_app(config)
    owner, reader = str(uuid.uuid4()), str(uuid.uuid4())
    body = json.dumps(CREATE).encode()
    json_type = ("content-type", "application/json")
    async with app.router.lifespan_context(app):
        # A create is not repeatable, but a retry with the same Request-ID is (201, same id).
        rid = str(uuid.uuid4())
        headers = [("mailbox-device-claim", owner), ("mailbox-request-id", rid), json_type]
        first = await _call(app, "POST", "/v1/m", headers, body)
        assert first[0] == 200
        assert (await _both(app, "POST", "/v1/m", headers, body, chunks=3))[0] == 201
        path = "/v1/m/" + json.loads(first[2])["urlLink"].rsplit("/", 1)[1]
        bound = await _call(app, "POST", path, [("mailbox-device-claim", reader)])
        assert bound[0] == 200
        cases: list[tuple[str, str, list[tuple[str, str]], bytes]] = [
            ("POST", path, [("mailbox-device-claim", reader)], b""),
            ("POST", path, [("mailbox-device-claim", owner)], b"  "),
            ("POST", path, [("mailbox-device-claim", str(uuid.uuid4()))], b""),
            ("POST", path, [("mailbox-device-claim", "nope")], b""),
            ("POST", path, [("mailbox-device-claim", owner)] * 2, b""),
            ("POST", path, [("mailbox-device-claim", owner), ("content-length", "x")], b""),
            ("POST", path, [("mailbox-device-claim", owner)], b"{}"),
            ("POST", path, [("mailbox-device-claim", owner), json_type], b"{bad"),
            ("POST", path, [("mailbox-device-claim", owner), json_type], b'{"a":1,"a":2}'),
            ("POST", path, [("mailbox-device-claim", owner), json_type], b"x" * 90_000),
            ("POST", "/v1/m/not-a-uuid", [("mailbox-device-claim", owner)], b""),
            ("PUT", path, [("mailbox-device-claim", owner)], b"{}"),
            ("PUT", path, [("mailbox-device-claim", owner), ("mailbox-request-id", rid)], b"{}"),
            ("DELETE", path, [("mailbox-device-claim", str(uuid.uuid4()))], b""),
            ("PATCH", path, [("mailbox-device-claim", owner), ("mailbox-request-id", rid)], b""),
            ("POST", "/v1/m", [("mailbox-device-claim", owner)], body),
            ("POST", "/v1/m", [("mailbox-device-claim", owner), ("mailbox-request-id", rid)], b""),
        ]
        for method, target, headers, payload in cases:
            await _both(app, method, target, headers, payload)
        # An idempotent write retry (201) and the reads after it.
        put = [("mailbox-device-claim", owner), ("mailbox-request-id", str(uuid.uuid4()))]
        message = json.dumps({"payload": {"type": AEAD, "data": "eA=="}}).encode()
        assert (await _call(app, "PUT", path, [*put, json_type], message))[0] == 200
        assert (await _both(app, "PUT", path, [*put, json_type], message))[0] == 201
        assert (await _both(app, "POST", path, [("mailbox-device-claim", reader)]))[0] == 200


@pytest.mark.anyio
async def test_fast_front_rate_limits_and_fails_like_starlette(tmp_path: Path) -> None:
    config = RelayConfig(
        store=f"sqlite:///{tmp_path / 'relay.db'}",
        secret_file=str(tmp_path / "secret"),
        rate_limit_per_second=0.001,
        rate_limit_burst=1,
        push=False,
    )
    app = create_app(config)
    claim = [("mailbox-device-claim", str(uuid.uuid4()))]
    async with app.router.lifespan_context(app):
        await _call(app, "POST", f"/v1/m/{uuid.uuid4()}", claim)  # spends the only token
        status, _, _ = await _both(app, "POST", f"/v1/m/{uuid.uuid4()}", claim)
        assert status == 429
    failing = create_app(dataclasses.replace(config, rate_limit_per_second=0))
    async with failing.router.lifespan_context(failing):
        # An unexpected error: a plain 500 is sent, then the error propagates to the server.
        handlers = failing.__dict__["_front"]._mailbox.__self__

        async def broken(call: Any) -> Any:
            raise RuntimeError("boom")

        handlers.read = broken
        answers = []
        for root in ("", "/base"):
            sent: list[Answer] = []
            with pytest.raises(RuntimeError):
                await _call(failing, "POST", f"/v1/m/{uuid.uuid4()}", claim, root=root, out=sent)
            answers.append(sent)
        assert answers[0] == answers[1]
        assert answers[0][0][0] == 500
        assert answers[0][0][2] == b"Internal Server Error"
        rendered = failing.__dict__["_front"]._recorder._metrics.render()
        assert 'route="/v1/m/{id}",method="POST",status="500"} 1' in rendered
        assert 'route="other",method="POST",status="500"} 1' in rendered  # under /base
