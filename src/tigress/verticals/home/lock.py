"""A home lock: the access point of scenario 1, holding one 256-bit symmetric key.

The lock challenges with a fresh nonce; a credential answers with
``HMAC-SHA256(key, "tigress/v1 home-lock" NUL lock-id NUL nonce)``.  Each nonce is accepted once:
pending nonces live in the lock's state file (see :mod:`tigress.verticals.access_point`), and
``verify`` removes the nonce whatever the outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tigress.verticals.access_point import (
    PendingNonces,
    StatefulAccessPoint,
    parse_pending,
    pending_to_json,
)
from tigress.verticals.common import (
    MAX_TIME,
    Clock,
    ContentError,
    b64url,
    exact_fields,
    id_field,
    int_field,
    locked_state,
    system_clock,
    text_field,
    unb64url,
)

KEY_SIZE = 32
STATE_VERSION = 1


def home_response(key: bytes, lock_id: str, nonce: bytes) -> bytes:
    """The answer a credential gives to the lock's challenge."""
    message = b"tigress/v1 home-lock\x00" + lock_id.encode("ascii") + b"\x00" + nonce
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass
class _LockState:
    lock_id: str
    label: str
    key: bytes = field(repr=False)
    created: int
    generation: int  # incremented by every rotation
    pending: PendingNonces

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "lock_id": self.lock_id,
            "label": self.label,
            "key": b64url(self.key),
            "created": self.created,
            "generation": self.generation,
            "pending": pending_to_json(self.pending),
        }

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> _LockState:
        where = "home lock"
        exact_fields(
            obj, where, {"v", "lock_id", "label", "key", "created", "generation", "pending"}
        )
        if obj["v"] != STATE_VERSION:
            raise ContentError(f"{where} state version {obj['v']!r} is not supported")
        return cls(
            lock_id=id_field(obj, "lock_id", where),
            label=text_field(obj, "label", where),
            key=unb64url(obj["key"], f"{where}.key", size=KEY_SIZE),
            created=int_field(obj, "created", where, 0, MAX_TIME),
            generation=int_field(obj, "generation", where, 1, 2**31),
            pending=parse_pending(obj["pending"], where),
        )


class HomeLock(StatefulAccessPoint[_LockState]):
    """A lock whose state lives in a JSON file (it would be the lock's own flash memory)."""

    what = "home lock"

    def __repr__(self) -> str:
        return f"<HomeLock {self.lock_id} {self.label!r}>"

    @classmethod
    def _parse_state(cls, obj: Mapping[str, Any]) -> _LockState:
        return _LockState.parse(obj)

    @classmethod
    def create(cls, path: Path, label: str, *, clock: Clock = system_clock) -> HomeLock:
        """Install a new lock with a fresh random key; refuses to overwrite an existing lock."""
        text_field({"label": label}, "label", "home lock")
        state = _LockState(
            lock_id=b64url(secrets.token_bytes(16)),
            label=label,
            key=secrets.token_bytes(KEY_SIZE),
            created=clock(),
            generation=1,
            pending=[],
        )
        return cls._install(Path(path), state, clock)

    @property
    def lock_id(self) -> str:
        return self._state.lock_id

    @property
    def label(self) -> str:
        return self._state.label

    @property
    def generation(self) -> int:
        return self._state.generation

    def key_for_owner(self) -> bytes:
        """The key, for the setup that puts the first credential in the owner's wallet."""
        return self._state.key

    def verify(self, nonce: bytes, response: bytes) -> bool:
        """Whether ``response`` answers ``nonce``; the nonce is spent either way."""
        if not self._spend_nonce(nonce):
            return False
        state = self._state
        expected = home_response(state.key, state.lock_id, nonce)
        return hmac.compare_digest(expected, response)

    def rotate(self) -> bytes:
        """Replace the key: every existing copy of the credential stops working.

        Returns the new key so the owner can set up a fresh credential.
        """
        with locked_state(self.path):
            state = self._reload()
            state.key = secrets.token_bytes(KEY_SIZE)
            state.generation += 1
            state.pending = []
            self._save(state)
        return state.key
