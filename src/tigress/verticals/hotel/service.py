"""The hotel provisioning entity's logic on a persistent SQLite store (no HTTP here).

Every refusal is a :class:`HotelRefusal` with a stable slug and HTTP status, which the app turns
into ``application/problem+json``.  Secrets at rest: booking codes and share tokens are stored as
hashes only (both are 128/256-bit random, so a plain hash suffices); transaction PINs (low
entropy) as scrypt hashes with a per-token salt.  Single use is enforced by conditional
``UPDATE ... WHERE used/redeemed = 0`` inside ``BEGIN IMMEDIATE`` transactions, so it holds
across threads and processes sharing the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tigress.verticals.common import (
    Clock,
    ContentError,
    b64url,
    check_public_key,
    system_clock,
    verify_signature,
)
from tigress.verticals.hotel.formats import (
    RIGHTS,
    SERIAL_SIZE,
    TOKEN_SIZE,
    RoomKey,
    RoomKeyBody,
    check_in_proof_message,
    door_message,
    holder_request_message,
    redeem_proof_message,
    token_hash,
)
from tigress.wallet.api import KeyAlgorithm

DEFAULT_TOKEN_TTL = 600
MAX_TOKEN_TTL = 3600
DEFAULT_PIN_ATTEMPTS = 3
CHALLENGE_TTL = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bookings (
    code_hash BLOB PRIMARY KEY, room TEXT NOT NULL, guest TEXT NOT NULL,
    not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS room_keys (
    serial TEXT PRIMARY KEY, room TEXT NOT NULL, device_alg TEXT NOT NULL,
    device_key BLOB NOT NULL, rights TEXT NOT NULL, not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL, parent TEXT REFERENCES room_keys(serial),
    revoked INTEGER NOT NULL DEFAULT 0, issued_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS room_keys_parent ON room_keys(parent);
CREATE TABLE IF NOT EXISTS share_tokens (
    token_hash BLOB PRIMARY KEY, issuer_serial TEXT NOT NULL REFERENCES room_keys(serial),
    room TEXT NOT NULL, rights TEXT NOT NULL, expires_at INTEGER NOT NULL,
    pin_salt BLOB, pin_hash BLOB, pin_failures INTEGER NOT NULL DEFAULT 0,
    max_pin_failures INTEGER NOT NULL, dead INTEGER NOT NULL DEFAULT 0,
    redeemed INTEGER NOT NULL DEFAULT 0, redeemed_serial TEXT);
CREATE TABLE IF NOT EXISTS challenges (
    nonce_hash BLOB PRIMARY KEY, purpose TEXT NOT NULL, expires_at INTEGER NOT NULL);
"""

#: slug -> (HTTP status, title).  Stable: add, never rename.
REFUSALS: Mapping[str, tuple[int, str]] = {
    "malformed-request": (400, "The request is not valid"),
    "bad-proof": (400, "The proof of possession does not verify"),
    "unauthorized": (401, "The request is not authenticated"),
    "bad-challenge": (401, "The challenge is unknown, expired or already used"),
    "tx-pin-required": (403, "This share needs its transaction PIN"),
    "tx-pin-wrong": (403, "The transaction PIN is wrong"),
    "forbidden": (403, "This key may not do that"),
    "booking-unknown": (404, "No such booking"),
    "token-unknown": (404, "No such share token"),
    "key-unknown": (404, "No such room key"),
    "not-found": (404, "No such resource"),
    "booking-used": (409, "The booking was already checked in"),
    "token-already-redeemed": (409, "The share token was already redeemed"),
    "token-expired": (410, "The share token expired"),
    "token-dead": (410, "The share token is void (too many wrong PINs)"),
    "body-too-large": (413, "The request body is too large"),
    "unsupported-media-type": (415, "Send application/json"),
}


class HotelRefusal(Exception):
    def __init__(self, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(f"{slug}: {detail}")
        self.slug = slug
        self.status, self.title = REFUSALS[slug]
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True)
class ShareGrant:
    token: str
    expires_at: int
    room: str
    rights: tuple[str, ...]
    tx_pin_required: bool


def _normalise_pin(pin: str) -> bytes:
    text = unicodedata.normalize("NFKC", pin).strip()
    if not 4 <= len(text) <= 64:
        raise HotelRefusal("malformed-request", "a transaction PIN has 4 to 64 characters")
    return text.encode("utf-8")


