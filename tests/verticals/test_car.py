from __future__ import annotations

import contextlib
import functools
import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.verticals.json_strategies import json_values
from tests.verticals.memory_wallet import MemoryWallet
from tests.verticals.transfer import run_transfer

from tigress.protocol.messages import ProvisioningInfo
from tigress.verticals.base import VerticalError
from tigress.verticals.car import (
    CAR_KEY_FORMAT,
    KEY_CREATION_REQUEST_FORMAT,
    KEY_IMPORT_FORMAT,
    KEY_SIGNING_REQUEST_FORMAT,
    AuthAttempt,
    CarKey,
    CarSpec,
    CertBody,
    Certificate,
    ChainError,
    KeyCreationRequest,
    KeyImport,
    KeySigningRequest,
    Vehicle,
    auth_message,
    revoke_car_key,
    setup_car,
    unlock_car,
    verify_chain,
)
from tigress.verticals.car.vehicle import revocation_message
from tigress.verticals.common import ContentError, b64url, unb64url
from tigress.wallet.api import Credential, CredentialOrigin


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Car:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "car.json"
        self.owner, self.friend = MemoryWallet(), MemoryWallet()
        self.owner_credential = setup_car(self.owner, self.path, "Blue hatchback")

    def share(self, **options: Any) -> Credential:
        outcome = run_transfer(
            CarSpec(), self.owner, self.friend, self.owner_credential.id, options
        )
        assert outcome.receiver_error is None and outcome.sender_error is None
        assert outcome.receiver_done and outcome.sender_done, outcome
        assert outcome.messages == [
            KEY_CREATION_REQUEST_FORMAT,
            KEY_SIGNING_REQUEST_FORMAT,
            KEY_IMPORT_FORMAT,
        ]
        assert outcome.credential_id is not None
        return self.friend.credentials.get(outcome.credential_id)

    def owner_now(self) -> Credential:
        return self.owner.credentials.get(self.owner_credential.id)


@pytest.fixture
def car(tmp_path: Path) -> Car:
    return Car(tmp_path)


def test_owner_setup(car: Car) -> None:
    credential = car.owner_credential
    assert credential.origin is CredentialOrigin.OWNED and credential.format == CAR_KEY_FORMAT
    assert credential.key_id is not None
    assert unlock_car(car.owner, credential, car.path).opened
    assert unlock_car(car.owner, credential, car.path, action="start").opened


def test_share_unlock_only_key_end_to_end(car: Car) -> None:
    friend_key = car.share(label="Amit")
    assert friend_key.origin is CredentialOrigin.RECEIVED
    assert friend_key.key_id is not None and friend_key.label == "Blue hatchback (Amit)"
    data = CarKey.parse(friend_key.data)
    assert data.leaf.role == "friend" and data.leaf.entitlements == ("unlock",)
    assert data.leaf.subject_key == car.friend.keys.public_key(friend_key.key_id)
    opened = unlock_car(car.friend, friend_key, car.path)
    assert opened.opened, opened.reason
    started = unlock_car(car.friend, friend_key, car.path, action="start")
    assert not started.opened and "does not allow 'start'" in started.reason
    # The owner's record of what it issued.
    issued = CarKey.parse(car.owner_now().data).issued
    assert [item.serial for item in issued] == [data.leaf.serial]


def test_share_drive_key(car: Car) -> None:
    friend_key = car.share(entitlements=["drive", "unlock"], valid_for=3600)
    assert unlock_car(car.friend, friend_key, car.path, action="start").opened
    leaf = CarKey.parse(friend_key.data).leaf
    assert leaf.not_after - leaf.not_before == 3600


def test_validity_window(car: Car) -> None:
    friend_key = car.share(valid_for=3600)
    leaf = CarKey.parse(friend_key.data).leaf
    chain = CarKey.parse(friend_key.data).chain
    assert friend_key.key_id is not None
    for when, expected in [
        (leaf.not_before - 10, "not valid yet"),
        (leaf.not_after, "expired"),
        (leaf.not_after - 1, None),
    ]:
        vehicle = Vehicle.load(car.path, clock=functools.partial(int, when))
        nonce = vehicle.challenge()
        signature = car.friend.keys.sign(
            friend_key.key_id, auth_message(vehicle.vehicle_id, nonce, "unlock")
        )
        result = vehicle.verify(AuthAttempt(nonce, chain, signature))
        if expected is None:
            assert result.opened, result.reason
        else:
            assert not result.opened and expected in result.reason


