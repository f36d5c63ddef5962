"""Per-device keystore, credential store and transfer store (one encrypted SQLite file)."""

from tigress.wallet.api import (
    Credential,
    CredentialNotFound,
    CredentialOrigin,
    KeyNotFound,
    TransferNotFound,
    WalletCorrupted,
    WalletError,
    WalletLocked,
    WalletView,
    WrongPassphrase,
)
from tigress.wallet.sealing import KdfParameters
from tigress.wallet.transfers import OutgoingFrame, TransferRecord, TransferStatus, TransferStore
from tigress.wallet.wallet import Wallet, default_wallet_dir, new_credential_id

__all__ = [
    "Credential",
    "CredentialNotFound",
    "CredentialOrigin",
    "KdfParameters",
    "KeyNotFound",
    "OutgoingFrame",
    "TransferNotFound",
    "TransferRecord",
    "TransferStatus",
    "TransferStore",
    "Wallet",
    "WalletCorrupted",
    "WalletError",
    "WalletLocked",
    "WalletView",
    "WrongPassphrase",
    "default_wallet_dir",
    "new_credential_id",
]
