"""Car key certificates: a small canonical format, strictly parsed.

A certificate is the JSON object ``{"body": {...}, "sig": "<base64url>"}``.  The signature covers
``"tigress/v1 car-cert" NUL canonical-json(body)`` (canonical JSON as in ``tigress.protocol.codec``)
and is Ed25519, or ECDSA P-256/SHA-256 (DER) when the issuer's key is P-256.  Body fields, all
required::

    role          "owner" (issued by the vehicle's pairing key) | "friend" (issued by the owner)
    serial        base64url of 16 random bytes
    vehicle_id    the vehicle's identifier
    subject_alg   "ed25519" | "p256"
    subject_key   base64url raw public key (32 bytes, or a 65-byte uncompressed P-256 point)
    entitlements  sorted list from {"drive", "unlock"}
    not_before    Unix seconds
    not_after     Unix seconds, > not_before
    label         who or what the key is for (1..128 characters)

A chain is a list, leaf first: ``[owner]`` or ``[friend, owner]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tigress.verticals.common import (
    ContentError,
    algorithm_field,
    b64url,
    exact_fields,
    expect_object,
    id_field,
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

ENTITLEMENTS = frozenset({"unlock", "drive"})
SERIAL_SIZE = 16
CertRole = Literal["owner", "friend"]


class ChainError(ContentError):
    """A certificate chain that does not lead to the vehicle, or does not say what it should."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad-chain")


@dataclass(frozen=True)
class CertBody:
    role: CertRole
    serial: str
    vehicle_id: str
    subject_alg: KeyAlgorithm
    subject_key: bytes
    entitlements: tuple[str, ...]
    not_before: int
    not_after: int
    label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "serial": self.serial,
            "vehicle_id": self.vehicle_id,
            "subject_alg": self.subject_alg,
            "subject_key": b64url(self.subject_key),
            "entitlements": list(self.entitlements),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "label": self.label,
        }

    def signed_bytes(self) -> bytes:
        return signing_input("car-cert", self.to_json())

    @classmethod
    def parse(cls, value: Any, where: str) -> CertBody:
        obj = expect_object(value, where)
        exact_fields(
            obj,
            where,
            {
                "role",
                "serial",
                "vehicle_id",
                "subject_alg",
                "subject_key",
                "entitlements",
                "not_before",
                "not_after",
                "label",
            },
        )
        role = obj["role"]
        if role not in ("owner", "friend"):
            raise ContentError(f"{where}.role must be 'owner' or 'friend'")
        unb64url(obj["serial"], f"{where}.serial", size=SERIAL_SIZE)
        algorithm = algorithm_field(obj, "subject_alg", where)
        not_before, not_after = validity_fields(obj, where)
        return cls(
            role=role,
            serial=obj["serial"],
            vehicle_id=id_field(obj, "vehicle_id", where),
            subject_alg=algorithm,
            subject_key=public_key_field(obj, "subject_key", where, algorithm),
            entitlements=string_set_field(obj, "entitlements", where, ENTITLEMENTS),
            not_before=not_before,
            not_after=not_after,
            label=text_field(obj, "label", where),
        )


@dataclass(frozen=True)
class Certificate:
    body: CertBody
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body.to_json(), "sig": b64url(self.signature)}

    def verify(self, issuer_alg: KeyAlgorithm, issuer_key: bytes) -> bool:
        return verify_signature(issuer_alg, issuer_key, self.signature, self.body.signed_bytes())

    @classmethod
    def parse(cls, value: Any, where: str = "certificate") -> Certificate:
        body, signature = parse_signed_object(value, where, CertBody.parse)
        return cls(body=body, signature=signature)


def parse_chain(value: Any, where: str = "chain") -> list[Certificate]:
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise ContentError(f"{where} must be a list of one or two certificates")
    return [Certificate.parse(item, f"{where}[{index}]") for index, item in enumerate(value)]


def chain_json(chain: Sequence[Certificate]) -> list[dict[str, Any]]:
    return [certificate.to_json() for certificate in chain]


def verify_chain(
    chain: Sequence[Certificate],
    *,
    vehicle_id: str,
    pairing_key: bytes,
    owner_key: tuple[KeyAlgorithm, bytes] | None = None,
) -> CertBody:
    """Check signatures and constraints from the vehicle's pairing key down to the leaf.

    ``pairing_key`` is the vehicle's Ed25519 public key; ``owner_key`` (the vehicle's paired
    owner key, when the checker knows it) must be the owner certificate's subject.  Returns the
    leaf's body.  Time and revocation are checked by the caller, which knows the clock and list.
    """
    if not 1 <= len(chain) <= 2:
        raise ChainError("a chain holds the owner's certificate and at most one friend's")
    owner = chain[-1]
    if owner.body.role != "owner":
        raise ChainError("the chain does not end with the owner's certificate")
    if owner.body.vehicle_id != vehicle_id:
        raise ChainError("the owner's certificate is for another vehicle")
    if not owner.verify("ed25519", pairing_key):
        raise ChainError("the owner's certificate is not signed by this vehicle")
    if owner_key is not None and (
        owner.body.subject_alg != owner_key[0] or owner.body.subject_key != owner_key[1]
    ):
        raise ChainError("the owner's certificate is not for the owner paired with this vehicle")
    if len(chain) == 1:
        return owner.body
    friend = chain[0]
    if friend.body.role != "friend":
        raise ChainError("a certificate issued by the owner must have the role 'friend'")
    if friend.body.vehicle_id != vehicle_id:
        raise ChainError("the friend's certificate is for another vehicle")
    if not friend.verify(owner.body.subject_alg, owner.body.subject_key):
        raise ChainError("the friend's certificate is not signed by the owner's key")
    if not set(friend.body.entitlements) <= set(owner.body.entitlements):
        raise ChainError("the friend's certificate grants more than the owner holds")
    if (
        friend.body.not_before < owner.body.not_before
        or friend.body.not_after > owner.body.not_after
    ):
        raise ChainError("the friend's validity window exceeds the owner's")
    if friend.body.serial == owner.body.serial:
        raise ChainError("the friend's certificate reuses the owner's serial")
    return friend.body