def test_revocation(car: Car) -> None:
    first, second = car.share(label="One"), car.share(label="Two")
    serial = CarKey.parse(first.data).leaf.serial
    updated = revoke_car_key(car.owner, car.owner_now(), serial, car.path)
    refused = unlock_car(car.friend, first, car.path)
    assert not refused.opened and "revoked" in refused.reason
    assert unlock_car(car.friend, second, car.path).opened
    assert unlock_car(car.owner, updated, car.path).opened
    revoked = {item.serial: item.revoked for item in CarKey.parse(updated.data).issued}
    assert revoked[serial] is True and list(revoked.values()).count(False) == 1
    with pytest.raises(VerticalError) as info:
        revoke_car_key(car.owner, updated, b64url(bytes(16)), car.path)
    assert info.value.code == "unknown-key"
    with pytest.raises(VerticalError) as info:
        revoke_car_key(car.friend, second, serial, car.path)
    assert info.value.code == "not-owner"


def test_revocation_order_must_be_signed_by_owner(car: Car) -> None:
    vehicle = Vehicle.load(car.path)
    intruder = Ed25519PrivateKey.generate()
    serial = CarKey.parse(car.owner_credential.data).leaf.serial
    issued_at = 1_700_000_000
    vehicle = Vehicle.load(car.path, clock=lambda: issued_at)
    forged = intruder.sign(revocation_message(vehicle.vehicle_id, serial, issued_at))
    with pytest.raises(ContentError) as info:
        vehicle.apply_revocation(serial, issued_at, forged)
    assert info.value.code == "bad-signature"
    assert vehicle.revoked == frozenset()


def test_second_signing_request_refused(car: Car) -> None:
    spec = CarSpec()
    sender = spec.sender_flow(car.owner, car.owner_credential.id, {})
    before_signing = dict(sender.to_dict())
    receiver = spec.receiver_flow(car.friend)
    ksr = receiver.on_message(sender.opening()).reply
    assert ksr is not None
    step = sender.on_message(ksr)
    assert step.reply is not None and step.reply.format == KEY_IMPORT_FORMAT
    with pytest.raises(VerticalError) as info:
        sender.on_message(ksr)
    assert info.value.code == "already-signed"
    # A different device answering the same invitation is refused too.
    other = spec.receiver_flow(MemoryWallet()).on_message(sender.opening()).reply
    assert other is not None
    with pytest.raises(VerticalError, match="already produced"):
        spec.restore_sender_flow(car.owner, sender.to_dict()).on_message(other)
    # Even a flow restored from before the signature (a crash) cannot sign again: the wallet
    # remembers which invitation it signed for.
    with pytest.raises(VerticalError) as info:
        spec.restore_sender_flow(car.owner, before_signing).on_message(other)
    assert info.value.code == "already-signed"
    assert len(CarKey.parse(car.owner_now().data).issued) == 1


def test_wrong_proof_of_possession(car: Car) -> None:
    spec = CarSpec()
    sender = spec.sender_flow(car.owner, car.owner_credential.id, {})
    receiver = spec.receiver_flow(car.friend)
    ksr_info = receiver.on_message(sender.opening()).reply
    assert ksr_info is not None
    ksr = KeySigningRequest.parse(ksr_info.content)
    # Someone else's key with the friend's proof, and a proof for another request.
    stranger = raw_public(Ed25519PrivateKey.generate())
    for forged in (
        replace(ksr, public_key=stranger),
        replace(ksr, proof=bytes(64)),
    ):
        with pytest.raises(VerticalError) as info:
            sender.on_message(ProvisioningInfo(KEY_SIGNING_REQUEST_FORMAT, forged.to_content()))
        assert info.value.code == "bad-proof"
    wrong_request = replace(ksr, request_id=b64url(secrets.token_bytes(16)))
    with pytest.raises(VerticalError) as info:
        sender.on_message(ProvisioningInfo(KEY_SIGNING_REQUEST_FORMAT, wrong_request.to_content()))
    assert info.value.code == "wrong-request"
    # None of those used up the invitation.
    assert sender.on_message(ksr_info).reply is not None


def test_receiver_rejects_tampered_import_and_deletes_its_key(car: Car) -> None:
    spec = CarSpec()
    sender = spec.sender_flow(car.owner, car.owner_credential.id, {})
    receiver = spec.receiver_flow(car.friend)
    ksr = receiver.on_message(sender.opening()).reply
    assert ksr is not None and len(car.friend.keys) == 1
    reply = sender.on_message(ksr).reply
    assert reply is not None
    imported = KeyImport.parse(reply.content)
    friend_cert = imported.chain[0]
    upgraded = replace(friend_cert.body, entitlements=("drive", "unlock"))
    tampered = KeyImport(
        imported.request_id, (replace(friend_cert, body=upgraded), imported.chain[1])
    )
    with pytest.raises(ChainError, match="not signed by the owner"):
        receiver.on_message(ProvisioningInfo(KEY_IMPORT_FORMAT, tampered.to_content()))
    assert len(car.friend.keys) == 0
    assert car.friend.credentials.list() == []


