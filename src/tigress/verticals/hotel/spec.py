"""Scenario 2: the hotel key travels as a provisioning token redeemed at the hotel.

Sender: when the share is created, the guest's device asks the hotel for a short-lived,
single-use share token (authenticated by its room key's device key) and offers it.  Receiver: it
makes a fresh keystore key, redeems the token with proof of possession and gets its *own* room
key (new serial, possibly fewer rights, separately revocable), then answers ``done``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tigress.protocol.invitation import Vertical as InvitationHint
from tigress.protocol.messages import ProvisioningInfo
from tigress.verticals.base import Step, UnlockResult, VerticalError
from tigress.verticals.common import (
    ContentError,
    b64url,
    credential_data,
    exact_fields,
    expect_object,
    flow_state,
    flow_state_dict,
    public_key_field,
    store_credential,
    text_field,
    unexpected,
)
from tigress.verticals.hotel import client as entity
from tigress.verticals.hotel.formats import (
    ROOM_KEY_FORMAT,
    SHARE_FORMAT,
    RoomKey,
    ShareOffer,
    entity_url,
)
from tigress.wallet.api import Credential, CredentialOrigin, WalletView

VERTICAL = "hotel"
SENDER_OPTIONS = frozenset({"ttl", "rights", "tx_pin", "pin_attempts"})


@dataclass(frozen=True)
class HotelKey:
    """A hotel credential's ``data``: where the entity is, its key, and the signed room key."""

    entity: str
    issuer_key: bytes
    hotel_name: str
    room_key: RoomKey

    def to_data(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "issuer_key": b64url(self.issuer_key),
            "hotel_name": self.hotel_name,
            "room_key": self.room_key.to_json(),
        }

    @classmethod
    def parse(cls, value: Any, where: str = "hotel key") -> HotelKey:
        obj = expect_object(value, where)
        exact_fields(obj, where, {"entity", "issuer_key", "hotel_name", "room_key"})
        key = cls(
            entity=entity_url(obj["entity"], f"{where}.entity"),
            issuer_key=public_key_field(obj, "issuer_key", where, "ed25519"),
            hotel_name=text_field(obj, "hotel_name", where),
            room_key=RoomKey.parse(obj["room_key"], f"{where}.room_key"),
        )
        if not key.room_key.verify(key.issuer_key):
            raise ContentError(f"{where}: the room key is not signed by the hotel's key")
        return key


# --- guest operations ----------------------------------------------------------------------------


def check_in_hotel(wallet: WalletView, entity_base_url: str, booking_code: str) -> Credential:
    """The guest's first key: redeem a booking code for a room key bound to a new device key."""
    base = entity_url(entity_base_url, "hotel URL")
    client = entity.EntityClient(base)
    hotel = _hotel_info(client)
    key_id = wallet.keys.generate("ed25519", label=f"hotel key: {hotel[1]}")
    try:
        room_key = entity.check_in(client, wallet.keys, key_id, booking_code)
        key = _accept_room_key(
            wallet, key_id, room_key, base=base, issuer_key=hotel[0], hotel_name=hotel[1]
        )
    except VerticalError:
        wallet.keys.delete(key_id)
        raise
    return _store(wallet, key, key_id, CredentialOrigin.ISSUED)


def revoke_hotel_key(
    wallet: WalletView, credential: Credential, serial: str | None = None
) -> list[str]:
    """Revoke this credential's own key, or (by serial) a key shared from it; returns serials."""
    key = _hotel_key(credential)
    client = entity.EntityClient(key.entity)
    answer = entity.holder_request(
        client,
        wallet.keys,
        _key_id(credential),
        key.room_key,
        path="/v1/revocations",
        action="revoke",
        params={"serial": serial or key.room_key.body.serial},
    )
    revoked = answer.get("revoked")
    if not isinstance(revoked, list) or not all(isinstance(s, str) for s in revoked):
        raise VerticalError(
            "entity-bad-response", "the hotel's revocation answer is not understood"
        )
    return list(revoked)


