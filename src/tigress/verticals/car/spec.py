"""Scenario 3: the owner's device is the provisioning authority and signs the friend's key.

Owner (sender) -> friend: key creation request.  Friend -> owner: key signing request (a fresh
keystore key and its proof of possession).  Owner -> friend: the signed key with its chain.  The
friend answers ``done``.  The owner signs at most one key per invitation.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tigress.protocol.invitation import Vertical as InvitationHint
from tigress.protocol.messages import ProvisioningInfo
from tigress.verticals.base import Step, UnlockResult, VerticalError
from tigress.verticals.car.certificates import (
    ENTITLEMENTS,
    SERIAL_SIZE,
    CertBody,
    Certificate,
    chain_json,
    parse_chain,
    verify_chain,
)
from tigress.verticals.car.messages import (
    KEY_CREATION_REQUEST_FORMAT,
    KEY_IMPORT_FORMAT,
    KEY_SIGNING_REQUEST_FORMAT,
    REQUEST_ID_SIZE,
    KeyCreationRequest,
    KeyImport,
    KeySigningRequest,
    proof_message,
)
from tigress.verticals.car.vehicle import AuthAttempt, Vehicle, auth_message, revocation_message
from tigress.verticals.common import (
    MAX_TIME,
    ContentError,
    b64url,
    bool_field,
    credential_data,
    exact_fields,
    expect_object,
    flow_state,
    flow_state_dict,
    id_field,
    int_field,
    public_key_field,
    store_credential,
    string_set_field,
    text_field,
    unb64url,
    unexpected,
    verify_signature,
)
from tigress.wallet.api import Credential, CredentialOrigin, WalletView

VERTICAL = "car"
CAR_KEY_FORMAT = "tigress.car.key.v1"
DEFAULT_VALIDITY = 48 * 3600
MAX_VALIDITY = 366 * 86400
MAX_ISSUED = 1024
SENDER_OPTIONS = frozenset({"entitlements", "valid_for", "label"})


@dataclass(frozen=True)
class IssuedKey:
    """The owner's record of a key it signed, so it can revoke it later."""

    serial: str
    request_id: str  # the invitation it was signed for: one key per invitation, even after a crash
    label: str
    entitlements: tuple[str, ...]
    not_after: int
    revoked: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "request_id": self.request_id,
            "label": self.label,
            "entitlements": list(self.entitlements),
            "not_after": self.not_after,
            "revoked": self.revoked,
        }

    @classmethod
    def parse(cls, value: Any, where: str) -> IssuedKey:
        obj = expect_object(value, where)
        exact_fields(
            obj, where, {"serial", "request_id", "label", "entitlements", "not_after", "revoked"}
        )
        unb64url(obj["serial"], f"{where}.serial", size=SERIAL_SIZE)
        unb64url(obj["request_id"], f"{where}.request_id", size=REQUEST_ID_SIZE)
        return cls(
            serial=obj["serial"],
            request_id=obj["request_id"],
            label=text_field(obj, "label", where),
            entitlements=string_set_field(obj, "entitlements", where, ENTITLEMENTS),
            not_after=int_field(obj, "not_after", where, 0, MAX_TIME),
            revoked=bool_field(obj, "revoked", where),
        )


@dataclass(frozen=True)
class CarKey:
    """A car credential's ``data``: the chain, and (owner only) the keys it issued."""

    vehicle_id: str
    vehicle_label: str
    pairing_key: bytes
    chain: tuple[Certificate, ...]
    issued: tuple[IssuedKey, ...] = ()

    @property
    def leaf(self) -> CertBody:
        return self.chain[0].body

    @property
    def is_owner(self) -> bool:
        return self.leaf.role == "owner"

    def to_data(self) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id,
            "vehicle_label": self.vehicle_label,
            "pairing_key": b64url(self.pairing_key),
            "chain": chain_json(self.chain),
            "issued": [item.to_json() for item in self.issued],
        }

    @classmethod
    def parse(cls, value: Any, where: str = "car key") -> CarKey:
        obj = expect_object(value, where)
        exact_fields(obj, where, {"vehicle_id", "vehicle_label", "pairing_key", "chain", "issued"})
        issued = obj["issued"]
        if not isinstance(issued, list) or len(issued) > MAX_ISSUED:
            raise ContentError(f"{where}.issued must be a list of at most {MAX_ISSUED} entries")
        return cls(
            vehicle_id=id_field(obj, "vehicle_id", where),
            vehicle_label=text_field(obj, "vehicle_label", where),
            pairing_key=public_key_field(obj, "pairing_key", where, "ed25519"),
            chain=tuple(parse_chain(obj["chain"], f"{where}.chain")),
            issued=tuple(
                IssuedKey.parse(item, f"{where}.issued[{index}]")
                for index, item in enumerate(issued)
            ),
        )