def test_receiver_refuses_request_not_from_the_vehicle(car: Car) -> None:
    opening = CarSpec().sender_flow(car.owner, car.owner_credential.id, {}).opening()
    request = KeyCreationRequest.parse(opening.content)
    forged = replace(request, pairing_key=raw_public(Ed25519PrivateKey.generate()))
    with pytest.raises(ChainError, match="not signed by this vehicle"):
        CarSpec().receiver_flow(car.friend).on_message(
            ProvisioningInfo(KEY_CREATION_REQUEST_FORMAT, forged.to_content())
        )
    greedy = replace(request, not_after=request.owner_certificate.body.not_after + 1)
    with pytest.raises(VerticalError, match="more than the owner"):
        CarSpec().receiver_flow(car.friend).on_message(
            ProvisioningInfo(KEY_CREATION_REQUEST_FORMAT, greedy.to_content())
        )
    assert len(car.friend.keys) == 0


def _friend_cert(
    issuer: Ed25519PrivateKey, owner: Certificate, subject: bytes, **changes: Any
) -> Certificate:
    body = CertBody(
        role="friend",
        serial=b64url(secrets.token_bytes(16)),
        vehicle_id=owner.body.vehicle_id,
        subject_alg="ed25519",
        subject_key=subject,
        entitlements=("unlock",),
        not_before=owner.body.not_before,
        not_after=owner.body.not_before + 3600,
        label="forged",
    )
    body = replace(body, **changes)
    return Certificate(body, issuer.sign(body.signed_bytes()))


def test_vehicle_refuses_forged_chains(car: Car) -> None:
    vehicle = Vehicle.load(car.path)
    owner_cert = CarKey.parse(car.owner_credential.data).chain[0]
    thief = Ed25519PrivateKey.generate()
    thief_public = raw_public(thief)
    owner_key = car.owner_credential.key_id or ""

    def signed_by_owner(**changes: Any) -> Certificate:
        unsigned = _friend_cert(thief, owner_cert, thief_public, **changes).body
        return Certificate(unsigned, car.owner.keys.sign(owner_key, unsigned.signed_bytes()))

    # An owner certificate with fewer rights, genuinely signed by the vehicle.
    pairing = Ed25519PrivateKey.from_private_bytes(
        unb64url(json.loads(car.path.read_text())["pairing_key"], "key", size=32)
    )
    small_body = replace(owner_cert.body, entitlements=("unlock",))
    small_owner = Certificate(small_body, pairing.sign(small_body.signed_bytes()))

    other_vehicle = Vehicle.create(car.path.with_name("other.json"), "Other")
    other_owner = other_vehicle.pair("ed25519", thief_public)
    cases = {
        "not signed by the owner": [_friend_cert(thief, owner_cert, thief_public), owner_cert],
        "grants more": [signed_by_owner(entitlements=("drive", "unlock")), small_owner],
        "exceeds the owner": [
            signed_by_owner(not_after=owner_cert.body.not_after + 1),
            owner_cert,
        ],
        "another vehicle": [signed_by_owner(vehicle_id="elsewhere"), owner_cert],
        "role 'friend'": [signed_by_owner(role="owner"), owner_cert],
        "not signed by this vehicle": [
            _friend_cert(thief, other_owner, thief_public),
            replace(other_owner, body=replace(other_owner.body, vehicle_id=vehicle.vehicle_id)),
        ],
        "does not end with the owner": [signed_by_owner()],
    }
    for expected, chain in cases.items():
        nonce = vehicle.challenge()
        signature = thief.sign(auth_message(vehicle.vehicle_id, nonce, "unlock"))
        result = vehicle.verify(AuthAttempt(nonce, chain, signature))
        assert not result.opened and expected in result.reason, (expected, result)
    # A correct chain with a signature by the wrong key.
    chain = [signed_by_owner(), owner_cert]
    nonce = vehicle.challenge()
    stranger = Ed25519PrivateKey.generate()
    result = vehicle.verify(
        AuthAttempt(nonce, chain, stranger.sign(auth_message(vehicle.vehicle_id, nonce, "unlock")))
    )
    assert not result.opened and "signature" in result.reason
    # And with the right key it opens, once.
    nonce = vehicle.challenge()
    attempt = AuthAttempt(
        nonce, chain, thief.sign(auth_message(vehicle.vehicle_id, nonce, "unlock"))
    )
    assert vehicle.verify(attempt).opened
    replay = vehicle.verify(attempt)
    assert not replay.opened and "already used" in replay.reason


