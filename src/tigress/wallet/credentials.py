"""Credentials on the wallet database; each credential's ``data`` is sealed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from tigress.wallet.api import Credential, CredentialNotFound, CredentialOrigin, WalletError
from tigress.wallet.database import SealedStore, from_text, to_text, utc_now

_TABLE = "credentials"


def _encode_data(data: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(dict(data), sort_keys=True, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise WalletError("A credential's data must be a JSON object.") from exc


class SqliteCredentialStore(SealedStore):
    """:class:`tigress.wallet.api.CredentialStore` on the wallet database."""

    def _values(self, credential: Credential) -> tuple[object, ...]:
        sealed = self._sealer.seal(_TABLE, credential.id, "data", _encode_data(credential.data))
        return (
            credential.vertical,
            credential.format,
            credential.label,
            CredentialOrigin(credential.origin).value,
            sealed,
            credential.key_id,
            to_text(credential.created_at or utc_now()),
            int(credential.revoked),
            credential.id,
        )

    def add(self, credential: Credential) -> None:
        if not credential.id:
            raise WalletError("A credential needs an id.")
        try:
            with self._db.transaction() as tx:
                tx.execute(
                    "INSERT INTO credentials (vertical, format, label, origin, data, key_id,"
                    " created_at, revoked, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    self._values(credential),
                )
        except sqlite3.IntegrityError as exc:
            raise WalletError(f"A credential with id {credential.id!r} already exists.") from exc

    def _from_row(self, row: sqlite3.Row) -> Credential:
        raw = self._sealer.open(_TABLE, row["id"], "data", bytes(row["data"]))
        return Credential(
            id=row["id"],
            vertical=row["vertical"],
            format=row["format"],
            label=row["label"],
            origin=CredentialOrigin(row["origin"]),
            data=json.loads(raw),
            key_id=row["key_id"],
            created_at=from_text(row["created_at"]),
            revoked=bool(row["revoked"]),
        )

    def get(self, credential_id: str) -> Credential:
        rows = self._db.query("SELECT * FROM credentials WHERE id = ?", (credential_id,))
        if not rows:
            raise CredentialNotFound(f"No credential {credential_id!r} in this wallet.")
        return self._from_row(rows[0])

    def find(self, text: str) -> Credential:
        rows = self._db.query("SELECT * FROM credentials WHERE id = ?", (text,))
        if rows:
            return self._from_row(rows[0])
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.query(
            "SELECT * FROM credentials WHERE id LIKE ? ESCAPE '\\'", (escaped + "%",)
        )
        if len(rows) == 1:
            return self._from_row(rows[0])
        if len(rows) > 1:
            raise CredentialNotFound(
                f"{text!r} matches {len(rows)} credentials; give more of the id."
            )
        rows = self._db.query("SELECT * FROM credentials WHERE label = ?", (text,))
        if len(rows) == 1:
            return self._from_row(rows[0])
        if len(rows) > 1:
            raise CredentialNotFound(f"Several credentials are labelled {text!r}; use the id.")
        raise CredentialNotFound(
            f"No credential matches {text!r}; list them with 'tigress wallet list'."
        )

    def list(self) -> list[Credential]:
        rows = self._db.query("SELECT * FROM credentials ORDER BY created_at, id")
        return [self._from_row(row) for row in rows]

    def update(self, credential: Credential) -> None:
        with self._db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE credentials SET vertical = ?, format = ?, label = ?, origin = ?, data = ?,"
                " key_id = ?, created_at = ?, revoked = ? WHERE id = ?",
                self._values(credential),
            )
        if cursor.rowcount == 0:
            raise CredentialNotFound(f"No credential {credential.id!r} in this wallet.")

    def delete(self, credential_id: str) -> None:
        with self._db.transaction() as tx:
            cursor = tx.execute("DELETE FROM credentials WHERE id = ?", (credential_id,))
        if cursor.rowcount == 0:
            raise CredentialNotFound(f"No credential {credential_id!r} in this wallet.")
