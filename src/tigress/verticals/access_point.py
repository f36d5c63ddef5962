"""What the home lock and the vehicle share: a JSON state file and single-use challenges.

An access point challenges with a fresh random nonce and remembers it in its state file (at most
:data:`MAX_PENDING`, each for :data:`NONCE_LIFETIME` seconds); a nonce is spent by the first
answer that names it, whatever the outcome, so an answer cannot be replayed.
"""

from __future__ import annotations

import hmac
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from tigress.verticals.common import (
    MAX_TIME,
    Clock,
    ContentError,
    b64url,
    int_field,
    locked_state,
    read_state_file,
    system_clock,
    unb64url,
    write_state_file,
)

NONCE_SIZE = 32
NONCE_LIFETIME = 120
MAX_PENDING = 32
PendingNonces = list[tuple[str, int]]  # (nonce b64url, expiry time), oldest first


def pending_to_json(pending: PendingNonces) -> list[list[str | int]]:
    return [[nonce, expiry] for nonce, expiry in pending]


def parse_pending(entries: Any, where: str) -> PendingNonces:
    """Parse a state file's ``pending`` list of ``[nonce, expiry]`` pairs."""
    if not isinstance(entries, list) or len(entries) > MAX_PENDING:
        raise ContentError(f"{where}.pending must be a list of at most {MAX_PENDING} nonces")
    pending: PendingNonces = []
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 2:
            raise ContentError(f"{where}.pending entries must be [nonce, expiry] pairs")
        unb64url(entry[0], f"{where}.pending nonce", size=NONCE_SIZE)
        expiry = int_field({"e": entry[1]}, "e", f"{where}.pending expiry", 0, MAX_TIME)
        pending.append((entry[0], expiry))
    return pending


class ChallengeState(Protocol):
    """A parsed state file: it keeps the pending nonces and serialises itself."""

    pending: PendingNonces

    def to_json(self) -> dict[str, Any]: ...


StateT = TypeVar("StateT", bound=ChallengeState)


class StatefulAccessPoint(ABC, Generic[StateT]):
    """An access point whose state lives in a JSON file (it would be the device's own flash)."""

    #: Names the device in error messages ("no vehicle at ...").
    what: str

    def __init__(self, path: Path, *, clock: Clock = system_clock) -> None:
        self.path = Path(path)
        self._clock = clock
        self._state = self._reload()

    @classmethod
    @abstractmethod
    def _parse_state(cls, obj: Mapping[str, Any]) -> StateT: ...

    @classmethod
    def load(cls, path: Path, *, clock: Clock = system_clock) -> Self:
        return cls(path, clock=clock)

    @classmethod
    def _install(cls, path: Path, state: StateT, clock: Clock) -> Self:
        """Write a new device's first state; refuses to overwrite an existing file."""
        with locked_state(path):
            if path.exists():
                raise ContentError(f"a file already exists at {path}", code="already-exists")
            write_state_file(path, state.to_json())
        return cls(path, clock=clock)

    def challenge(self) -> bytes:
        """A fresh single-use nonce, remembered until used or expired."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        with locked_state(self.path):
            state = self._reload()
            now = self._clock()
            # Forget the oldest rather than refuse to work when many challenges go unanswered.
            pending = [(n, e) for n, e in state.pending if e > now][-(MAX_PENDING - 1) :]
            pending.append((b64url(nonce), now + NONCE_LIFETIME))
            state.pending = pending
            self._save(state)
        return nonce

    def _spend_nonce(self, nonce: bytes) -> bool:
        """Whether ``nonce`` was pending and unexpired; it is no longer pending either way."""
        if len(nonce) != NONCE_SIZE:
            return False
        wanted = b64url(nonce)
        with locked_state(self.path):
            state = self._reload()
            now = self._clock()
            for index, (pending, expiry) in enumerate(state.pending):
                if hmac.compare_digest(pending, wanted):
                    del state.pending[index]
                    self._save(state)
                    return expiry > now
        return False

    def _reload(self) -> StateT:
        self._state = self._parse_state(read_state_file(self.path, self.what))
        return self._state

    def _save(self, state: StateT) -> None:
        write_state_file(self.path, state.to_json())
