"""Private keys that never leave the wallet: callers get public keys and signatures only."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tigress.wallet.api import KeyAlgorithm, KeyNotFound, WalletError
from tigress.wallet.database import SealedStore, to_text, utc_now

_TABLE = "keys"
_ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ed25519", "p256")

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _private_bytes(key: PrivateKey) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_bytes(key: PrivateKey) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class SqliteKeyStore(SealedStore):
    """:class:`tigress.wallet.api.KeyStore` on the wallet database; private keys are sealed."""

    def generate(self, algorithm: KeyAlgorithm, *, label: str) -> str:
        key: PrivateKey
        if algorithm == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "p256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise WalletError(f"Unsupported key algorithm {algorithm!r}; use ed25519 or p256.")
        key_id = "k-" + secrets.token_hex(8)
        sealed = self._sealer.seal(_TABLE, key_id, "private_key", _private_bytes(key))
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO keys (id, algorithm, label, public_key, private_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, algorithm, label, _public_bytes(key), sealed, to_text(utc_now())),
            )
        return key_id

    def _row(self, key_id: str) -> tuple[KeyAlgorithm, bytes, bytes]:
        rows = self._db.query(
            "SELECT algorithm, public_key, private_key FROM keys WHERE id = ?", (key_id,)
        )
        if not rows:
            raise KeyNotFound(f"No key {key_id!r} in this wallet.")
        algorithm = rows[0]["algorithm"]
        if algorithm not in _ALGORITHMS:
            raise WalletError(f"Key {key_id!r} has an unknown algorithm.")
        return algorithm, bytes(rows[0]["public_key"]), bytes(rows[0]["private_key"])

    def public_key(self, key_id: str) -> bytes:
        return self._row(key_id)[1]

    def algorithm(self, key_id: str) -> KeyAlgorithm:
        return self._row(key_id)[0]

    def labels(self) -> dict[str, str]:
        """Key id -> label, for listings."""
        return {row["id"]: row["label"] for row in self._db.query("SELECT id, label FROM keys")}

    def sign(self, key_id: str, data: bytes) -> bytes:
        algorithm, _, sealed = self._row(key_id)
        raw = self._sealer.open(_TABLE, key_id, "private_key", sealed)
        if algorithm == "ed25519":
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw).sign(data)
        key = serialization.load_der_private_key(raw, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise WalletError(f"Key {key_id!r} is damaged.")
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    def delete(self, key_id: str) -> None:
        with self._db.transaction() as tx:
            cursor = tx.execute("DELETE FROM keys WHERE id = ?", (key_id,))
        if cursor.rowcount == 0:
            raise KeyNotFound(f"No key {key_id!r} in this wallet.")
