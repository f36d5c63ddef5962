"""What the rest of tigress may ask of a wallet: keys that never leave it, and credentials.

Verticals and the transfer runner depend on these protocols only; ``tigress.wallet.Wallet``
implements them on an SQLite file, encrypted at rest when the user sets a passphrase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

KeyAlgorithm = Literal["ed25519", "p256"]


class WalletError(Exception):
    """Base of every wallet error; the message is one sentence a user can act on."""


class KeyNotFound(WalletError):
    pass


class CredentialNotFound(WalletError):
    pass


class TransferNotFound(WalletError):
    pass


class WalletLocked(WalletError):
    """The wallet is protected by a passphrase and none was given."""


class WrongPassphrase(WalletError):
    """The passphrase does not unlock the wallet."""


class WalletCorrupted(WalletError):
    """The wallet file is damaged, of an unknown version, or was altered."""


class KeyStore(Protocol):
    """Private keys are created inside and never exported; callers ask for operations."""

    def generate(self, algorithm: KeyAlgorithm, *, label: str) -> str:
        """Create a key pair; returns its key id."""
        ...

    def public_key(self, key_id: str) -> bytes:
        """Raw public key: 32 bytes for Ed25519, 65-byte uncompressed X9.62 point for P-256."""
        ...

    def algorithm(self, key_id: str) -> KeyAlgorithm: ...

    def sign(self, key_id: str, data: bytes) -> bytes:
        """Ed25519 signature, or ECDSA P-256/SHA-256 in DER for P-256 keys."""
        ...

    def delete(self, key_id: str) -> None: ...


class CredentialOrigin(StrEnum):
    OWNED = "owned"  # the device is the credential's owner / provisioning authority (car owner)
    ISSUED = "issued"  # issued to this device by a provisioning entity (hotel guest)
    RECEIVED = "received"  # arrived through a transfer


@dataclass
class Credential:
    """One credential in the wallet.

    ``data`` is the vertical's own JSON object (it may hold secrets, e.g. a home lock's symmetric
    key: the wallet encrypts it at rest). ``key_id`` names a keystore key bound to the credential.
    """

    id: str
    vertical: str  # "home" | "hotel" | "car"
    format: str
    label: str
    origin: CredentialOrigin
    data: Mapping[str, Any] = field(repr=False)
    key_id: str | None = None
    created_at: datetime | None = None
    revoked: bool = False


class CredentialStore(Protocol):
    def add(self, credential: Credential) -> None: ...

    def get(self, credential_id: str) -> Credential:
        """Raises CredentialNotFound."""
        ...

    def find(self, text: str) -> Credential:
        """By id, unique id prefix, or exact label; raises CredentialNotFound with a hint."""
        ...

    def list(self) -> list[Credential]: ...

    def update(self, credential: Credential) -> None: ...

    def delete(self, credential_id: str) -> None: ...


class WalletView(Protocol):
    """The part of a wallet a vertical may use."""

    @property
    def keys(self) -> KeyStore: ...

    @property
    def credentials(self) -> CredentialStore: ...
