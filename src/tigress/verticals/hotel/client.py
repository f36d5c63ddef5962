"""Talking to the hotel provisioning entity over HTTP (httpx2), on behalf of a wallet key.

Every failure becomes a :class:`VerticalError` whose code is the entity's problem slug (for
example ``token-already-redeemed``) or ``entity-unreachable`` / ``entity-bad-response``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx2

from tigress.verticals.base import VerticalError
from tigress.verticals.common import ContentError, b64url, expect_object
from tigress.verticals.hotel.formats import (
    RoomKey,
    check_in_proof_message,
    door_message,
    holder_request_message,
    redeem_proof_message,
)
from tigress.wallet.api import KeyStore

TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


class EntityRefusal(VerticalError):
    """The entity refused (its problem slug is the code); ``attempts_left`` for PIN refusals."""

    def __init__(self, code: str, message: str, attempts_left: int | None = None) -> None:
        super().__init__(code, message)
        self.attempts_left = attempts_left


class EntityClient:
    def __init__(self, base_url: str, *, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def post(
        self, path: str, body: Mapping[str, Any], *, admin_token: str | None = None
    ) -> Mapping[str, Any]:
        headers = {"content-type": "application/json"}
        if admin_token is not None:
            headers["authorization"] = f"Bearer {admin_token}"
        return self._call("POST", path, json.dumps(body).encode("utf-8"), headers)

    def get(self, path: str) -> Mapping[str, Any]:
        return self._call("GET", path, None, {})

    def _call(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str]
    ) -> Mapping[str, Any]:
        try:
            response = httpx2.request(
                method,
                self.base_url + path,
                content=content,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx2.HTTPError as exc:
            raise VerticalError(
                "entity-unreachable",
                f"the hotel at {self.base_url} cannot be reached ({type(exc).__name__})",
            ) from None
        raw = response.content
        if len(raw) > MAX_RESPONSE_BYTES:
            raise VerticalError("entity-bad-response", "the hotel's answer is too large")
        try:
            body = expect_object(json.loads(raw.decode("utf-8")), "hotel response")
        except (UnicodeDecodeError, ValueError, RecursionError, ContentError):
            raise VerticalError(
                "entity-bad-response",
                f"the hotel answered HTTP {response.status_code} without JSON",
            ) from None
        if response.status_code >= 400:
            slug = str(body.get("type", "")).rsplit("/", 1)[-1][:64] or "entity-error"
            detail = str(body.get("detail", ""))[:300]
            code = slug if slug.replace("-", "").isalnum() and slug.islower() else "entity-error"
            attempts = body.get("attempts_left")
            raise EntityRefusal(code, detail, attempts if isinstance(attempts, int) else None)
        return body


def _room_key_from(body: Mapping[str, Any]) -> RoomKey:
    try:
        return RoomKey.parse(body.get("room_key"))
    except ContentError as exc:
        raise VerticalError(
            "entity-bad-response", f"the hotel sent an invalid room key: {exc}"
        ) from None


def check_in(client: EntityClient, keys: KeyStore, key_id: str, booking_code: str) -> RoomKey:
    algorithm, public = keys.algorithm(key_id), keys.public_key(key_id)
    proof = keys.sign(key_id, check_in_proof_message(booking_code, algorithm, public))
    body = client.post(
        "/v1/check-in",
        {
            "booking_code": booking_code,
            "device_alg": algorithm,
            "device_key": b64url(public),
            "proof": b64url(proof),
        },
    )
    return _room_key_from(body)


def holder_request(
    client: EntityClient,
    keys: KeyStore,
    key_id: str,
    room_key: RoomKey,
    *,
    path: str,
    action: str,
    params: Mapping[str, Any],
) -> Mapping[str, Any]:
    challenge = client.post("/v1/challenge", {}).get("challenge")
    if not isinstance(challenge, str) or len(challenge) > 64:
        raise VerticalError("entity-bad-response", "the hotel sent no usable challenge")
    message = holder_request_message(action, challenge, room_key.body.serial, dict(params))
    return client.post(
        path,
        {
            "room_key": room_key.to_json(),
            "challenge": challenge,
            "signature": b64url(keys.sign(key_id, message)),
            "params": dict(params),
        },
    )


def redeem(
    client: EntityClient, keys: KeyStore, key_id: str, token: str, tx_pin: str | None
) -> RoomKey:
    algorithm, public = keys.algorithm(key_id), keys.public_key(key_id)
    body: dict[str, Any] = {
        "token": token,
        "device_alg": algorithm,
        "device_key": b64url(public),
        "proof": b64url(keys.sign(key_id, redeem_proof_message(token, algorithm, public))),
    }
    if tx_pin is not None:
        body["tx_pin"] = tx_pin
    return _room_key_from(client.post("/v1/redeem", body))


def open_door(
    client: EntityClient, keys: KeyStore, key_id: str, room_key: RoomKey, room: str
) -> tuple[bool, str]:
    path = f"/v1/doors/{urllib.parse.quote(room, safe='')}"
    challenge = client.post(f"{path}/challenge", {}).get("challenge")
    if not isinstance(challenge, str) or len(challenge) > 64:
        raise VerticalError("entity-bad-response", "the door sent no usable challenge")
    signature = keys.sign(key_id, door_message(room, challenge, room_key.body.serial))
    answer = client.post(
        f"{path}/open",
        {"room_key": room_key.to_json(), "challenge": challenge, "signature": b64url(signature)},
    )
    opened, reason = answer.get("opened"), answer.get("reason")
    if not isinstance(opened, bool) or not isinstance(reason, str):
        raise VerticalError("entity-bad-response", "the door's answer is not understood")
    return opened, reason[:200]