def test_signature_for_another_action_refused(car: Car) -> None:
    vehicle = Vehicle.load(car.path)
    key = CarKey.parse(car.owner_credential.data)
    assert car.owner_credential.key_id is not None
    nonce = vehicle.challenge()
    signature = car.owner.keys.sign(
        car.owner_credential.key_id, auth_message(vehicle.vehicle_id, nonce, "unlock")
    )
    result = vehicle.verify(AuthAttempt(nonce, key.chain, signature, "start"))
    assert not result.opened and "signature" in result.reason
    assert not vehicle.verify(AuthAttempt(nonce, key.chain, signature, "fly")).opened


def test_repairing_replaces_owner(car: Car) -> None:
    friend_key = car.share()
    vehicle = Vehicle.load(car.path)
    vehicle.pair("ed25519", raw_public(Ed25519PrivateKey.generate()))
    result = unlock_car(car.friend, friend_key, car.path)
    assert not result.opened and "not for the owner paired" in result.reason


def test_verify_chain_length(car: Car) -> None:
    owner_cert = CarKey.parse(car.owner_credential.data).chain[0]
    vehicle = Vehicle.load(car.path)
    with pytest.raises(ChainError):
        verify_chain([], vehicle_id=vehicle.vehicle_id, pairing_key=vehicle.pairing_public_key)
    with pytest.raises(ChainError):
        verify_chain(
            [owner_cert] * 3, vehicle_id=vehicle.vehicle_id, pairing_key=vehicle.pairing_public_key
        )


def test_sender_options_validated(car: Car) -> None:
    spec = CarSpec()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"colour": "red"}, "bad-option"),
        ({"entitlements": ["fly"]}, "malformed"),
        ({"entitlements": ["unlock", "drive"]}, "malformed"),  # not canonical order
        ({"valid_for": 10}, "malformed"),
        ({"label": ""}, "malformed"),
    ]
    for options, code in cases:
        with pytest.raises(VerticalError) as info:
            spec.sender_flow(car.owner, car.owner_credential.id, options)
        assert info.value.code == code
    friend_key = car.share()
    with pytest.raises(VerticalError) as info:
        spec.sender_flow(car.friend, friend_key.id, {})
    assert info.value.code == "not-owner"


def test_receiver_flow_order_enforced(car: Car) -> None:
    spec = CarSpec()
    receiver = spec.receiver_flow(car.friend)
    with pytest.raises(VerticalError) as info:
        receiver.on_message(ProvisioningInfo(KEY_IMPORT_FORMAT, {}))
    assert info.value.code == "unexpected-message"
    sender = spec.sender_flow(car.owner, car.owner_credential.id, {})
    receiver.on_message(sender.opening())
    with pytest.raises(VerticalError) as info:
        receiver.on_message(sender.opening())
    assert info.value.code == "unexpected-message"


def test_restore_rejects_bad_state(car: Car) -> None:
    spec = CarSpec()
    state = dict(spec.sender_flow(car.owner, car.owner_credential.id, {}).to_dict())
    for broken in (
        {**state, "signed_serial": "x"},
        {**state, "request": {}},
        {**state, "role": "receiver"},
        {k: v for k, v in state.items() if k != "request"},
    ):
        with pytest.raises(ContentError):
            spec.restore_sender_flow(car.owner, broken)
    with pytest.raises(ContentError):
        spec.restore_receiver_flow(
            car.friend,
            {
                "v": 1,
                "vertical": "car",
                "role": "receiver",
                "request": None,
                "key_id": "k",
                "credential_id": None,
            },
        )


# --- parsers -----------------------------------------------------------------------------------


