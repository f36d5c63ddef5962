"""A small in-memory wallet implementing ``WalletView`` with real keys (tests only).

The private keys stay inside :class:`MemoryKeyStore`, as in the real wallet: callers can only ask
for signatures and public keys.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tigress.wallet.api import (
    Credential,
    CredentialNotFound,
    KeyAlgorithm,
    KeyNotFound,
)

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class MemoryKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, tuple[KeyAlgorithm, PrivateKey, str]] = {}

    def generate(self, algorithm: KeyAlgorithm, *, label: str) -> str:
        key: PrivateKey
        if algorithm == "ed25519":
            key = Ed25519PrivateKey.generate()
        elif algorithm == "p256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        key_id = secrets.token_hex(8)
        self._keys[key_id] = (algorithm, key, label)
        return key_id

    def _get(self, key_id: str) -> tuple[KeyAlgorithm, PrivateKey, str]:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyNotFound(f"no key {key_id}") from None

    def public_key(self, key_id: str) -> bytes:
        _, key, _ = self._get(key_id)
        if isinstance(key, Ed25519PrivateKey):
            return key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        return key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def algorithm(self, key_id: str) -> KeyAlgorithm:
        return self._get(key_id)[0]

    def sign(self, key_id: str, data: bytes) -> bytes:
        _, key, _ = self._get(key_id)
        if isinstance(key, Ed25519PrivateKey):
            return key.sign(data)
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    def delete(self, key_id: str) -> None:
        self._get(key_id)
        del self._keys[key_id]

    def __len__(self) -> int:
        return len(self._keys)


class MemoryCredentialStore:
    def __init__(self) -> None:
        self._items: dict[str, Credential] = {}

    def add(self, credential: Credential) -> None:
        if credential.id in self._items:
            raise ValueError(f"duplicate credential id {credential.id}")
        self._items[credential.id] = _copy(credential)

    def get(self, credential_id: str) -> Credential:
        try:
            return _copy(self._items[credential_id])
        except KeyError:
            raise CredentialNotFound(f"no credential {credential_id}") from None

    def find(self, text: str) -> Credential:
        if text in self._items:
            return self.get(text)
        matches = [c for c in self._items.values() if c.id.startswith(text) or c.label == text]
        if len(matches) != 1:
            raise CredentialNotFound(f"no unique credential matches {text!r}")
        return _copy(matches[0])

    def list(self) -> list[Credential]:
        return [_copy(c) for c in self._items.values()]

    def update(self, credential: Credential) -> None:
        if credential.id not in self._items:
            raise CredentialNotFound(f"no credential {credential.id}")
        self._items[credential.id] = _copy(credential)

    def delete(self, credential_id: str) -> None:
        self.get(credential_id)
        del self._items[credential_id]


def _copy(credential: Credential) -> Credential:
    # A real wallet hands out fresh objects read from disk; so do we.
    return replace(credential, data=copy.deepcopy(dict(credential.data)))


@dataclass
class MemoryWallet:
    _keys: MemoryKeyStore = field(default_factory=MemoryKeyStore)
    _credentials: MemoryCredentialStore = field(default_factory=MemoryCredentialStore)

    @property
    def keys(self) -> MemoryKeyStore:
        return self._keys

    @property
    def credentials(self) -> MemoryCredentialStore:
        return self._credentials
