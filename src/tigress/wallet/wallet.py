"""A device's wallet: keys, credentials and transfers in one SQLite file in one directory."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from types import TracebackType

import platformdirs

from tigress.wallet.api import WalletCorrupted, WalletLocked
from tigress.wallet.credentials import SqliteCredentialStore
from tigress.wallet.database import Database, create_database, open_database
from tigress.wallet.keystore import SqliteKeyStore
from tigress.wallet.sealing import KdfParameters, Sealer, new_dek, unwrap_dek, wrap_dek
from tigress.wallet.transfers import TransferStore

WALLET_ENV = "TIGRESS_WALLET"


def default_wallet_dir() -> Path:
    """``$TIGRESS_WALLET``, else the user's data directory / ``wallet``."""
    chosen = os.environ.get(WALLET_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return Path(platformdirs.user_data_dir("tigress", appauthor=False)) / "wallet"


def new_credential_id() -> str:
    """A short random id for a new credential."""
    return "c-" + secrets.token_hex(6)


class Wallet:
    """Implements :class:`tigress.wallet.api.WalletView` (and holds the transfer store).

    Use :meth:`create` or :meth:`open`, as a context manager or with :meth:`close`.
    """

    def __init__(self, directory: Path, database: Database, dek: bytes, *, protected: bool):
        self.directory = directory
        self._db = database
        sealer = Sealer(dek)
        self._keys = SqliteKeyStore(database, sealer)
        self._credentials = SqliteCredentialStore(database, sealer)
        self._transfers = TransferStore(database, sealer)
        self.passphrase_protected = protected

    def __repr__(self) -> str:
        return f"<Wallet {self.directory}>"

    @classmethod
    def create(
        cls,
        directory: Path | str,
        passphrase: str | None = None,
        *,
        kdf: KdfParameters | None = None,
    ) -> Wallet:
        """Make a new wallet; with a passphrase its key is wrapped by a memory-hard KDF."""
        path = Path(directory)
        database = create_database(path)
        dek = new_dek()
        if passphrase:
            parameters = kdf or KdfParameters.recommended()
            wrapped = wrap_dek(dek, parameters.derive(passphrase))
            meta = {
                "dek_protection": "passphrase",
                "kdf": json.dumps(parameters.to_dict()),
                "dek": base64.b64encode(wrapped).decode(),
            }
        else:
            meta = {"dek_protection": "none", "dek": base64.b64encode(dek).decode()}
        with database.transaction() as tx:
            tx.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", list(meta.items()))
        return cls(path, database, dek, protected=bool(passphrase))

    @classmethod
    def open(cls, directory: Path | str, passphrase: str | None = None) -> Wallet:
        """Open an existing wallet; raises WalletLocked / WrongPassphrase / WalletCorrupted."""
        path = Path(directory)
        database = open_database(path)
        try:
            dek, protected = _unlock(database, passphrase)
        except BaseException:
            database.close()
            raise
        return cls(path, database, dek, protected=protected)

    @property
    def keys(self) -> SqliteKeyStore:
        return self._keys

    @property
    def credentials(self) -> SqliteCredentialStore:
        return self._credentials

    @property
    def transfers(self) -> TransferStore:
        return self._transfers

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Wallet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _unlock(database: Database, passphrase: str | None) -> tuple[bytes, bool]:
    """The wallet's data-encryption key, and whether a passphrase protects it."""
    protection = database.meta("dek_protection")
    stored = database.meta("dek")
    if stored is None or protection not in ("none", "passphrase"):
        raise WalletCorrupted("The wallet's key record is missing or damaged.")
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError as exc:
        raise WalletCorrupted("The wallet's key record is damaged.") from exc
    if protection == "none":
        return raw, False
    if not passphrase:
        raise WalletLocked(
            "This wallet is protected by a passphrase; give it with --passphrase "
            "or TIGRESS_PASSPHRASE."
        )
    try:
        kdf_value = json.loads(database.meta("kdf") or "")
    except ValueError as exc:
        raise WalletCorrupted("The wallet's key-derivation settings are damaged.") from exc
    parameters = KdfParameters.from_dict(kdf_value)
    return unwrap_dek(raw, parameters.derive(passphrase)), True