# --- owner-side operations ---------------------------------------------------------------------


def setup_car(wallet: WalletView, vehicle_path: Path, label: str) -> Credential:
    """Create a vehicle, a keystore key for its owner, and pair them (the owner's credential)."""
    vehicle = Vehicle.create(vehicle_path, label)
    key_id = wallet.keys.generate("ed25519", label=f"car owner key: {label}")
    certificate = vehicle.pair("ed25519", wallet.keys.public_key(key_id), label="Owner")
    key = CarKey(vehicle.vehicle_id, label, vehicle.pairing_public_key, (certificate,))
    return _store(wallet, key, key_id, CredentialOrigin.OWNED, label)


def revoke_car_key(
    wallet: WalletView, credential: Credential, serial: str, vehicle_path: Path
) -> Credential:
    """Revoke a key the owner issued: a signed order to the vehicle, recorded in the wallet."""
    key = _car_key(credential)
    if not key.is_owner or credential.key_id is None:
        raise VerticalError("not-owner", "only the car's owner can revoke keys it issued")
    if not any(item.serial == serial for item in key.issued):
        raise VerticalError("unknown-key", "this owner key did not issue a key with that serial")
    vehicle = Vehicle.load(vehicle_path)
    if vehicle.vehicle_id != key.vehicle_id:
        raise VerticalError("wrong-access-point", "that is a different vehicle")
    issued_at = int(time.time())
    signature = wallet.keys.sign(
        credential.key_id, revocation_message(key.vehicle_id, serial, issued_at)
    )
    vehicle.apply_revocation(serial, issued_at, signature)
    issued = tuple(
        replace(item, revoked=True) if item.serial == serial else item for item in key.issued
    )
    return _update(wallet, credential, replace(key, issued=issued))


def unlock_car(
    wallet: WalletView, credential: Credential, vehicle_path: Path, *, action: str = "unlock"
) -> UnlockResult:
    """Present the key to the vehicle: answer its challenge with the credential's key."""
    key = _car_key(credential)
    if credential.key_id is None:
        raise VerticalError("no-key", "this car credential has no key in the wallet")
    vehicle = Vehicle.load(Path(vehicle_path))
    if vehicle.vehicle_id != key.vehicle_id:
        return UnlockResult(False, "this key belongs to a different vehicle")
    nonce = vehicle.challenge()
    signature = wallet.keys.sign(credential.key_id, auth_message(key.vehicle_id, nonce, action))
    return vehicle.verify(AuthAttempt(nonce, key.chain, signature, action))


# --- flows -------------------------------------------------------------------------------------


