from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.verticals.json_strategies import json_values
from tests.verticals.memory_wallet import MemoryWallet
from tests.verticals.transfer import run_transfer

from tigress.protocol.messages import FORMAT_AUTHORIZATION_TOKEN, ProvisioningInfo
from tigress.verticals.base import VerticalError
from tigress.verticals.common import ContentError, b64url
from tigress.verticals.hotel import (
    HotelConfig,
    HotelKey,
    HotelService,
    HotelSpec,
    RoomKey,
    ShareOffer,
    check_in_hotel,
    hotel_server_in_thread,
    redeem_share,
    revoke_hotel_key,
    unlock_hotel,
)
from tigress.verticals.hotel.client import EntityClient, EntityRefusal
from tigress.verticals.hotel.formats import door_message, entity_url, redeem_proof_message
from tigress.verticals.registry import VERTICALS, spec_for_opening, unlock
from tigress.wallet.api import Credential, CredentialOrigin

ADMIN = "front-desk-secret"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self.now


class Hotel:
    def __init__(self, url: str, clock: Clock, db: Path) -> None:
        self.url, self.clock, self.db = url, clock, db
        self.client = EntityClient(url)

    def booking(self, room: str = "101") -> str:
        body = self.client.post(
            "/v1/admin/bookings", {"room": room, "guest": "Bob", "nights": 2}, admin_token=ADMIN
        )
        return str(body["booking_code"])

    def guest(self, room: str = "101") -> tuple[MemoryWallet, Credential]:
        wallet = MemoryWallet()
        return wallet, check_in_hotel(wallet, self.url, self.booking(room))


@pytest.fixture(scope="module")
def hotel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotel]:
    db = tmp_path_factory.mktemp("hotel") / "hotel.db"
    clock = Clock()
    config = HotelConfig(db, name="Hotel Tigress", admin_token=ADMIN, clock=clock)
    with hotel_server_in_thread(config) as url:
        yield Hotel(url, clock, db)


def share(
    hotel: Hotel, options: dict[str, Any] | None = None
) -> tuple[MemoryWallet, Credential, ProvisioningInfo]:
    wallet, credential = hotel.guest()
    opening = HotelSpec().sender_flow(wallet, credential.id, options or {}).opening()
    return wallet, credential, opening


def test_check_in_and_open(hotel: Hotel) -> None:
    wallet, credential = hotel.guest()
    assert credential.origin is CredentialOrigin.ISSUED and credential.key_id is not None
    key = HotelKey.parse(credential.data)
    assert key.room_key.body.rights == ("enter", "share") and key.room_key.body.parent is None
    assert unlock_hotel(wallet, credential).opened
    assert unlock(wallet, credential, None).opened


def test_share_end_to_end_gives_receiver_its_own_key(hotel: Hotel) -> None:
    bob, bob_key = hotel.guest()
    alice = MemoryWallet()
    outcome = run_transfer(HotelSpec(), bob, alice, bob_key.id)
    assert outcome.receiver_done and outcome.sender_done, outcome
    assert outcome.messages == [FORMAT_AUTHORIZATION_TOKEN]
    assert outcome.credential_id is not None
    alice_key = alice.credentials.get(outcome.credential_id)
    assert alice_key.origin is CredentialOrigin.ISSUED
    bob_body = HotelKey.parse(bob_key.data).room_key.body
    alice_body = HotelKey.parse(alice_key.data).room_key.body
    assert alice_body.serial != bob_body.serial and alice_body.parent == bob_body.serial
    assert alice_body.rights == ("enter",)  # reduced by default: Alice cannot re-share
    assert alice_body.room == bob_body.room
    result = unlock_hotel(alice, alice_key)
    assert result.opened, result.reason
    assert unlock_hotel(bob, bob_key).opened
    with pytest.raises(VerticalError) as info:
        HotelSpec().sender_flow(alice, alice_key.id, {})
    assert info.value.code == "forbidden"


def test_share_with_full_rights_can_be_reshared(hotel: Hotel) -> None:
    bob, bob_key = hotel.guest()
    alice, carol = MemoryWallet(), MemoryWallet()
    outcome = run_transfer(HotelSpec(), bob, alice, bob_key.id, {"rights": ["enter", "share"]})
    assert outcome.credential_id is not None
    second = run_transfer(HotelSpec(), alice, carol, outcome.credential_id)
    assert second.credential_id is not None
    assert unlock_hotel(carol, carol.credentials.get(second.credential_id)).opened


