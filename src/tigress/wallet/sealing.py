"""Encryption at rest: one random data-encryption key (DEK) seals every secret column.

Each sealed value is ``nonce(12) || AES-256-GCM(ciphertext || tag)`` with associated data
``"tigress-wallet/v1" || table || row id || column``, so a value copied to another row, table or
column no longer opens.  With a passphrase the DEK is wrapped (AES-256-GCM) under a key derived
by a memory-hard KDF: Argon2id where the installed ``cryptography`` offers it, else scrypt.
Without a passphrase the DEK is stored as is, and the file's permissions are the only protection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tigress.wallet.api import WalletCorrupted, WrongPassphrase

DEK_SIZE = 32
NONCE_SIZE = 12
SALT_SIZE = 16
_AAD_PREFIX = b"tigress-wallet/v1"
_WRAP_AAD = b"tigress-wallet/v1 dek wrap"

try:  # Argon2id arrived in cryptography 44; older versions fall back to scrypt.
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id as _Argon2id
except ImportError:  # pragma: no cover - depends on the installed version
    _Argon2id = None  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class KdfParameters:
    """How the passphrase key is derived; stored next to the wrapped DEK."""

    algorithm: str  # "argon2id" | "scrypt"
    salt: bytes = field(repr=False)
    # argon2id: memory in KiB, iterations (time cost), lanes; scrypt: n, r, p
    cost: dict[str, int] = field(default_factory=dict)

    @classmethod
    def recommended(cls, *, memory_kib: int = 65536, iterations: int = 3) -> KdfParameters:
        salt = os.urandom(SALT_SIZE)
        if _Argon2id is not None:
            return cls(
                "argon2id", salt, {"memory": memory_kib, "iterations": iterations, "lanes": 1}
            )
        return cls("scrypt", salt, {"n": 1 << 15, "r": 8, "p": 1})

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "salt": self.salt.hex(), "cost": dict(self.cost)}

    @classmethod
    def from_dict(cls, value: Any) -> KdfParameters:
        try:
            algorithm = value["algorithm"]
            salt = bytes.fromhex(value["salt"])
            cost = {str(k): int(v) for k, v in value["cost"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WalletCorrupted("The wallet's key-derivation settings are damaged.") from exc
        if algorithm not in ("argon2id", "scrypt") or len(salt) != SALT_SIZE:
            raise WalletCorrupted("The wallet's key-derivation settings are damaged.")
        return cls(algorithm, salt, cost)

    def derive(self, passphrase: str) -> bytes:
        secret = passphrase.encode("utf-8")
        if self.algorithm == "argon2id":
            if _Argon2id is None:
                raise WalletCorrupted(
                    "This wallet needs Argon2id, which the installed cryptography lacks."
                )
            return _Argon2id(
                salt=self.salt,
                length=DEK_SIZE,
                iterations=self.cost["iterations"],
                lanes=self.cost["lanes"],
                memory_cost=self.cost["memory"],
            ).derive(secret)
        return Scrypt(
            salt=self.salt, length=DEK_SIZE, n=self.cost["n"], r=self.cost["r"], p=self.cost["p"]
        ).derive(secret)


def new_dek() -> bytes:
    return os.urandom(DEK_SIZE)


def wrap_dek(dek: bytes, kek: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, dek, _WRAP_AAD)


def unwrap_dek(wrapped: bytes, kek: bytes) -> bytes:
    try:
        dek = AESGCM(kek).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], _WRAP_AAD)
    except (InvalidTag, ValueError) as exc:
        raise WrongPassphrase("The passphrase does not unlock this wallet.") from exc
    if len(dek) != DEK_SIZE:
        raise WalletCorrupted("The wallet's key is damaged.")
    return dek


class Sealer:
    """Seals and opens column values under the DEK, bound to where they are stored."""

    def __init__(self, dek: bytes) -> None:
        if len(dek) != DEK_SIZE:
            raise WalletCorrupted("The wallet's key is damaged.")
        self._aead = AESGCM(dek)

    def __repr__(self) -> str:
        return "<Sealer>"

    @staticmethod
    def _aad(table: str, row_id: str, column: str) -> bytes:
        parts = (table.encode(), row_id.encode(), column.encode())
        return _AAD_PREFIX + b"".join(len(p).to_bytes(2, "big") + p for p in parts)

    def seal(self, table: str, row_id: str, column: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, self._aad(table, row_id, column))

    def open(self, table: str, row_id: str, column: str, sealed: bytes) -> bytes:
        if len(sealed) < NONCE_SIZE + 16:
            raise WalletCorrupted(f"A sealed value in {table} is truncated.")
        try:
            return self._aead.decrypt(
                sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], self._aad(table, row_id, column)
            )
        except InvalidTag as exc:
            raise WalletCorrupted(
                f"A sealed value in {table} does not authenticate: the wallet file was altered."
            ) from exc