class CarSenderFlow:
    """The owner's side: offers a key creation request, signs one key, returns the chain."""

    def __init__(
        self,
        wallet: WalletView,
        credential_id: str,
        request: KeyCreationRequest,
        signed_serial: str | None,
    ) -> None:
        self._wallet = wallet
        self._credential_id = credential_id
        self._request = request
        self._signed_serial = signed_serial

    @classmethod
    def new(
        cls, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> CarSenderFlow:
        credential = wallet.credentials.get(credential_id)
        key = _car_key(credential)
        if not key.is_owner or credential.key_id is None or credential.revoked:
            raise VerticalError("not-owner", "only the car's owner can share a car key")
        unknown = set(options) - SENDER_OPTIONS
        if unknown:
            raise VerticalError("bad-option", f"unknown car share option(s): {sorted(unknown)}")
        entitlements = string_set_field(
            {"e": options.get("entitlements", ["unlock"])}, "e", "entitlements", ENTITLEMENTS
        )
        valid_for = int_field(
            {"v": options.get("valid_for", DEFAULT_VALIDITY)}, "v", "valid_for", 60, MAX_VALIDITY
        )
        label = text_field({"l": options.get("label", "Shared key")}, "l", "label")
        owner = key.leaf
        now = int(time.time())
        not_after = min(now + valid_for, owner.not_after)
        if not_after <= max(now, owner.not_before):
            raise VerticalError("owner-key-expired", "the owner's key is no longer valid")
        request = KeyCreationRequest(
            request_id=b64url(secrets.token_bytes(REQUEST_ID_SIZE)),
            vehicle_id=key.vehicle_id,
            vehicle_label=key.vehicle_label,
            pairing_key=key.pairing_key,
            entitlements=entitlements,
            not_before=max(now, owner.not_before),
            not_after=not_after,
            label=label,
            owner_certificate=key.chain[0],
        )
        return cls(wallet, credential_id, request, None)

    def opening(self) -> ProvisioningInfo:
        return ProvisioningInfo(KEY_CREATION_REQUEST_FORMAT, self._request.to_content())

    def on_message(self, info: ProvisioningInfo) -> Step:
        if info.format != KEY_SIGNING_REQUEST_FORMAT:
            raise unexpected(VERTICAL, info.format)
        if self._signed_serial is not None:
            raise VerticalError("already-signed", "this invitation already produced a signed key")
        ksr = KeySigningRequest.parse(info.content)
        request = self._request
        if not hmac.compare_digest(ksr.request_id, request.request_id):
            raise VerticalError("wrong-request", "the signing request answers another invitation")
        proof = proof_message(request.request_id, request.vehicle_id, ksr.key_alg, ksr.public_key)
        if not verify_signature(ksr.key_alg, ksr.public_key, ksr.proof, proof):
            raise VerticalError(
                "bad-proof", "the signing request does not prove possession of its key"
            )
        credential = self._wallet.credentials.get(self._credential_id)
        key = _car_key(credential)
        if credential.key_id is None or credential.revoked or not key.is_owner:
            raise VerticalError("not-owner", "the owner's key is no longer in this wallet")
        if any(item.request_id == request.request_id for item in key.issued):
            raise VerticalError("already-signed", "this invitation already produced a signed key")
        body = CertBody(
            role="friend",
            serial=b64url(secrets.token_bytes(SERIAL_SIZE)),
            vehicle_id=request.vehicle_id,
            subject_alg=ksr.key_alg,
            subject_key=ksr.public_key,
            entitlements=request.entitlements,
            not_before=request.not_before,
            not_after=request.not_after,
            label=request.label,
        )
        certificate = Certificate(
            body, self._wallet.keys.sign(credential.key_id, body.signed_bytes())
        )
        # Remember before replying: a crash after this point must not allow a second signature.
        self._signed_serial = body.serial
        record = IssuedKey(
            body.serial, request.request_id, body.label, body.entitlements, body.not_after, False
        )
        _update(
            self._wallet, credential, CarKey(**{**key.__dict__, "issued": (*key.issued, record)})
        )
        reply = KeyImport(request.request_id, (certificate, request.owner_certificate))
        return Step(reply=ProvisioningInfo(KEY_IMPORT_FORMAT, reply.to_content()), finished=True)

    def to_dict(self) -> Mapping[str, Any]:
        return flow_state_dict(
            VERTICAL,
            "sender",
            credential_id=self._credential_id,
            request=self._request.to_content(),
            signed_serial=self._signed_serial,
        )

    @property
    def signed_serial(self) -> str | None:
        return self._signed_serial


class CarReceiverFlow:
    """The friend's side: makes a key, proves possession, checks and imports the signed chain."""

    def __init__(
        self,
        wallet: WalletView,
        request: KeyCreationRequest | None = None,
        key_id: str | None = None,
        credential_id: str | None = None,
    ) -> None:
        self._wallet = wallet
        self._request = request
        self._key_id = key_id
        self._credential_id = credential_id

    def on_message(self, info: ProvisioningInfo) -> Step:
        if self._credential_id is not None:
            raise unexpected(VERTICAL, info.format)
        if self._request is None and info.format == KEY_CREATION_REQUEST_FORMAT:
            return self._answer_request(info)
        if self._request is not None and info.format == KEY_IMPORT_FORMAT:
            return self._import(info)
        raise unexpected(VERTICAL, info.format)

    def _answer_request(self, info: ProvisioningInfo) -> Step:
        request = KeyCreationRequest.parse(info.content)
        # The owner's certificate must come from the vehicle named in the request.
        verify_chain(
            [request.owner_certificate],
            vehicle_id=request.vehicle_id,
            pairing_key=request.pairing_key,
        )
        owner = request.owner_certificate.body
        if not set(request.entitlements) <= set(owner.entitlements) or not (
            owner.not_before <= request.not_before and request.not_after <= owner.not_after
        ):
            raise VerticalError("bad-request", "the key request asks for more than the owner has")
        key_id = self._wallet.keys.generate("ed25519", label=f"car key: {request.vehicle_label}")
        public_key = self._wallet.keys.public_key(key_id)
        proof = self._wallet.keys.sign(
            key_id, proof_message(request.request_id, request.vehicle_id, "ed25519", public_key)
        )
        self._request, self._key_id = request, key_id
        ksr = KeySigningRequest(request.request_id, "ed25519", public_key, proof)
        return Step(reply=ProvisioningInfo(KEY_SIGNING_REQUEST_FORMAT, ksr.to_content()))

    def _import(self, info: ProvisioningInfo) -> Step:
        request, key_id = self._request, self._key_id
        assert request is not None and key_id is not None
        try:
            imported = KeyImport.parse(info.content)
            leaf = verify_chain(
                imported.chain, vehicle_id=request.vehicle_id, pairing_key=request.pairing_key
            )
            self._check_matches_request(imported, leaf, request, key_id)
        except VerticalError:
            self._wallet.keys.delete(key_id)  # the key can never be used: do not leave it behind
            raise
        key = CarKey(request.vehicle_id, request.vehicle_label, request.pairing_key, imported.chain)
        label = f"{request.vehicle_label} ({request.label})"
        credential = _store(self._wallet, key, key_id, CredentialOrigin.RECEIVED, label)
        self._credential_id = credential.id
        return Step(finished=True, credential_id=credential.id)

    def _check_matches_request(
        self, imported: KeyImport, leaf: CertBody, request: KeyCreationRequest, key_id: str
    ) -> None:
        if not hmac.compare_digest(imported.request_id, request.request_id):
            raise VerticalError("wrong-request", "the signed key answers another request")
        if imported.chain[1] != request.owner_certificate:
            raise VerticalError("bad-chain", "the chain's owner certificate changed")
        if leaf.subject_alg != "ed25519" or leaf.subject_key != self._wallet.keys.public_key(
            key_id
        ):
            raise VerticalError("bad-chain", "the signed key is not the key this device made")
        if (leaf.entitlements, leaf.not_before, leaf.not_after, leaf.label) != (
            request.entitlements,
            request.not_before,
            request.not_after,
            request.label,
        ):
            raise VerticalError("bad-chain", "the signed key differs from what was offered")

    def to_dict(self) -> Mapping[str, Any]:
        return flow_state_dict(
            VERTICAL,
            "receiver",
            request=None if self._request is None else self._request.to_content(),
            key_id=self._key_id,
            credential_id=self._credential_id,
        )


class CarSpec:
    name = VERTICAL
    hint = InvitationHint.CAR

    def sender_flow(
        self, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> CarSenderFlow:
        return CarSenderFlow.new(wallet, credential_id, options)

    def restore_sender_flow(self, wallet: WalletView, state: Mapping[str, Any]) -> CarSenderFlow:
        obj = flow_state(state, VERTICAL, "sender", {"credential_id", "request", "signed_serial"})
        signed = obj["signed_serial"]
        if signed is not None:
            unb64url(signed, "car sender state.signed_serial", size=SERIAL_SIZE)
        return CarSenderFlow(
            wallet,
            _text(obj["credential_id"], "credential_id"),
            KeyCreationRequest.parse(obj["request"]),
            signed,
        )

    def receiver_flow(self, wallet: WalletView) -> CarReceiverFlow:
        return CarReceiverFlow(wallet)

    def restore_receiver_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> CarReceiverFlow:
        obj = flow_state(state, VERTICAL, "receiver", {"request", "key_id", "credential_id"})
        request = None if obj["request"] is None else KeyCreationRequest.parse(obj["request"])
        key_id = None if obj["key_id"] is None else _text(obj["key_id"], "key_id")
        if (request is None) != (key_id is None):
            raise ContentError("car receiver state: request and key_id go together")
        credential_id = obj["credential_id"]
        return CarReceiverFlow(
            wallet,
            request,
            key_id,
            None if credential_id is None else _text(credential_id, "credential_id"),
        )

    def accepts(self, info: ProvisioningInfo) -> bool:
        return info.format == KEY_CREATION_REQUEST_FORMAT

    def unlock(
        self, wallet: WalletView, credential: Credential, access_point: str | Path
    ) -> UnlockResult:
        return unlock_car(wallet, credential, Path(access_point))


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise ContentError(f"car flow state: {name} must be a string")
    return value


def _car_key(credential: Credential) -> CarKey:
    data = credential_data(credential, VERTICAL, CAR_KEY_FORMAT, "car key")
    return CarKey.parse(data, "stored car key")


def _store(
    wallet: WalletView, key: CarKey, key_id: str, origin: CredentialOrigin, label: str
) -> Credential:
    return store_credential(
        wallet,
        vertical=VERTICAL,
        credential_format=CAR_KEY_FORMAT,
        label=label,
        origin=origin,
        data=key.to_data(),
        key_id=key_id,
    )


def _update(wallet: WalletView, credential: Credential, key: CarKey) -> Credential:
    updated = replace(credential, data=key.to_data())
    wallet.credentials.update(updated)
    return updated