def _valid_cert(car: Car) -> dict[str, Any]:
    return CarKey.parse(car.owner_credential.data).chain[0].to_json()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.pop("sig"), "lacks field"),
        (lambda c: c.update(extra=1), "unknown field"),
        (lambda c: c["body"].update(role="admin"), "role"),
        (lambda c: c["body"].update(serial="AAAA"), "16 bytes"),
        (lambda c: c["body"].update(subject_alg="rsa"), "subject_alg"),
        (lambda c: c["body"].update(subject_key=b64url(bytes(31))), "32 bytes"),
        (lambda c: c["body"].update(subject_alg="p256"), "65 bytes"),
        (
            lambda c: c["body"].update(subject_alg="p256", subject_key=b64url(b"\x04" + bytes(64))),
            "valid p256",
        ),
        (lambda c: c["body"].update(entitlements=[]), "non-empty"),
        (lambda c: c["body"].update(entitlements=["unlock", "unlock"]), "non-empty|duplicates"),
        (lambda c: c["body"].update(entitlements=["teleport"]), "may only contain"),
        (lambda c: c["body"].update(not_after=c["body"]["not_before"]), "later than"),
        (lambda c: c["body"].update(not_before=-1), "not_before"),
        (lambda c: c["body"].update(not_before=True), "not_before"),
        (lambda c: c["body"].update(label="\x00"), "control"),
        (lambda c: c["body"].update(vehicle_id="../../etc"), "vehicle_id"),
        (lambda c: c.update(sig="A" * 200), "at most 80"),
        (lambda c: c.update(body=[]), "JSON object"),
    ],
)
def test_certificate_parser_rejects(car: Car, mutate: Any, message: str) -> None:
    cert = json.loads(json.dumps(_valid_cert(car)))
    mutate(cert)
    with pytest.raises(ContentError, match=message):
        Certificate.parse(cert)


@pytest.mark.parametrize(
    "content",
    [
        {},
        {"request_id": "x", "key_alg": "ed25519", "public_key": "", "proof": ""},
        {"request_id": b64url(bytes(16)), "key_alg": "ed448", "public_key": "", "proof": ""},
        {
            "request_id": b64url(bytes(16)),
            "key_alg": "ed25519",
            "public_key": b64url(bytes(32)),
            "proof": 5,
        },
    ],
)
def test_signing_request_parser_rejects(content: dict[str, Any]) -> None:
    with pytest.raises(ContentError):
        KeySigningRequest.parse(content)


def test_request_and_import_parsers_reject(car: Car) -> None:
    opening = CarSpec().sender_flow(car.owner, car.owner_credential.id, {}).opening()
    content = json.loads(json.dumps(dict(opening.content)))
    assert KeyCreationRequest.parse(content).to_content() == content
    for key, value in [
        ("not_after", content["not_before"]),
        ("pairing_key", "A"),
        ("owner_certificate", {}),
        ("request_id", b64url(bytes(15))),
    ]:
        with pytest.raises(ContentError):
            KeyCreationRequest.parse({**content, key: value})
    with pytest.raises(ContentError, match="friend's and the owner's"):
        KeyImport.parse(
            {"request_id": content["request_id"], "chain": [content["owner_certificate"]]}
        )
    with pytest.raises(ContentError, match="one or two"):
        KeyImport.parse({"request_id": content["request_id"], "chain": []})


def test_vehicle_state_parser_rejects(tmp_path: Path, car: Car) -> None:
    state = json.loads(car.path.read_text())
    for key, value in [
        ("pairing_key", "AAAA"),
        ("owner", {"alg": "ed25519"}),
        ("revoked", ["nope"]),
        ("revoked", "x"),
        ("pending", [["x", 1]]),
        ("v", 9),
    ]:
        path = tmp_path / f"bad-{key}.json"
        path.write_text(json.dumps({**state, key: value}))
        with pytest.raises(ContentError):
            Vehicle.load(path)


@settings(max_examples=200)
@given(json_values)
def test_car_parsers_never_raise_anything_else(value: Any) -> None:
    for parse in (
        Certificate.parse,
        KeyCreationRequest.parse,
        KeySigningRequest.parse,
        KeyImport.parse,
        CarKey.parse,
    ):
        with contextlib.suppress(ContentError):
            parse(value)


@settings(max_examples=100)
@given(
    role=st.sampled_from(["owner", "friend"]),
    entitlements=st.sampled_from([("unlock",), ("drive",), ("drive", "unlock")]),
    not_before=st.integers(0, 2**39),
    span=st.integers(1, 2**39),
    label=st.text(min_size=1, max_size=128).filter(
        lambda s: all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s)
    ),
    signature=st.binary(max_size=80),
)
def test_certificate_round_trip(
    role: str,
    entitlements: tuple[str, ...],
    not_before: int,
    span: int,
    label: str,
    signature: bytes,
) -> None:
    body = CertBody(
        role=role,  # type: ignore[arg-type]
        serial=b64url(secrets.token_bytes(16)),
        vehicle_id="veh-1",
        subject_alg="ed25519",
        subject_key=raw_public(Ed25519PrivateKey.generate()),
        entitlements=entitlements,
        not_before=not_before,
        not_after=not_before + span,
        label=label,
    )
    certificate = Certificate(body, signature)
    assert Certificate.parse(json.loads(json.dumps(certificate.to_json()))) == certificate
