"""Hotel formats: the room key (a credential signed by the hotel) and the share opening.

Room key ``tigress.hotel.room-key.v1``: ``{"body": {...}, "sig": b64url}``, the signature being the
hotel's Ed25519 signature over ``"tigress/v1 hotel-room-key" NUL canonical-json(body)``.  Body::

    hotel        the hotel's identifier
    serial       base64url of 16 random bytes (one per key: each device has its own)
    room         room number or name
    device_alg   "ed25519" | "p256";  device_key: base64url raw public key of the holder's device
    rights       sorted subset of {"enter", "share"}
    not_before, not_after   Unix seconds
    parent       serial of the key whose share produced this one, or null for the guest's key

The share opening uses the draft's generic format ``digitalwallet.generic.authorizationToken``
with ``credential_type`` naming what the token redeems for::

    {"credential_type": "tigress.hotel.room-key.v1", "issuer": "<entity base URL>",
     "issuer_key": b64url, "hotel_name", "room", "token": b64url(32 bytes), "expires_at": int,
     "rights": [...], "tx_pin_required": bool}
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tigress.protocol.invitation import is_loopback_host
from tigress.protocol.messages import FORMAT_AUTHORIZATION_TOKEN
from tigress.verticals.common import (
    MAX_TIME,
    ContentError,
    algorithm_field,
    b64url,
    bool_field,
    exact_fields,
    expect_object,
    id_field,
    int_field,
    parse_signed_object,
    public_key_field,
    signing_input,
    string_set_field,
    text_field,
    unb64url,
    validity_fields,
    verify_signature,
)
from tigress.wallet.api import KeyAlgorithm

ROOM_KEY_FORMAT = "tigress.hotel.room-key.v1"
SHARE_FORMAT = FORMAT_AUTHORIZATION_TOKEN
RIGHTS = frozenset({"enter", "share"})
SERIAL_SIZE = 16
TOKEN_SIZE = 32
MAX_URL_LENGTH = 512


@dataclass(frozen=True)
class RoomKeyBody:
    hotel: str
    serial: str
    room: str
    device_alg: KeyAlgorithm
    device_key: bytes
    rights: tuple[str, ...]
    not_before: int
    not_after: int
    parent: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "hotel": self.hotel,
            "serial": self.serial,
            "room": self.room,
            "device_alg": self.device_alg,
            "device_key": b64url(self.device_key),
            "rights": list(self.rights),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "parent": self.parent,
        }

    def signed_bytes(self) -> bytes:
        return signing_input("hotel-room-key", self.to_json())

    @classmethod
    def parse(cls, value: Any, where: str) -> RoomKeyBody:
        obj = expect_object(value, where)
        exact_fields(
            obj,
            where,
            {
                "hotel",
                "serial",
                "room",
                "device_alg",
                "device_key",
                "rights",
                "not_before",
                "not_after",
                "parent",
            },
        )
        algorithm = algorithm_field(obj, "device_alg", where)
        not_before, not_after = validity_fields(obj, where)
        parent = obj["parent"]
        if parent is not None:
            unb64url(parent, f"{where}.parent", size=SERIAL_SIZE)
        unb64url(obj["serial"], f"{where}.serial", size=SERIAL_SIZE)
        return cls(
            hotel=id_field(obj, "hotel", where),
            serial=obj["serial"],
            room=text_field(obj, "room", where, max_length=32),
            device_alg=algorithm,
            device_key=public_key_field(obj, "device_key", where, algorithm),
            rights=string_set_field(obj, "rights", where, RIGHTS),
            not_before=not_before,
            not_after=not_after,
            parent=parent,
        )


@dataclass(frozen=True)
class RoomKey:
    body: RoomKeyBody
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body.to_json(), "sig": b64url(self.signature)}

    def verify(self, issuer_key: bytes) -> bool:
        return verify_signature("ed25519", issuer_key, self.signature, self.body.signed_bytes())

    @classmethod
    def parse(cls, value: Any, where: str = "room key") -> RoomKey:
        body, signature = parse_signed_object(value, where, RoomKeyBody.parse)
        return cls(body=body, signature=signature)


@dataclass(frozen=True)
class ShareOffer:
    issuer: str
    issuer_key: bytes
    hotel_name: str
    room: str
    token: str
    expires_at: int
    rights: tuple[str, ...]
    tx_pin_required: bool

    def to_content(self) -> dict[str, Any]:
        return {
            "credential_type": ROOM_KEY_FORMAT,
            "issuer": self.issuer,
            "issuer_key": b64url(self.issuer_key),
            "hotel_name": self.hotel_name,
            "room": self.room,
            "token": self.token,
            "expires_at": self.expires_at,
            "rights": list(self.rights),
            "tx_pin_required": self.tx_pin_required,
        }

    @classmethod
    def parse(cls, value: Any, where: str = "hotel share") -> ShareOffer:
        obj = expect_object(value, where)
        exact_fields(
            obj,
            where,
            {
                "credential_type",
                "issuer",
                "issuer_key",
                "hotel_name",
                "room",
                "token",
                "expires_at",
                "rights",
                "tx_pin_required",
            },
        )
        if obj["credential_type"] != ROOM_KEY_FORMAT:
            raise ContentError(f"{where}.credential_type must be {ROOM_KEY_FORMAT!r}")
        unb64url(obj["token"], f"{where}.token", size=TOKEN_SIZE)
        return cls(
            issuer=entity_url(obj.get("issuer"), f"{where}.issuer"),
            issuer_key=public_key_field(obj, "issuer_key", where, "ed25519"),
            hotel_name=text_field(obj, "hotel_name", where),
            room=text_field(obj, "room", where, max_length=32),
            token=obj["token"],
            expires_at=int_field(obj, "expires_at", where, 0, MAX_TIME),
            rights=string_set_field(obj, "rights", where, RIGHTS),
            tx_pin_required=bool_field(obj, "tx_pin_required", where),
        )


def entity_url(value: Any, where: str) -> str:
    """A provisioning entity's base URL: https, or plain http only to a loopback address."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_URL_LENGTH:
        raise ContentError(f"{where} must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ContentError(f"{where} is not a valid URL") from None
    if parts.query or parts.fragment or parts.username or parts.password or not host:
        raise ContentError(f"{where} must be a plain base URL (no credentials, query or fragment)")
    if any(ord(char) <= 0x20 or ord(char) >= 0x7F for char in value):
        raise ContentError(f"{where} must be printable ASCII")
    if parts.scheme == "https":
        return value.rstrip("/")
    if parts.scheme == "http" and is_loopback_host(host):
        return value.rstrip("/")
    raise ContentError(f"{where} must use https (plain http is allowed only on loopback)")


def token_hash(token: str) -> bytes:
    """How the entity stores and finds a token: it never keeps the token itself."""
    return hashlib.sha256(b"tigress/v1 hotel-token\x00" + token.encode("ascii")).digest()


def holder_request_message(action: str, challenge: str, serial: str, params: Any) -> bytes:
    """What a room key's device signs to ask the entity for something (share, revoke)."""
    return signing_input(
        "hotel-holder",
        {"action": action, "challenge": challenge, "params": params, "serial": serial},
    )


def redeem_proof_message(token: str, device_alg: str, device_key: bytes) -> bytes:
    return signing_input(
        "hotel-redeem",
        {
            "device_alg": device_alg,
            "device_key": b64url(device_key),
            "token_hash": b64url(token_hash(token)),
        },
    )


def check_in_proof_message(booking_code: str, device_alg: str, device_key: bytes) -> bytes:
    return signing_input(
        "hotel-check-in",
        {
            "booking": b64url(hashlib.sha256(booking_code.encode("utf-8")).digest()),
            "device_alg": device_alg,
            "device_key": b64url(device_key),
        },
    )


def door_message(room: str, nonce: str, serial: str) -> bytes:
    return signing_input("hotel-door", {"nonce": nonce, "room": room, "serial": serial})