def _pin_hash(pin: str, salt: bytes) -> bytes:
    # Memory-hard: a stolen database does not give the PINs away cheaply.
    return hashlib.scrypt(_normalise_pin(pin), salt=salt, n=2**14, r=8, p=1, dklen=32)


class HotelService:
    def __init__(self, db_path: Path, *, name: str = "Hotel", clock: Clock = system_clock) -> None:
        self.db_path = Path(db_path)
        self._clock = clock
        schema = sqlite3.connect(self.db_path, timeout=10)
        try:
            schema.execute("PRAGMA journal_mode=WAL")
            schema.executescript(_SCHEMA)  # commits by itself
        finally:
            schema.close()
        with self._transaction() as db:
            self._issuer = self._load_or_create_issuer(db)
            self.hotel_id = self._meta(
                db, "hotel_id", lambda: b64url(secrets.token_bytes(12)).encode()
            ).decode()
            self.name = self._meta(db, "name", name.encode).decode()
        self.issuer_public_key = self._issuer.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def __repr__(self) -> str:
        return f"<HotelService {self.name!r} {self.db_path}>"

    # -- storage ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def _meta(self, db: sqlite3.Connection, name: str, default: Callable[[], bytes]) -> bytes:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return bytes(row[0])
        value = default()
        db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
        return value

    def _load_or_create_issuer(self, db: sqlite3.Connection) -> Ed25519PrivateKey:
        raw = self._meta(
            db,
            "issuer_key",
            lambda: Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ),
        )
        return Ed25519PrivateKey.from_private_bytes(raw)

    # -- bookings and check-in ---------------------------------------------------------------

    def create_booking(self, room: str, guest: str, *, nights: int = 1) -> str:
        """Create a booking; returns its code (shown once; only its hash is stored)."""
        if not 1 <= nights <= 365:
            raise HotelRefusal("malformed-request", "a booking lasts 1 to 365 nights")
        code = b64url(secrets.token_bytes(16))
        now = self._clock()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO bookings (code_hash, room, guest, not_before, not_after) "
                "VALUES (?, ?, ?, ?, ?)",
                (self._booking_hash(code), room, guest, now, now + nights * 86400),
            )
        return code

    def check_in(
        self, booking_code: str, device_alg: KeyAlgorithm, device_key: bytes, proof: bytes
    ) -> RoomKey:
        """Issue the guest's room key to its device key, once per booking."""
        self._check_key(device_alg, device_key)
        message = check_in_proof_message(booking_code, device_alg, device_key)
        if not verify_signature(device_alg, device_key, proof, message):
            raise HotelRefusal("bad-proof", "the check-in is not signed by the device key")
        with self._transaction() as db:
            row = db.execute(
                "SELECT room, not_before, not_after FROM bookings WHERE code_hash = ?",
                (self._booking_hash(booking_code),),
            ).fetchone()
            if row is None:
                raise HotelRefusal("booking-unknown", "no booking has this code")
            updated = db.execute(
                "UPDATE bookings SET used = 1 WHERE code_hash = ? AND used = 0",
                (self._booking_hash(booking_code),),
            )
            if updated.rowcount != 1:
                raise HotelRefusal("booking-used", "this booking was already checked in")
            return self._issue(
                db,
                room=row[0],
                device_alg=device_alg,
                device_key=device_key,
                rights=("enter", "share"),
                not_before=row[1],
                not_after=row[2],
                parent=None,
            )

    # -- challenges ------------------------------------------------------------------------------

    def new_challenge(self, purpose: str) -> str:
        nonce = b64url(secrets.token_bytes(32))
        now = self._clock()
        with self._transaction() as db:
            db.execute("DELETE FROM challenges WHERE expires_at <= ?", (now,))
            db.execute(
                "INSERT INTO challenges (nonce_hash, purpose, expires_at) VALUES (?, ?, ?)",
                (self._nonce_hash(nonce), purpose, now + CHALLENGE_TTL),
            )
        return nonce

    def _spend_challenge(self, db: sqlite3.Connection, nonce: str, purpose: str) -> bool:
        deleted = db.execute(
            "DELETE FROM challenges WHERE nonce_hash = ? AND purpose = ? AND expires_at > ?",
            (self._nonce_hash(nonce), purpose, self._clock()),
        )
        return deleted.rowcount == 1

    # -- holder requests: share and revoke ---------------------------------------------------

    def request_share(
        self,
        room_key: RoomKey,
        challenge: str,
        signature: bytes,
        params: Mapping[str, Any],
    ) -> ShareGrant:
        ttl, rights, pin, attempts = _share_params(params, room_key.body.rights)
        if "share" not in room_key.body.rights:
            raise HotelRefusal("forbidden", "this room key may not be shared")
        with self._transaction() as db:
            self._authenticate_holder(
                db, room_key, "share", challenge=challenge, signature=signature, params=params
            )
            token = b64url(secrets.token_bytes(TOKEN_SIZE))
            expires_at = min(self._clock() + ttl, room_key.body.not_after)
            salt = secrets.token_bytes(16) if pin is not None else None
            db.execute(
                "INSERT INTO share_tokens (token_hash, issuer_serial, room, rights, expires_at, "
                "pin_salt, pin_hash, max_pin_failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash(token),
                    room_key.body.serial,
                    room_key.body.room,
                    ",".join(rights),
                    expires_at,
                    salt,
                    None if pin is None or salt is None else _pin_hash(pin, salt),
                    attempts,
                ),
            )
        return ShareGrant(token, expires_at, room_key.body.room, rights, pin is not None)

    def revoke(
        self, room_key: RoomKey, challenge: str, signature: bytes, params: Mapping[str, Any]
    ) -> list[str]:
        """Revoke a key and every key derived from it; returns the serials revoked."""
        target = params.get("serial")
        if set(params) != {"serial"} or not isinstance(target, str) or len(target) > 64:
            raise HotelRefusal("malformed-request", "a revocation names exactly one 'serial'")
        with self._transaction() as db:
            self._authenticate_holder(
                db,
                room_key,
                "revoke",
                challenge=challenge,
                signature=signature,
                params=params,
                allow_revoked=True,
            )
            if db.execute("SELECT 1 FROM room_keys WHERE serial = ?", (target,)).fetchone() is None:
                raise HotelRefusal("key-unknown", "no room key has that serial")
            if room_key.body.serial not in self._ancestry(db, target):
                raise HotelRefusal(
                    "forbidden", "only a key's holder or the key it was shared from may revoke it"
                )
            revoked = self._subtree(db, target)
            db.executemany(
                "UPDATE room_keys SET revoked = 1 WHERE serial = ?", [(s,) for s in revoked]
            )
            return revoked

    def _authenticate_holder(
        self,
        db: sqlite3.Connection,
        room_key: RoomKey,
        action: str,
        *,
        challenge: str,
        signature: bytes,
        params: Mapping[str, Any],
        allow_revoked: bool = False,
    ) -> None:
        problem = self._key_problem(db, room_key, allow_revoked=allow_revoked)
        if problem is not None:
            raise HotelRefusal("unauthorized", problem)
        if not self._spend_challenge(db, challenge, "holder"):
            raise HotelRefusal("bad-challenge", "ask for a fresh challenge and sign it")
        body = room_key.body
        try:
            message = holder_request_message(action, challenge, body.serial, dict(params))
        except ContentError as exc:
            raise HotelRefusal("malformed-request", str(exc)) from None
        if not verify_signature(body.device_alg, body.device_key, signature, message):
            raise HotelRefusal("unauthorized", "the request is not signed by the room key's device")

    # -- redemption ------------------------------------------------------------------------------

    def redeem(
        self,
        token: str,
        device_alg: KeyAlgorithm,
        device_key: bytes,
        proof: bytes,
        tx_pin: str | None,
    ) -> RoomKey:
        """Exchange a share token for the receiver's own room key, exactly once."""
        self._check_key(device_alg, device_key)
        if not verify_signature(
            device_alg, device_key, proof, redeem_proof_message(token, device_alg, device_key)
        ):
            raise HotelRefusal("bad-proof", "the proof of possession does not verify")
        wanted = token_hash(token)
        pin_failed: HotelRefusal | None = None
        with self._transaction() as db:
            row = db.execute(
                "SELECT token_hash, issuer_serial, room, rights, expires_at, pin_salt, pin_hash, "
                "pin_failures, max_pin_failures, dead, redeemed FROM share_tokens "
                "WHERE token_hash = ?",
                (wanted,),
            ).fetchone()
            if row is None or not hmac.compare_digest(bytes(row[0]), wanted):
                raise HotelRefusal("token-unknown", "no share has this token")
            issuer, room, rights, expires_at, salt, pin_hash, failures, limit, dead, redeemed = row[
                1:
            ]
            if redeemed:
                raise HotelRefusal("token-already-redeemed", "token already redeemed")
            if dead:
                raise HotelRefusal("token-dead", "the share is void after too many wrong PINs")
            if self._clock() >= expires_at:
                raise HotelRefusal("token-expired", "the share token expired")
            if pin_hash is not None:
                if tx_pin is None:
                    raise HotelRefusal(
                        "tx-pin-required",
                        "enter the PIN the sender gave you",
                        attempts_left=limit - failures,
                    )
                if not hmac.compare_digest(_pin_hash(tx_pin, bytes(salt)), bytes(pin_hash)):
                    failures += 1
                    db.execute(
                        "UPDATE share_tokens SET pin_failures = ?, dead = ? WHERE token_hash = ?",
                        (failures, int(failures >= limit), wanted),
                    )
                    left = max(limit - failures, 0)
                    # Committed below: the failure must count even though we refuse.
                    pin_failed = HotelRefusal(
                        "tx-pin-wrong",
                        f"wrong PIN; {left} attempt(s) left"
                        if left
                        else "wrong PIN; no attempts left, the share is now void",
                        attempts_left=left,
                    )
            if pin_failed is None:
                parent = self._key_row(db, issuer)
                if parent is None or parent["revoked"]:
                    raise HotelRefusal("forbidden", "the key this share came from was revoked")
                updated = db.execute(
                    "UPDATE share_tokens SET redeemed = 1 WHERE token_hash = ? "
                    "AND redeemed = 0 AND dead = 0",
                    (wanted,),
                )
                if updated.rowcount != 1:
                    raise HotelRefusal("token-already-redeemed", "token already redeemed")
                key = self._issue(
                    db,
                    room=room,
                    device_alg=device_alg,
                    device_key=device_key,
                    rights=tuple(rights.split(",")),
                    not_before=max(self._clock(), parent["not_before"]),
                    not_after=parent["not_after"],
                    parent=issuer,
                )
                db.execute(
                    "UPDATE share_tokens SET redeemed_serial = ? WHERE token_hash = ?",
                    (key.body.serial, wanted),
                )
                return key
        raise pin_failed

    # -- the door --------------------------------------------------------------------------------

    def open_door(
        self, room: str, room_key: RoomKey, nonce: str, signature: bytes
    ) -> tuple[bool, str]:
        """The door's decision: (opened, reason)."""
        with self._transaction() as db:
            if not self._spend_challenge(db, nonce, f"door:{room}"):
                return False, "the door's challenge is unknown, expired or already used"
            problem = self._key_problem(db, room_key)
            if problem is not None:
                return False, problem
            body = room_key.body
            if body.room != room:
                return False, f"this key is for room {body.room}, not {room}"
            if "enter" not in body.rights:
                return False, "this key does not open doors"
            if not verify_signature(
                body.device_alg, body.device_key, signature, door_message(room, nonce, body.serial)
            ):
                return False, "the key's signature over the challenge is not valid"
        return True, f"room {room} unlocked"

    # -- helpers ---------------------------------------------------------------------------------

    def _key_problem(
        self, db: sqlite3.Connection, room_key: RoomKey, *, allow_revoked: bool = False
    ) -> str | None:
        if not room_key.verify(self.issuer_public_key) or room_key.body.hotel != self.hotel_id:
            return "the room key was not issued by this hotel"
        row = self._key_row(db, room_key.body.serial)
        if row is None:
            return "the room key is unknown to this hotel"
        if row["revoked"] and not allow_revoked:
            return "the room key has been revoked"
        now = self._clock()
        if now < room_key.body.not_before:
            return "the room key is not valid yet"
        if now >= room_key.body.not_after:
            return "the room key has expired"
        return None

    def _key_row(self, db: sqlite3.Connection, serial: str) -> dict[str, Any] | None:
        row = db.execute(
            "SELECT revoked, not_before, not_after, parent FROM room_keys WHERE serial = ?",
            (serial,),
        ).fetchone()
        if row is None:
            return None
        return {
            "revoked": bool(row[0]),
            "not_before": row[1],
            "not_after": row[2],
            "parent": row[3],
        }

    def _ancestry(self, db: sqlite3.Connection, serial: str) -> list[str]:
        chain: list[str] = []
        current: str | None = serial
        while current is not None and len(chain) < 64:
            chain.append(current)
            row = self._key_row(db, current)
            current = None if row is None else row["parent"]
        return chain

    def _subtree(self, db: sqlite3.Connection, serial: str) -> list[str]:
        found, frontier = [serial], [serial]
        while frontier and len(found) < 10_000:
            children = [
                r[0]
                for parent in frontier
                for r in db.execute("SELECT serial FROM room_keys WHERE parent = ?", (parent,))
            ]
            found += children
            frontier = children
        return found

    def _issue(
        self,
        db: sqlite3.Connection,
        *,
        room: str,
        device_alg: KeyAlgorithm,
        device_key: bytes,
        rights: tuple[str, ...],
        not_before: int,
        not_after: int,
        parent: str | None,
    ) -> RoomKey:
        body = RoomKeyBody(
            hotel=self.hotel_id,
            serial=b64url(secrets.token_bytes(SERIAL_SIZE)),
            room=room,
            device_alg=device_alg,
            device_key=device_key,
            rights=tuple(sorted(rights)),
            not_before=not_before,
            not_after=not_after,
            parent=parent,
        )
        db.execute(
            "INSERT INTO room_keys (serial, room, device_alg, device_key, rights, not_before, "
            "not_after, parent, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body.serial,
                room,
                device_alg,
                device_key,
                ",".join(body.rights),
                not_before,
                not_after,
                parent,
                self._clock(),
            ),
        )
        return RoomKey(body, self._issuer.sign(body.signed_bytes()))

    @staticmethod
    def _check_key(algorithm: KeyAlgorithm, key: bytes) -> None:
        try:
            check_public_key(algorithm, key, "device_key")
        except ContentError as exc:
            raise HotelRefusal("malformed-request", str(exc)) from None

    @staticmethod
    def _booking_hash(code: str) -> bytes:
        return hashlib.sha256(b"tigress/v1 hotel-booking\x00" + code.encode("utf-8")).digest()

    @staticmethod
    def _nonce_hash(nonce: str) -> bytes:
        return hashlib.sha256(nonce.encode("ascii", "replace")).digest()