def test_second_redemption_refused(hotel: Hotel) -> None:
    _, _, opening = share(hotel)
    offer = ShareOffer.parse(opening.content)
    first = redeem_share(MemoryWallet(), offer)
    assert first.origin is CredentialOrigin.ISSUED
    late = MemoryWallet()
    with pytest.raises(VerticalError) as info:
        redeem_share(late, offer)
    assert info.value.code == "token-already-redeemed"
    assert len(late.keys) == 0 and late.credentials.list() == []


def test_raw_second_redemption_is_409_problem(hotel: Hotel) -> None:
    _, _, opening = share(hotel)
    offer = ShareOffer.parse(opening.content)
    redeem_share(MemoryWallet(), offer)
    wallet = MemoryWallet()
    key_id = wallet.keys.generate("ed25519", label="x")

    public = wallet.keys.public_key(key_id)
    response = httpx2.post(
        hotel.url + "/v1/redeem",
        json={
            "token": offer.token,
            "device_alg": "ed25519",
            "device_key": b64url(public),
            "proof": b64url(
                wallet.keys.sign(key_id, redeem_proof_message(offer.token, "ed25519", public))
            ),
        },
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/token-already-redeemed")
    assert response.json()["detail"] == "token already redeemed"


def test_concurrent_redemptions_have_one_winner(hotel: Hotel) -> None:
    _, _, opening = share(hotel)
    offer = ShareOffer.parse(opening.content)
    results: list[str] = []

    def attempt() -> None:
        try:
            redeem_share(MemoryWallet(), offer)
            results.append("ok")
        except VerticalError as error:
            results.append(error.code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["ok"] + ["token-already-redeemed"] * 5


def test_tx_pin_exhaustion_kills_the_token(hotel: Hotel) -> None:
    _, _, opening = share(hotel, {"tx_pin": "4711", "pin_attempts": 3})
    offer = ShareOffer.parse(opening.content)
    assert offer.tx_pin_required
    with pytest.raises(VerticalError) as info:
        HotelSpec().receiver_flow(MemoryWallet()).on_message(opening)
    assert info.value.code == "tx-pin-required"
    left = []
    for guess in ("0000", "1111", "2222"):
        with pytest.raises(EntityRefusal) as refusal:
            redeem_share(MemoryWallet(), offer, guess)
        assert refusal.value.code == "tx-pin-wrong"
        left.append(refusal.value.attempts_left)
    assert left == [2, 1, 0]
    with pytest.raises(VerticalError) as info:
        redeem_share(MemoryWallet(), offer, "4711")  # right PIN, too late
    assert info.value.code == "token-dead"


def test_tx_pin_right_on_second_try(hotel: Hotel) -> None:
    bob, bob_key = hotel.guest()
    alice = MemoryWallet()
    opening = HotelSpec().sender_flow(bob, bob_key.id, {"tx_pin": "2468"}).opening()
    with pytest.raises(EntityRefusal):
        HotelSpec(tx_pin="1357").receiver_flow(alice).on_message(opening)
    step = HotelSpec().receiver_flow(alice, tx_pin="2468").on_message(opening)
    assert step.finished and step.credential_id is not None
    assert unlock_hotel(alice, alice.credentials.get(step.credential_id)).opened


def test_expired_token(hotel: Hotel) -> None:
    _, _, opening = share(hotel, {"ttl": 60})
    hotel.clock.now += 61
    try:
        with pytest.raises(VerticalError) as info:
            redeem_share(MemoryWallet(), ShareOffer.parse(opening.content))
        assert info.value.code == "token-expired"
    finally:
        hotel.clock.now -= 61


def test_revocation_by_holder_and_by_original_guest(hotel: Hotel) -> None:
    bob, bob_key = hotel.guest()
    alice, carol = MemoryWallet(), MemoryWallet()
    alice_id = run_transfer(HotelSpec(), bob, alice, bob_key.id).credential_id
    carol_id = run_transfer(HotelSpec(), bob, carol, bob_key.id).credential_id
    assert alice_id is not None and carol_id is not None
    alice_key, carol_key = alice.credentials.get(alice_id), carol.credentials.get(carol_id)
    alice_serial = HotelKey.parse(alice_key.data).room_key.body.serial
    # Bob revokes Alice's key: Alice refused, Carol and Bob unaffected.
    assert revoke_hotel_key(bob, bob_key, alice_serial) == [alice_serial]
    refused = unlock_hotel(alice, alice_key)
    assert not refused.opened and "revoked" in refused.reason
    assert unlock_hotel(carol, carol_key).opened and unlock_hotel(bob, bob_key).opened
    # Carol may revoke her own key but not Bob's.
    with pytest.raises(VerticalError) as info:
        revoke_hotel_key(carol, carol_key, HotelKey.parse(bob_key.data).room_key.body.serial)
    assert info.value.code == "forbidden"
    revoke_hotel_key(carol, carol_key)
    assert not unlock_hotel(carol, carol_key).opened
    assert unlock_hotel(bob, bob_key).opened


def test_revoked_sender_cannot_share_and_pending_token_dies(hotel: Hotel) -> None:
    bob, bob_key = hotel.guest()
    opening = HotelSpec().sender_flow(bob, bob_key.id, {}).opening()
    revoke_hotel_key(bob, bob_key)
    with pytest.raises(VerticalError) as info:
        redeem_share(MemoryWallet(), ShareOffer.parse(opening.content))
    assert info.value.code == "forbidden"
    with pytest.raises(VerticalError) as info:
        HotelSpec().sender_flow(bob, bob_key.id, {})
    assert info.value.code == "unauthorized"


def test_door_refuses_other_room_replay_and_wrong_key(hotel: Hotel) -> None:
    wallet, credential = hotel.guest("202")
    key = HotelKey.parse(credential.data)
    client = EntityClient(hotel.url)
    assert credential.key_id is not None

    def attempt(room: str, challenge: str, signer: MemoryWallet, key_id: str) -> dict[str, Any]:
        signature = signer.keys.sign(
            key_id, door_message(room, challenge, key.room_key.body.serial)
        )
        return dict(
            client.post(
                f"/v1/doors/{room}/open",
                {
                    "room_key": key.room_key.to_json(),
                    "challenge": challenge,
                    "signature": b64url(signature),
                },
            )
        )

    challenge = str(client.post("/v1/doors/202/challenge", {})["challenge"])
    assert attempt("202", challenge, wallet, credential.key_id)["opened"] is True
    replay = attempt("202", challenge, wallet, credential.key_id)
    assert replay["opened"] is False and "already used" in replay["reason"]
    other = str(client.post("/v1/doors/303/challenge", {})["challenge"])
    assert "not 303" in attempt("303", other, wallet, credential.key_id)["reason"]
    thief = MemoryWallet()
    thief_key = thief.keys.generate("ed25519", label="thief")
    fresh = str(client.post("/v1/doors/202/challenge", {})["challenge"])
    assert "signature" in attempt("202", fresh, thief, thief_key)["reason"]
    cross = str(client.post("/v1/doors/303/challenge", {})["challenge"])
    assert attempt("202", cross, wallet, credential.key_id)["opened"] is False


def test_forged_room_key_refused(hotel: Hotel) -> None:
    wallet, credential = hotel.guest()
    key = HotelKey.parse(credential.data)

    forged = replace(key.room_key, body=replace(key.room_key.body, room="999"))
    with pytest.raises(ContentError, match="not signed"):
        HotelKey.parse({**dict(credential.data), "room_key": forged.to_json()})
    raw = dict(credential.data)
    raw["room_key"] = forged.to_json()
    bad = Credential(**{**credential.__dict__, "data": raw})
    with pytest.raises(ContentError):
        unlock_hotel(wallet, bad)


def test_booking_single_use_and_admin_auth(hotel: Hotel) -> None:
    code = hotel.booking()
    check_in_hotel(MemoryWallet(), hotel.url, code)
    wallet = MemoryWallet()
    with pytest.raises(VerticalError) as info:
        check_in_hotel(wallet, hotel.url, code)
    assert info.value.code == "booking-used" and len(wallet.keys) == 0
    with pytest.raises(VerticalError) as info:
        check_in_hotel(wallet, hotel.url, "no-such-booking")
    assert info.value.code == "booking-unknown"
    with pytest.raises(VerticalError) as info:
        hotel.client.post("/v1/admin/bookings", {"room": "1", "guest": "x"}, admin_token="guess")
    assert info.value.code == "unauthorized"


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "slug"),
    [
        ("/v1/redeem", b"{", {}, 400, "malformed-request"),
        ("/v1/redeem", b"[]", {}, 400, "malformed-request"),
        ("/v1/redeem", b'{"a":1,"a":2}', {}, 400, "malformed-request"),
        ("/v1/redeem", b'{"token":1.5}', {}, 400, "malformed-request"),
        ("/v1/redeem", b'{"token":NaN}', {}, 400, "malformed-request"),
        ("/v1/redeem", b"[" * 5000 + b"]" * 5000, {}, 400, "malformed-request"),
        ("/v1/redeem", b'{"token":"x"}', {}, 400, "malformed-request"),
        ("/v1/redeem", b"\xff\xfe", {}, 400, "malformed-request"),
        ("/v1/redeem", b"{}", {"content-type": "text/plain"}, 415, "unsupported-media-type"),
        ("/v1/redeem", b"{" + b" " * 20000 + b"}", {}, 413, "body-too-large"),
        (
            "/v1/shares",
            b'{"room_key":{},"challenge":"","signature":"","params":{}}',
            {},
            400,
            "malformed-request",
        ),
        ("/v1/challenge", b'{"x":1}', {}, 400, "malformed-request"),
        (
            "/v1/check-in",
            b'{"booking_code":"x","device_alg":"rsa","device_key":"","proof":""}',
            {},
            400,
            "malformed-request",
        ),
        (
            "/v1/doors/101/open",
            b'{"room_key":{"body":{},"sig":""},"challenge":"x","signature":""}',
            {},
            400,
            "malformed-request",
        ),
        ("/v1/admin/bookings", b"{}", {}, 401, "unauthorized"),
    ],
)
def test_entity_rejects_hostile_requests(
    hotel: Hotel, path: str, body: bytes, headers: dict[str, str], status: int, slug: str
) -> None:
    response = httpx2.post(
        hotel.url + path, content=body, headers={"content-type": "application/json", **headers}
    )
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["type"].endswith("/" + slug) and problem["status"] == status
    assert response.headers["content-type"].startswith("application/problem+json")


