"""The vehicle: the access point of scenario 3, stored as a JSON state file.

It holds its own Ed25519 pairing key (it signs the owner's certificate when the owner pairs), the
paired owner's public key, a revocation list of certificate serials, and pending challenges.
To open or start, a device presents its chain and signs
``"tigress/v1 car-auth" NUL canonical-json({"action", "nonce", "vehicle_id"})`` with its key.

Revocation orders are signed by the owner's key.  In a real car they reach the vehicle through
the manufacturer's server (or the car's own screen); here the owner's device writes the order to
the vehicle's state file, which stands for that channel.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tigress.verticals.access_point import (
    PendingNonces,
    StatefulAccessPoint,
    parse_pending,
    pending_to_json,
)
from tigress.verticals.base import UnlockResult
from tigress.verticals.car.certificates import (
    SERIAL_SIZE,
    CertBody,
    Certificate,
    ChainError,
    verify_chain,
)
from tigress.verticals.common import (
    MAX_TIME,
    Clock,
    ContentError,
    algorithm_field,
    b64url,
    exact_fields,
    expect_object,
    id_field,
    int_field,
    locked_state,
    public_key_field,
    signing_input,
    system_clock,
    text_field,
    unb64url,
    verify_signature,
)
from tigress.wallet.api import KeyAlgorithm

STATE_VERSION = 1
MAX_REVOKED = 4096
ACTIONS: Mapping[str, str] = {"unlock": "unlock", "start": "drive"}  # action -> entitlement


def auth_message(vehicle_id: str, nonce: bytes, action: str) -> bytes:
    """What a key signs to answer the vehicle's challenge."""
    return signing_input(
        "car-auth", {"action": action, "nonce": b64url(nonce), "vehicle_id": vehicle_id}
    )


def revocation_message(vehicle_id: str, serial: str, issued_at: int) -> bytes:
    """What the owner's key signs to revoke a key it issued."""
    return signing_input(
        "car-revoke", {"issued_at": issued_at, "serial": serial, "vehicle_id": vehicle_id}
    )


@dataclass
class _VehicleState:
    vehicle_id: str
    label: str
    pairing_private: bytes = field(repr=False)
    owner: tuple[KeyAlgorithm, bytes] | None
    revoked: list[str]
    pending: PendingNonces
    created: int

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "vehicle_id": self.vehicle_id,
            "label": self.label,
            "pairing_key": b64url(self.pairing_private),
            "owner": None
            if self.owner is None
            else {"alg": self.owner[0], "key": b64url(self.owner[1])},
            "revoked": list(self.revoked),
            "pending": pending_to_json(self.pending),
            "created": self.created,
        }

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> _VehicleState:
        where = "vehicle"
        exact_fields(
            obj,
            where,
            {"v", "vehicle_id", "label", "pairing_key", "owner", "revoked", "pending", "created"},
        )
        if obj["v"] != STATE_VERSION:
            raise ContentError(f"{where} state version {obj['v']!r} is not supported")
        owner: tuple[KeyAlgorithm, bytes] | None = None
        if obj["owner"] is not None:
            owner_obj = expect_object(obj["owner"], f"{where}.owner")
            exact_fields(owner_obj, f"{where}.owner", {"alg", "key"})
            algorithm = algorithm_field(owner_obj, "alg", f"{where}.owner")
            owner = (algorithm, public_key_field(owner_obj, "key", f"{where}.owner", algorithm))
        revoked = obj["revoked"]
        if not isinstance(revoked, list) or len(revoked) > MAX_REVOKED:
            raise ContentError(f"{where}.revoked must be a list of at most {MAX_REVOKED} serials")
        for serial in revoked:
            unb64url(serial, f"{where}.revoked serial", size=SERIAL_SIZE)
        return cls(
            vehicle_id=id_field(obj, "vehicle_id", where),
            label=text_field(obj, "label", where),
            pairing_private=unb64url(obj["pairing_key"], f"{where}.pairing_key", size=32),
            owner=owner,
            revoked=list(revoked),
            pending=parse_pending(obj["pending"], where),
            created=int_field(obj, "created", where, 0, MAX_TIME),
        )


@dataclass(frozen=True)
class AuthAttempt:
    """A device's answer to a challenge: its chain and its signature."""

    nonce: bytes
    chain: Sequence[Certificate]
    signature: bytes = field(repr=False)
    action: str = "unlock"


