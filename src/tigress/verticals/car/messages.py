"""The three car-sharing messages, as Provisioning Information ``content`` objects.

1. ``tigress.car.key-creation-request.v1`` (owner -> friend)::

       {"request_id": b64url(16), "vehicle_id", "vehicle_label", "pairing_key": b64url(32),
        "entitlements": [...], "not_before": int, "not_after": int, "label": str,
        "owner_certificate": certificate}

2. ``tigress.car.key-signing-request.v1`` (friend -> owner)::

       {"request_id", "key_alg", "public_key", "proof"}

   ``proof`` is the new key's signature over ``"tigress/v1 car-ksr" NUL
   canonical-json({"key_alg", "public_key", "request_id", "vehicle_id"})`` (proof of possession,
   bound to this invitation's request and vehicle).

3. ``tigress.car.key-import.v1`` (owner -> friend)::

       {"request_id", "chain": [friend certificate, owner certificate]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tigress.verticals.car.certificates import (
    ENTITLEMENTS,
    Certificate,
    chain_json,
    parse_chain,
)
from tigress.verticals.common import (
    MAX_SIGNATURE_SIZE,
    ContentError,
    algorithm_field,
    b64url,
    exact_fields,
    expect_object,
    id_field,
    public_key_field,
    signing_input,
    string_set_field,
    text_field,
    unb64url,
    validity_fields,
)
from tigress.wallet.api import KeyAlgorithm

KEY_CREATION_REQUEST_FORMAT = "tigress.car.key-creation-request.v1"
KEY_SIGNING_REQUEST_FORMAT = "tigress.car.key-signing-request.v1"
KEY_IMPORT_FORMAT = "tigress.car.key-import.v1"
REQUEST_ID_SIZE = 16


def _request_id(obj: Mapping[str, Any], where: str) -> str:
    unb64url(obj.get("request_id"), f"{where}.request_id", size=REQUEST_ID_SIZE)
    return str(obj["request_id"])


@dataclass(frozen=True)
class KeyCreationRequest:
    request_id: str
    vehicle_id: str
    vehicle_label: str
    pairing_key: bytes
    entitlements: tuple[str, ...]
    not_before: int
    not_after: int
    label: str
    owner_certificate: Certificate

    def to_content(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "vehicle_id": self.vehicle_id,
            "vehicle_label": self.vehicle_label,
            "pairing_key": b64url(self.pairing_key),
            "entitlements": list(self.entitlements),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "label": self.label,
            "owner_certificate": self.owner_certificate.to_json(),
        }

    @classmethod
    def parse(cls, content: Any, where: str = "key creation request") -> KeyCreationRequest:
        obj = expect_object(content, where)
        exact_fields(
            obj,
            where,
            {
                "request_id",
                "vehicle_id",
                "vehicle_label",
                "pairing_key",
                "entitlements",
                "not_before",
                "not_after",
                "label",
                "owner_certificate",
            },
        )
        not_before, not_after = validity_fields(obj, where)
        return cls(
            request_id=_request_id(obj, where),
            vehicle_id=id_field(obj, "vehicle_id", where),
            vehicle_label=text_field(obj, "vehicle_label", where),
            pairing_key=public_key_field(obj, "pairing_key", where, "ed25519"),
            entitlements=string_set_field(obj, "entitlements", where, ENTITLEMENTS),
            not_before=not_before,
            not_after=not_after,
            label=text_field(obj, "label", where),
            owner_certificate=Certificate.parse(
                obj["owner_certificate"], f"{where}.owner_certificate"
            ),
        )


def proof_message(request_id: str, vehicle_id: str, algorithm: KeyAlgorithm, key: bytes) -> bytes:
    return signing_input(
        "car-ksr",
        {
            "key_alg": algorithm,
            "public_key": b64url(key),
            "request_id": request_id,
            "vehicle_id": vehicle_id,
        },
    )


@dataclass(frozen=True)
class KeySigningRequest:
    request_id: str
    key_alg: KeyAlgorithm
    public_key: bytes
    proof: bytes = field(repr=False)

    def to_content(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "key_alg": self.key_alg,
            "public_key": b64url(self.public_key),
            "proof": b64url(self.proof),
        }

    @classmethod
    def parse(cls, content: Any, where: str = "key signing request") -> KeySigningRequest:
        obj = expect_object(content, where)
        exact_fields(obj, where, {"request_id", "key_alg", "public_key", "proof"})
        algorithm = algorithm_field(obj, "key_alg", where)
        return cls(
            request_id=_request_id(obj, where),
            key_alg=algorithm,
            public_key=public_key_field(obj, "public_key", where, algorithm),
            proof=unb64url(obj["proof"], f"{where}.proof", max_size=MAX_SIGNATURE_SIZE),
        )


@dataclass(frozen=True)
class KeyImport:
    request_id: str
    chain: tuple[Certificate, ...]

    def to_content(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "chain": chain_json(self.chain)}

    @classmethod
    def parse(cls, content: Any, where: str = "key import") -> KeyImport:
        obj = expect_object(content, where)
        exact_fields(obj, where, {"request_id", "chain"})
        chain = parse_chain(obj["chain"], f"{where}.chain")
        if len(chain) != 2:
            raise ContentError(f"{where}.chain must hold the friend's and the owner's certificate")
        return cls(request_id=_request_id(obj, where), chain=tuple(chain))
