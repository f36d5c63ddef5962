"""The hotel provisioning entity as an HTTP service (Starlette), and ways to run it.

Endpoints (JSON in and out; errors as ``application/problem+json``; bodies above
``max_body_bytes`` refused with 413 before parsing):

=======  ===========================  =========================================================
GET      /v1/hotel                    hotel id, name and issuer public key
POST     /v1/admin/bookings           create a booking (``Authorization: Bearer <admin token>``)
POST     /v1/check-in                 booking code + device key + proof -> the guest's room key
POST     /v1/challenge                a fresh single-use challenge for holder requests
POST     /v1/shares                   holder-signed: a short-lived single-use share token
POST     /v1/redeem                   token + fresh device key + proof (+ PIN) -> own room key
POST     /v1/revocations              holder-signed: revoke a key (and keys derived from it)
POST     /v1/doors/{room}/challenge   the door's challenge
POST     /v1/doors/{room}/open        room key + signed challenge -> {"opened", "reason"}
=======  ===========================  =========================================================
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tigress.verticals.common import (
    MAX_SIGNATURE_SIZE,
    Clock,
    ContentError,
    algorithm_field,
    b64url,
    expect_object,
    public_key_field,
    system_clock,
    text_field,
    unb64url,
)
from tigress.verticals.hotel.formats import TOKEN_SIZE, RoomKey
from tigress.verticals.hotel.service import HotelRefusal, HotelService

PROBLEM_BASE = "https://tigress.dev/problems/hotel/"
DEFAULT_MAX_BODY = 16 * 1024


@dataclass
class HotelConfig:
    db_path: Path
    name: str = "Hotel"
    # Demo-grade authentication for the front desk: one shared bearer token.  None disables the
    # admin endpoint (bookings can still be made locally with HotelService.create_booking).
    admin_token: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY
    clock: Clock = system_clock


def create_hotel_app(config: HotelConfig) -> Starlette:
    service = HotelService(config.db_path, name=config.name, clock=config.clock)
    handlers = _Handlers(service, config)
    routes = [
        Route("/v1/hotel", handlers.info, methods=["GET"]),
        Route("/v1/admin/bookings", handlers.wrap(handlers.create_booking), methods=["POST"]),
        Route("/v1/check-in", handlers.wrap(handlers.check_in), methods=["POST"]),
        Route("/v1/challenge", handlers.wrap(handlers.challenge), methods=["POST"]),
        Route("/v1/shares", handlers.wrap(handlers.share), methods=["POST"]),
        Route("/v1/redeem", handlers.wrap(handlers.redeem), methods=["POST"]),
        Route("/v1/revocations", handlers.wrap(handlers.revoke), methods=["POST"]),
        Route(
            "/v1/doors/{room}/challenge", handlers.wrap(handlers.door_challenge), methods=["POST"]
        ),
        Route("/v1/doors/{room}/open", handlers.wrap(handlers.door_open), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.hotel = service
    return app


def problem(refusal: HotelRefusal) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + refusal.slug,
        "title": refusal.title,
        "status": refusal.status,
        "detail": refusal.detail,
        **refusal.extra,
    }
    return JSONResponse(body, status_code=refusal.status, media_type="application/problem+json")


Handler = Callable[[Request, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


class _Handlers:
    def __init__(self, service: HotelService, config: HotelConfig) -> None:
        self.service = service
        self.config = config

    def wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                body = await self._read_json(request)
                return JSONResponse(dict(await handler(request, body)))
            except HotelRefusal as refusal:
                return problem(refusal)
            except ContentError as exc:
                return problem(HotelRefusal("malformed-request", str(exc)))

        return endpoint

    async def _read_json(self, request: Request) -> Mapping[str, Any]:
        limit = self.config.max_body_bytes
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise HotelRefusal("unsupported-media-type", "send a JSON body (application/json)")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise HotelRefusal("body-too-large", f"bodies are limited to {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # a body without (or lying about) Content-Length
                raise HotelRefusal("body-too-large", f"bodies are limited to {limit} bytes")
            chunks.append(chunk)
        try:
            value = json.loads(
                b"".join(chunks).decode("utf-8"),
                parse_constant=_reject,
                parse_float=_reject,
                object_pairs_hook=_no_duplicates,
            )
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
            detail = str(exc) if isinstance(exc, ValueError) and "duplicate" in str(exc) else ""
            raise HotelRefusal(
                "malformed-request", f"the body is not valid JSON {detail}".strip()
            ) from None
        return expect_object(value, "request body")

    async def info(self, request: Request) -> Response:
        del request
        return JSONResponse(
            {
                "hotel": self.service.hotel_id,
                "name": self.service.name,
                "issuer_alg": "ed25519",
                "issuer_key": b64url(self.service.issuer_public_key),
            }
        )

    async def create_booking(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        expected = self.config.admin_token
        given = request.headers.get("authorization", "")
        if expected is None or not hmac.compare_digest(
            given.encode("utf-8", "replace"), f"Bearer {expected}".encode()
        ):
            raise HotelRefusal("unauthorized", "bookings need the front desk's admin token")
        _fields(body, {"room", "guest"}, {"nights"})
        nights = body.get("nights", 1)
        if isinstance(nights, bool) or not isinstance(nights, int):
            raise HotelRefusal("malformed-request", "nights must be an integer")
        code = await run_in_threadpool(
            self.service.create_booking,
            text_field(body, "room", "booking", max_length=32),
            text_field(body, "guest", "booking"),
            nights=nights,
        )
        return {"booking_code": code}

    async def check_in(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        del request
        _fields(body, {"booking_code", "device_alg", "device_key", "proof"})
        algorithm = algorithm_field(body, "device_alg", "check-in")
        key = await run_in_threadpool(
            self.service.check_in,
            text_field(body, "booking_code", "check-in", max_length=64),
            algorithm,
            public_key_field(body, "device_key", "check-in", algorithm),
            unb64url(body["proof"], "check-in.proof", max_size=MAX_SIGNATURE_SIZE),
        )
        return {"room_key": key.to_json()}

    async def challenge(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        del request
        _fields(body, set())
        return {"challenge": await run_in_threadpool(self.service.new_challenge, "holder")}

    async def share(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        del request
        room_key, challenge, signature, params = _holder_request(body)
        grant = await run_in_threadpool(
            self.service.request_share, room_key, challenge, signature, params
        )
        return {
            "token": grant.token,
            "expires_at": grant.expires_at,
            "room": grant.room,
            "rights": list(grant.rights),
            "tx_pin_required": grant.tx_pin_required,
        }

    async def redeem(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        del request
        _fields(body, {"token", "device_alg", "device_key", "proof"}, {"tx_pin"})
        unb64url(body["token"], "redeem.token", size=TOKEN_SIZE)
        algorithm = algorithm_field(body, "device_alg", "redeem")
        pin = body.get("tx_pin")
        if pin is not None and (not isinstance(pin, str) or len(pin) > 64):
            raise HotelRefusal("malformed-request", "tx_pin must be a string of at most 64")
        key = await run_in_threadpool(
            self.service.redeem,
            body["token"],
            algorithm,
            public_key_field(body, "device_key", "redeem", algorithm),
            unb64url(body["proof"], "redeem.proof", max_size=MAX_SIGNATURE_SIZE),
            pin,
        )
        return {"room_key": key.to_json()}

    async def revoke(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        del request
        room_key, challenge, signature, params = _holder_request(body)
        revoked = await run_in_threadpool(
            self.service.revoke, room_key, challenge, signature, params
        )
        return {"revoked": revoked}

    async def door_challenge(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        _fields(body, set())
        room = _room(request)
        return {"challenge": await run_in_threadpool(self.service.new_challenge, f"door:{room}")}

    async def door_open(self, request: Request, body: Mapping[str, Any]) -> Mapping[str, Any]:
        _fields(body, {"room_key", "challenge", "signature"})
        room = _room(request)
        opened, reason = await run_in_threadpool(
            self.service.open_door,
            room,
            RoomKey.parse(body["room_key"]),
            _challenge(body),
            unb64url(body["signature"], "door.signature", max_size=MAX_SIGNATURE_SIZE),
        )
        return {"opened": opened, "reason": reason}


def _fields(body: Mapping[str, Any], required: set[str], optional: set[str] | None = None) -> None:
    missing = required - set(body)
    extra = set(body) - required - (optional or set())
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(sorted(missing))}")
        if extra:
            parts.append(f"unknown {', '.join(sorted(str(k)[:40] for k in extra)[:5])}")
        raise HotelRefusal("malformed-request", "; ".join(parts))


def _holder_request(body: Mapping[str, Any]) -> tuple[RoomKey, str, bytes, Mapping[str, Any]]:
    _fields(body, {"room_key", "challenge", "signature", "params"})
    return (
        RoomKey.parse(body["room_key"]),
        _challenge(body),
        unb64url(body["signature"], "signature", max_size=MAX_SIGNATURE_SIZE),
        expect_object(body["params"], "params"),
    )


def _challenge(body: Mapping[str, Any]) -> str:
    unb64url(body.get("challenge"), "challenge", size=32)
    return str(body["challenge"])


def _room(request: Request) -> str:
    return text_field({"room": request.path_params["room"]}, "room", "door", max_length=32)


def _reject(text: str) -> Any:
    raise ValueError(f"{text} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


# --- running it ----------------------------------------------------------------------------------


def run_hotel_server(
    host: str, port: int, db_path: Path, *, name: str = "Hotel", admin_token: str | None = None
) -> None:
    """Serve until interrupted (``tigress pe hotel serve``)."""
    app = create_hotel_app(HotelConfig(Path(db_path), name=name, admin_token=admin_token))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def hotel_server_in_thread(
    config: HotelConfig, *, host: str = "127.0.0.1", startup_timeout: float = 10.0
) -> Iterator[str]:
    """Run the entity on an ephemeral loopback port in a thread; yields its base URL."""
    app = create_hotel_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the hotel entity did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def new_admin_token() -> str:
    return secrets.token_urlsafe(24)