class Vehicle(StatefulAccessPoint[_VehicleState]):
    what = "vehicle"

    def __repr__(self) -> str:
        return f"<Vehicle {self.vehicle_id} {self.label!r}>"

    @classmethod
    def _parse_state(cls, obj: Mapping[str, Any]) -> _VehicleState:
        return _VehicleState.parse(obj)

    @classmethod
    def create(cls, path: Path, label: str, *, clock: Clock = system_clock) -> Vehicle:
        text_field({"label": label}, "label", "vehicle")
        private = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        state = _VehicleState(
            vehicle_id=b64url(secrets.token_bytes(16)),
            label=label,
            pairing_private=private,
            owner=None,
            revoked=[],
            pending=[],
            created=clock(),
        )
        return cls._install(Path(path), state, clock)

    @property
    def vehicle_id(self) -> str:
        return self._state.vehicle_id

    @property
    def label(self) -> str:
        return self._state.label

    @property
    def pairing_public_key(self) -> bytes:
        return (
            self._private_key()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    @property
    def revoked(self) -> frozenset[str]:
        return frozenset(self._reload().revoked)

    def pair(
        self,
        algorithm: KeyAlgorithm,
        public_key: bytes,
        *,
        label: str = "Owner",
        valid_for: int = 10 * 365 * 86400,
    ) -> Certificate:
        """Make ``public_key`` the owner's key and return its certificate (signed by the car).

        A real car pairs only inside the car with a one-time pairing password; pairing again
        replaces the previous owner (whose certificate the car then no longer accepts).
        """
        now = self._clock()
        with locked_state(self.path):
            state = self._reload()
            body = CertBody(
                role="owner",
                serial=b64url(secrets.token_bytes(SERIAL_SIZE)),
                vehicle_id=state.vehicle_id,
                subject_alg=algorithm,
                subject_key=public_key,
                entitlements=("drive", "unlock"),
                not_before=now,
                not_after=now + valid_for,
                label=label,
            )
            # Parse our own output once: it rejects a malformed public key before we store it.
            certificate = Certificate.parse(
                {
                    "body": body.to_json(),
                    "sig": b64url(self._private_key().sign(body.signed_bytes())),
                }
            )
            state.owner = (algorithm, public_key)
            self._save(state)
        return certificate

    def verify(self, attempt: AuthAttempt) -> UnlockResult:
        """Open (or start) if the chain, entitlements, time, revocation and signature all hold."""
        entitlement = ACTIONS.get(attempt.action)
        if entitlement is None:
            return UnlockResult(False, f"unknown action {attempt.action[:20]!r}")
        if not self._spend_nonce(attempt.nonce):
            return UnlockResult(False, "the challenge is unknown, expired or already used")
        state = self._state
        if state.owner is None:
            return UnlockResult(False, "the vehicle has no paired owner")
        try:
            leaf = verify_chain(
                attempt.chain,
                vehicle_id=state.vehicle_id,
                pairing_key=self.pairing_public_key,
                owner_key=state.owner,
            )
        except ChainError as exc:
            return UnlockResult(False, str(exc))
        revoked = set(state.revoked)
        if any(certificate.body.serial in revoked for certificate in attempt.chain):
            return UnlockResult(False, "this key has been revoked")
        now = self._clock()
        if now < leaf.not_before:
            return UnlockResult(False, "this key is not valid yet")
        if now >= leaf.not_after:
            return UnlockResult(False, "this key has expired")
        if entitlement not in leaf.entitlements:
            return UnlockResult(False, f"this key does not allow '{attempt.action}'")
        message = auth_message(state.vehicle_id, attempt.nonce, attempt.action)
        if not verify_signature(leaf.subject_alg, leaf.subject_key, attempt.signature, message):
            return UnlockResult(False, "the key's signature over the challenge is not valid")
        verb = "unlocked" if attempt.action == "unlock" else "started"
        return UnlockResult(True, f"{state.label} {verb}")

    def apply_revocation(self, serial: str, issued_at: int, signature: bytes) -> None:
        """Add ``serial`` to the revocation list, on the paired owner's signed order."""
        unb64url(serial, "revocation serial", size=SERIAL_SIZE)
        with locked_state(self.path):
            state = self._reload()
            if state.owner is None:
                raise ContentError("the vehicle has no paired owner", code="not-paired")
            message = revocation_message(state.vehicle_id, serial, issued_at)
            if not verify_signature(state.owner[0], state.owner[1], signature, message):
                raise ContentError(
                    "the revocation order is not signed by the vehicle's owner",
                    code="bad-signature",
                )
            if abs(self._clock() - issued_at) > 86400:
                raise ContentError("the revocation order is stale", code="stale-order")
            if serial not in state.revoked:
                if len(state.revoked) >= MAX_REVOKED:
                    raise ContentError("the revocation list is full", code="revocation-list-full")
                state.revoked.append(serial)
                self._save(state)

    def _private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._state.pairing_private)