def test_chunked_oversized_body_refused(hotel: Hotel) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 1024

    response = httpx2.post(
        hotel.url + "/v1/redeem", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_tokens_are_stored_hashed(hotel: Hotel) -> None:
    _, _, opening = share(hotel)
    token = ShareOffer.parse(opening.content).token
    assert token.encode() not in hotel.db.read_bytes()
    wal = hotel.db.with_name(hotel.db.name + "-wal")
    if wal.exists():
        assert token.encode() not in wal.read_bytes()


def test_share_options_validated(hotel: Hotel) -> None:
    wallet, credential = hotel.guest()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"colour": 1}, "bad-option"),
        ({"ttl": 5}, "malformed-request"),
        ({"ttl": 99999}, "malformed-request"),
        ({"rights": ["share", "enter"]}, "malformed-request"),
        ({"rights": ["admin"]}, "malformed-request"),
        ({"tx_pin": "1"}, "malformed-request"),
        ({"pin_attempts": 0}, "malformed-request"),
    ]
    for options, code in cases:
        with pytest.raises(VerticalError) as info:
            HotelSpec().sender_flow(wallet, credential.id, options)
        assert info.value.code == code, options


def test_receiver_refuses_non_loopback_http_entity(hotel: Hotel) -> None:
    _, _, opening = share(hotel)
    content = {**dict(opening.content), "issuer": "http://hotel.example"}
    with pytest.raises(ContentError, match="https"):
        HotelSpec().receiver_flow(MemoryWallet()).on_message(
            ProvisioningInfo(FORMAT_AUTHORIZATION_TOKEN, content)
        )


def test_service_survives_restart(hotel: Hotel, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    first = HotelService(db, name="A")
    second = HotelService(db, name="ignored")
    assert second.issuer_public_key == first.issuer_public_key and second.name == "A"


def test_registry(hotel: Hotel) -> None:
    _, _, opening = share(hotel)
    assert set(VERTICALS) == {"home", "hotel", "car"}
    assert spec_for_opening(opening).name == "hotel"
    with pytest.raises(VerticalError) as info:
        spec_for_opening(ProvisioningInfo(FORMAT_AUTHORIZATION_TOKEN, {"credential_type": "x"}))
    assert info.value.code == "unsupported-format"


@settings(max_examples=200)
@given(json_values)
def test_hotel_parsers_never_raise_anything_else(value: Any) -> None:
    for parse in (RoomKey.parse, ShareOffer.parse, HotelKey.parse):
        with contextlib.suppress(ContentError):
            parse(value)


@given(st.text(max_size=80))
def test_entity_url_policy(text: str) -> None:

    try:
        url = entity_url(text, "url")
    except ContentError:
        return
    assert url.startswith(("https://", "http://"))