def unlock_hotel(
    wallet: WalletView, credential: Credential, access_point: str | None = None
) -> UnlockResult:
    """Open the room's door: the door (run by the entity) challenges the credential's key.

    ``access_point`` is the entity's base URL; by default the one the credential came from.
    """
    key = _hotel_key(credential)
    base = key.entity if access_point is None else entity_url(access_point, "door URL")
    opened, reason = entity.open_door(
        entity.EntityClient(base),
        wallet.keys,
        _key_id(credential),
        key.room_key,
        key.room_key.body.room,
    )
    return UnlockResult(opened, reason)


# --- flows ---------------------------------------------------------------------------------------


class HotelSenderFlow:
    def __init__(self, offer: ShareOffer) -> None:
        self._offer = offer

    @classmethod
    def new(
        cls, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> HotelSenderFlow:
        unknown = set(options) - SENDER_OPTIONS
        if unknown:
            raise VerticalError("bad-option", f"unknown hotel share option(s): {sorted(unknown)}")
        credential = wallet.credentials.get(credential_id)
        key = _hotel_key(credential)
        if credential.revoked:
            raise VerticalError("not-shareable", "this hotel key was revoked")
        grant = entity.holder_request(
            entity.EntityClient(key.entity),
            wallet.keys,
            _key_id(credential),
            key.room_key,
            path="/v1/shares",
            action="share",
            params=dict(options),
        )
        try:
            offer = ShareOffer.parse(
                {
                    "credential_type": ROOM_KEY_FORMAT,
                    "issuer": key.entity,
                    "issuer_key": b64url(key.issuer_key),
                    "hotel_name": key.hotel_name,
                    **{
                        k: grant.get(k)
                        for k in ("room", "token", "expires_at", "rights", "tx_pin_required")
                    },
                }
            )
        except ContentError as exc:
            raise VerticalError("entity-bad-response", f"the hotel's share answer: {exc}") from None
        return cls(offer)

    def opening(self) -> ProvisioningInfo:
        return ProvisioningInfo(SHARE_FORMAT, self._offer.to_content())

    def on_message(self, info: ProvisioningInfo) -> Step:
        raise unexpected(VERTICAL, info.format)

    def to_dict(self) -> Mapping[str, Any]:
        # Holds the token: the wallet stores transfer state encrypted and deletes it at the end.
        return flow_state_dict(VERTICAL, "sender", offer=self._offer.to_content())


class HotelReceiverFlow:
    def __init__(
        self, wallet: WalletView, tx_pin: str | None = None, credential_id: str | None = None
    ) -> None:
        self._wallet = wallet
        self._tx_pin = tx_pin  # never persisted
        self._credential_id = credential_id

    def on_message(self, info: ProvisioningInfo) -> Step:
        if self._credential_id is not None or info.format != SHARE_FORMAT:
            raise unexpected(VERTICAL, info.format)
        offer = ShareOffer.parse(info.content)
        if offer.tx_pin_required and self._tx_pin is None:
            raise VerticalError(
                "tx-pin-required", "this hotel key needs the PIN the sender gave you"
            )
        credential = redeem_share(self._wallet, offer, self._tx_pin)
        self._credential_id = credential.id
        return Step(finished=True, credential_id=credential.id)

    def to_dict(self) -> Mapping[str, Any]:
        return flow_state_dict(VERTICAL, "receiver", credential_id=self._credential_id)


def redeem_share(wallet: WalletView, offer: ShareOffer, tx_pin: str | None = None) -> Credential:
    """Redeem a share offer at its entity with a fresh device key; store the new room key."""
    client = entity.EntityClient(offer.issuer)
    key_id = wallet.keys.generate("ed25519", label=f"hotel key: {offer.hotel_name}")
    try:
        room_key = entity.redeem(client, wallet.keys, key_id, offer.token, tx_pin)
        key = _accept_room_key(
            wallet,
            key_id,
            room_key,
            base=offer.issuer,
            issuer_key=offer.issuer_key,
            hotel_name=offer.hotel_name,
            room=offer.room,
        )
    except VerticalError:
        wallet.keys.delete(key_id)
        raise
    return _store(wallet, key, key_id, CredentialOrigin.ISSUED)


class HotelSpec:
    name = VERTICAL
    hint = InvitationHint.GENERAL

    def __init__(self, tx_pin: str | None = None) -> None:
        self._tx_pin = tx_pin

    def sender_flow(
        self, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> HotelSenderFlow:
        return HotelSenderFlow.new(wallet, credential_id, options)

    def restore_sender_flow(self, wallet: WalletView, state: Mapping[str, Any]) -> HotelSenderFlow:
        del wallet
        obj = flow_state(state, VERTICAL, "sender", {"offer"})
        return HotelSenderFlow(ShareOffer.parse(obj["offer"]))

    def receiver_flow(self, wallet: WalletView, *, tx_pin: str | None = None) -> HotelReceiverFlow:
        return HotelReceiverFlow(wallet, tx_pin if tx_pin is not None else self._tx_pin)

    def restore_receiver_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> HotelReceiverFlow:
        obj = flow_state(state, VERTICAL, "receiver", {"credential_id"})
        credential_id = obj["credential_id"]
        if credential_id is not None and (
            not isinstance(credential_id, str) or len(credential_id) > 128
        ):
            raise ContentError("hotel receiver flow state: credential_id must be a string or null")
        return HotelReceiverFlow(wallet, self._tx_pin, credential_id)

    def accepts(self, info: ProvisioningInfo) -> bool:
        return (
            info.format == SHARE_FORMAT and info.content.get("credential_type") == ROOM_KEY_FORMAT
        )

    def unlock(
        self, wallet: WalletView, credential: Credential, access_point: str | None
    ) -> UnlockResult:
        return unlock_hotel(wallet, credential, access_point)


# --- helpers -------------------------------------------------------------------------------------


def _hotel_info(client: entity.EntityClient) -> tuple[bytes, str]:
    info = client.get("/v1/hotel")
    try:
        return (
            public_key_field(info, "issuer_key", "hotel", "ed25519"),
            text_field(info, "name", "hotel"),
        )
    except ContentError as exc:
        raise VerticalError("entity-bad-response", f"the hotel's description: {exc}") from None


def _accept_room_key(
    wallet: WalletView,
    key_id: str,
    room_key: RoomKey,
    *,
    base: str,
    issuer_key: bytes,
    hotel_name: str,
    room: str | None = None,
) -> HotelKey:
    if room is not None and room_key.body.room != room:
        raise VerticalError("entity-bad-response", "the hotel issued a key for another room")
    if not room_key.verify(issuer_key):
        raise VerticalError("entity-bad-response", "the room key is not signed by the hotel's key")
    body = room_key.body
    if body.device_alg != wallet.keys.algorithm(
        key_id
    ) or body.device_key != wallet.keys.public_key(key_id):
        raise VerticalError("entity-bad-response", "the room key is not bound to this device's key")
    return HotelKey(base, issuer_key, hotel_name, room_key)


def _hotel_key(credential: Credential) -> HotelKey:
    data = credential_data(credential, VERTICAL, ROOM_KEY_FORMAT, "hotel key")
    return HotelKey.parse(data, "stored hotel key")


def _key_id(credential: Credential) -> str:
    if credential.key_id is None:
        raise VerticalError("no-key", "this hotel credential has no key in the wallet")
    return credential.key_id


def _store(wallet: WalletView, key: HotelKey, key_id: str, origin: CredentialOrigin) -> Credential:
    return store_credential(
        wallet,
        vertical=VERTICAL,
        credential_format=ROOM_KEY_FORMAT,
        label=f"{key.hotel_name}, room {key.room_key.body.room}",
        origin=origin,
        data=key.to_data(),
        key_id=key_id,
    )
