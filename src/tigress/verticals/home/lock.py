"""A home lock: the access point of scenario 1, holding one 256-bit symmetric key.

The lock challenges with a fresh nonce; a credential answers with
``HMAC-SHA256(key, "tigress/v1 home-lock" NUL lock-id NUL nonce)``.  Each nonce is accepted once:
pending nonces live in the lock's state file (at most :data:`MAX_PENDING`, each for
:data:`NONCE_LIFETIME` seconds), and ``verify`` removes the nonce whatever the outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tigress.verticals.common import (
    ContentError,
    b64url,
    exact_fields,
    id_field,
    int_field,
    locked_state,
    read_state_file,
    text_field,
    unb64url,
    write_state_file,
)

KEY_SIZE = 32
NONCE_SIZE = 32
NONCE_LIFETIME = 120
MAX_PENDING = 32
STATE_VERSION = 1
_MAX_TIME = 2**40
Clock = Callable[[], int]


def _system_clock() -> int:
    return int(time.time())


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
    pending: list[tuple[str, int]]  # (nonce b64url, expiry time), oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "lock_id": self.lock_id,
            "label": self.label,
            "key": b64url(self.key),
            "created": self.created,
            "generation": self.generation,
            "pending": [[nonce, expiry] for nonce, expiry in self.pending],
        }

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> _LockState:
        where = "home lock"
        exact_fields(
            obj, where, {"v", "lock_id", "label", "key", "created", "generation", "pending"}
        )
        if obj["v"] != STATE_VERSION:
            raise ContentError(f"{where} state version {obj['v']!r} is not supported")
        entries = obj["pending"]
        if not isinstance(entries, list) or len(entries) > MAX_PENDING:
            raise ContentError(f"{where}.pending must be a list of at most {MAX_PENDING} nonces")
        pending: list[tuple[str, int]] = []
        for entry in entries:
            if not isinstance(entry, list) or len(entry) != 2:
                raise ContentError(f"{where}.pending entries must be [nonce, expiry] pairs")
            unb64url(entry[0], f"{where}.pending nonce", size=NONCE_SIZE)
            expiry = int_field({"e": entry[1]}, "e", f"{where}.pending expiry", 0, _MAX_TIME)
            pending.append((entry[0], expiry))
        return cls(
            lock_id=id_field(obj, "lock_id", where),
            label=text_field(obj, "label", where),
            key=unb64url(obj["key"], f"{where}.key", size=KEY_SIZE),
            created=int_field(obj, "created", where, 0, _MAX_TIME),
            generation=int_field(obj, "generation", where, 1, 2**31),
            pending=pending,
        )


class HomeLock:
    """A lock whose state lives in a JSON file (it would be the lock's own flash memory)."""

    def __init__(self, path: Path, *, clock: Clock = _system_clock) -> None:
        self.path = Path(path)
        self._clock = clock
        self._state = _LockState.parse(read_state_file(self.path, "home lock"))

    def __repr__(self) -> str:
        return f"<HomeLock {self.lock_id} {self.label!r}>"

    @classmethod
    def create(cls, path: Path, label: str, *, clock: Clock = _system_clock) -> HomeLock:
        """Install a new lock with a fresh random key; refuses to overwrite an existing lock."""
        path = Path(path)
        text_field({"label": label}, "label", "home lock")
        state = _LockState(
            lock_id=b64url(secrets.token_bytes(16)),
            label=label,
            key=secrets.token_bytes(KEY_SIZE),
            created=clock(),
            generation=1,
            pending=[],
        )
        with locked_state(path):
            if path.exists():
                raise ContentError(f"a file already exists at {path}", code="already-exists")
            write_state_file(path, state.to_json())
        return cls(path, clock=clock)

    @classmethod
    def load(cls, path: Path, *, clock: Clock = _system_clock) -> HomeLock:
        return cls(path, clock=clock)

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

    def challenge(self) -> bytes:
        """A fresh single-use nonce, remembered until used or expired."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        with locked_state(self.path):
            state = self._reload()
            now = self._clock()
            pending = [(n, e) for n, e in state.pending if e > now]
            # Forget the oldest rather than refuse to work when many challenges go unanswered.
            pending = pending[-(MAX_PENDING - 1) :]
            pending.append((b64url(nonce), now + NONCE_LIFETIME))
            state.pending = pending
            write_state_file(self.path, state.to_json())
        return nonce

    def verify(self, nonce: bytes, response: bytes) -> bool:
        """Whether ``response`` answers ``nonce``; the nonce is spent either way."""
        key = b64url(nonce) if len(nonce) == NONCE_SIZE else None
        with locked_state(self.path):
            state = self._reload()
            now = self._clock()
            expiry = None
            for index, (pending_nonce, pending_expiry) in enumerate(state.pending):
                if key is not None and hmac.compare_digest(pending_nonce, key):
                    expiry = pending_expiry
                    del state.pending[index]
                    write_state_file(self.path, state.to_json())
                    break
        if expiry is None or expiry <= now:
            return False
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
            write_state_file(self.path, state.to_json())
        return state.key

    def _reload(self) -> _LockState:
        self._state = _LockState.parse(read_state_file(self.path, "home lock"))
        return self._state