def _share_params(
    params: Mapping[str, Any], held: tuple[str, ...]
) -> tuple[int, tuple[str, ...], str | None, int]:
    """Validate a share request's parameters: ttl, rights, tx_pin, pin_attempts (all optional)."""
    unknown = set(params) - {"ttl", "rights", "tx_pin", "pin_attempts"}
    if unknown:
        raise HotelRefusal(
            "malformed-request", f"unknown share parameter(s): {sorted(unknown)[:5]}"
        )
    ttl = params.get("ttl", DEFAULT_TOKEN_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= MAX_TOKEN_TTL:
        raise HotelRefusal("malformed-request", f"ttl must be 60 to {MAX_TOKEN_TTL} seconds")
    rights = params.get("rights", ["enter"])
    if (
        not isinstance(rights, list)
        or not rights
        or not all(isinstance(r, str) and r in RIGHTS for r in rights)
        or rights != sorted(set(rights))
    ):
        raise HotelRefusal("malformed-request", "rights must be a sorted list from enter, share")
    if not set(rights) <= set(held):
        raise HotelRefusal("forbidden", "a share cannot grant more rights than the key holds")
    pin = params.get("tx_pin")
    if pin is not None:
        if not isinstance(pin, str):
            raise HotelRefusal("malformed-request", "tx_pin must be a string")
        _normalise_pin(pin)
    attempts = params.get("pin_attempts", DEFAULT_PIN_ATTEMPTS)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
        raise HotelRefusal("malformed-request", "pin_attempts must be 1 to 10")
    return ttl, tuple(rights), pin, attempts
