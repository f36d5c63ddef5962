"""The mailbox rules: who may do what, when, and what a request changes.

The store holds data and performs atomic conditional writes; the ASGI layer only translates HTTP;
everything in between lives here.  Errors are raised as :class:`ProblemError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from tigress.relay.config import RelayConfig
from tigress.relay.keys import RelayKeys
from tigress.relay.metrics import RelayMetrics
from tigress.relay.notify.base import NotificationTokenError, PushDispatcher
from tigress.relay.problems import ProblemError, invalid_field
from tigress.relay.stores.base import (
    AppendResult,
    DisplayInformation,
    MailboxState,
    MailboxStore,
    NewMailbox,
    Side,
    StoredMessage,
    SweepResult,
    WriteStatus,
)
from tigress.relay.stores.base import side_of as _side_of
from tigress.relay.validation import (
    CreateMailboxRequest,
    MailboxId,
    NotificationToken,
    UpdateMailboxRequest,
)

_log = logging.getLogger("tigress.relay.service")
# An idle event stream re-reads its mailbox only every this many heartbeats (lost wake-ups).
_RECHECK_EVERY_HEARTBEATS = 4
# While expiry has a backlog, the sweeper pauses this many times a batch's duration between batches.
_SWEEP_PAUSE_FACTOR = 3.0


@dataclass(slots=True)
class CreateOutcome:
    mailbox_id: MailboxId
    duplicate: bool
    push_supported: bool


@dataclass(slots=True)
class UpdateOutcome:
    duplicate: bool
    push_supported: bool
    seq: int


@dataclass(slots=True)
class ReadOutcome:
    side: Side
    display: DisplayInformation
    expires_at: int
    #: The peer's latest message (the draft's ``payload``), None when the peer wrote nothing yet.
    latest: StoredMessage | None
    #: With a cursor: every peer message after it (ascending, bounded); else None.
    messages: list[StoredMessage] | None


@dataclass(frozen=True, slots=True)
class StreamHandle:
    mailbox_id: MailboxId
    key: bytes
    side: Side
    claim: bytes


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One item of an event stream: kind is "message" (seq set), "heartbeat" or "gone"
    (reason: "deleted", "expired" or "relinquished")."""

    kind: str
    seq: int = 0
    reason: str = ""


def _not_found() -> ProblemError:
    return ProblemError("mailbox-not-found", "no mailbox with this identifier")


def _deleted() -> ProblemError:
    return ProblemError("mailbox-deleted", "the mailbox was deleted by one of its parties")


def _write_denied() -> ProblemError:
    return ProblemError("access-denied", "the recipient may not write to this mailbox")


def _wrong_claim() -> ProblemError:
    return ProblemError("wrong-claim", "this device claim is not bound to the mailbox")


class MailboxService:
    def __init__(
        self,
        store: MailboxStore,
        dispatcher: PushDispatcher,
        keys: RelayKeys,
        config: RelayConfig,
        metrics: RelayMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bus = store.wakeups
        self._dispatcher = dispatcher
        self._keys = keys
        self._config = config
        self._metrics = metrics
        self._clock = clock

    # -- helpers ---------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def now(self) -> int:
        """The relay's clock, in Unix seconds (injectable for tests)."""
        return int(self._clock())

    def _seal(
        self, mailbox_id: MailboxId, side: Side, token: NotificationToken | None
    ) -> bytes | None:
        """Validate a deposited token; the sealed blob to store, or None if not supported."""
        if token is None:
            return None
        try:
            supported = self._dispatcher.validate(token.type, token.token_data)
        except NotificationTokenError as exc:
            raise invalid_field("notificationToken.tokenData", str(exc)) from None
        if not supported:
            return None
        return self._keys.seal_token(mailbox_id.bytes, side.value, token.type, token.token_data)

    def _notify(self, mailbox_id: MailboxId, side: Side, sealed: bytes | None, seq: int) -> None:
        if sealed is None:
            return
        opened = self._keys.open_token(mailbox_id.bytes, side.value, sealed)
        if opened is None:
            return
        try:
            self._dispatcher.notify(opened[0], opened[1], mailbox_id=str(mailbox_id), seq=seq)
        except Exception:  # delivery problems must never fail a committed request
            _log.exception("push dispatcher failed to queue a notification")

    async def _state(self, key: bytes) -> MailboxState:
        state = await self._store.get_mailbox(key, self._now())
        if state is None:
            raise _not_found()
        return state

    # -- operations ------------------------------------------------------------------------------

    async def create(
        self, claim: bytes, request_id: bytes, request: CreateMailboxRequest
    ) -> CreateOutcome:
        mailbox_id = MailboxId.random()
        raw = mailbox_id.bytes
        keys = self._keys
        sealed_token = self._seal(mailbox_id, Side.INITIATOR, request.token)
        result = await self._store.create_mailbox(
            NewMailbox(
                key=keys.mailbox_key(raw),
                initiator_claim=keys.claim_hash(raw, claim),
                access_rights=request.access_rights,
                created_at=self._now(),
                expires_at=request.expires_at,
                display=request.display,
                payload=request.payload,
                initiator_token=sealed_token,
                initiator_request_id=request_id,
                create_claim=keys.create_claim_hash(claim),
                sealed_mailbox_id=keys.seal_mailbox_id(claim, request_id, raw),
            )
        )
        if result.status is WriteStatus.DUPLICATE and result.sealed_mailbox_id is not None:
            earlier = keys.unseal_mailbox_id(claim, request_id, result.sealed_mailbox_id)
            return CreateOutcome(MailboxId(earlier), True, sealed_token is not None)
        self._metrics.outcome("created")
        return CreateOutcome(mailbox_id, False, sealed_token is not None)

    async def display_information(self, mailbox_id: MailboxId) -> DisplayInformation:
        """Public and side-effect free: link scanners may call it freely."""
        state = await self._state(self._keys.mailbox_key(mailbox_id.bytes))
        if state.deleted or state.display is None:
            raise _not_found()
        return state.display

    async def read(
        self,
        mailbox_id: MailboxId,
        claim: bytes,
        *,
        token: NotificationToken | None = None,
        after: int | None = None,
        wait: float = 0.0,
    ) -> ReadOutcome:
        """Authorise a reader (binding it as recipient if it is the first) and answer with the
        peer's latest message and, with a cursor or a wait, every peer message after it."""
        raw = mailbox_id.bytes
        key = self._keys.mailbox_key(raw)
        claim_hash = self._keys.claim_hash(raw, claim)
        now = self._now()
        limit = self._config.messages_per_mailbox
        listing = after is not None or wait > 0
        cursor = 0 if after is None else after
        # One store call reads the state, finds the reader's side and fetches the peer's
        # messages (those of the initiator for a reader about to bind as recipient).
        view = await self._store.read_mailbox(
            key, claim_hash, now, after=cursor if listing else None, limit=limit
        )
        if view is None:
            raise _not_found()
        state, side = view.state, view.side
        if state.deleted:
            raise _deleted() if side is not None else _not_found()
        if (side is Side.RECIPIENT or side is None) and "R" not in state.access_rights:
            raise ProblemError("access-denied", "the recipient may not read this mailbox")
        if side is None:
            if state.recipient_claim is not None:
                raise ProblemError(
                    "already-bound", "another device is bound to this mailbox as recipient"
                )
            sealed = self._seal(mailbox_id, Side.RECIPIENT, token)
            status = await self._store.bind_recipient(key, claim_hash, sealed, now)
            if status is WriteStatus.ALREADY_BOUND:
                raise ProblemError(
                    "already-bound", "another device is bound to this mailbox as recipient"
                )
            if status is not WriteStatus.OK:
                raise _not_found()
            # The answer is the state the bind committed on: the view's messages are the
            # initiator's, the new recipient's peer.
            side = Side.RECIPIENT
        elif token is not None:
            sealed = self._seal(mailbox_id, side, token)
            if sealed is not None:
                status = await self._store.set_token(key, side, claim_hash, sealed, now)
                if status is WriteStatus.DELETED:
                    raise _deleted()
                if status is not WriteStatus.OK:
                    raise _wrong_claim() if status is WriteStatus.CLAIM_MISMATCH else _not_found()
        peer = side.peer
        messages = view.messages
        if wait > 0 and not messages:
            deadline = time.monotonic() + wait
            async with self._bus.subscribe(key) as subscription:
                while True:
                    messages = await self._store.read_messages(key, peer, cursor, limit)
                    remaining = deadline - time.monotonic()
                    if messages or remaining <= 0:
                        break
                    await subscription.wait(remaining)
            state = await self._state(key)
            if state.deleted:
                raise _deleted()
        if not listing:
            latest = messages[0] if messages else None  # the view holds just the latest
        else:
            latest = messages[-1] if messages and len(messages) < limit else None
            if latest is None:
                latest = await self._store.latest_message(key, peer)
        assert state.display is not None
        return ReadOutcome(
            side=side,
            display=state.display,
            expires_at=state.expires_at,
            latest=latest,
            messages=messages if listing else None,
        )

    async def update(
        self, mailbox_id: MailboxId, claim: bytes, request_id: bytes, request: UpdateMailboxRequest
    ) -> UpdateOutcome:
        raw = mailbox_id.bytes
        key = self._keys.mailbox_key(raw)
        claim_hash = self._keys.claim_hash(raw, claim)
        side: Side | None = None
        sealed: bytes | None = None
        if request.token is not None:
            # A token is sealed to its side, so learn the side (and check it) before writing.
            state = await self._state(key)
            side = _side_of(state, claim_hash)
            if side is None:
                raise _not_found() if state.deleted else _wrong_claim()
            if state.deleted:
                raise _deleted()
            if side is Side.RECIPIENT and "W" not in state.access_rights:
                raise _write_denied()
            sealed = self._seal(mailbox_id, side, request.token)
        # Otherwise the append finds the side itself, under the same lock as the write.
        result = await self._store.append_message(
            key,
            side,
            claim_hash,
            payload=request.payload,
            request_id=request_id,
            token=sealed,
            now=self._now(),
            max_messages=self._config.messages_per_mailbox,
            recipient_right="W",
        )
        status = result.status
        if status is WriteStatus.OK:
            assert result.side is not None
            self._bus.publish(key)
            self._notify(mailbox_id, result.side.peer, result.peer_token, result.seq)
            return UpdateOutcome(False, self._push_supported(request, sealed, result), result.seq)
        if status is WriteStatus.DUPLICATE:
            return UpdateOutcome(True, self._push_supported(request, sealed, result), 0)
        if status is WriteStatus.FULL:
            raise ProblemError(
                "mailbox-full",
                f"the mailbox already holds {self._config.messages_per_mailbox} messages",
            )
        if status is WriteStatus.ACCESS_DENIED:
            raise _write_denied()
        raise self._status_problem(status)

    @staticmethod
    def _push_supported(
        request: UpdateMailboxRequest, sealed: bytes | None, result: AppendResult
    ) -> bool:
        """The draft's isPushNotificationSupported: a token given now and accepted, or none
        given and one already held by the writer's side."""
        if request.token is not None:
            return sealed is not None
        return result.has_token

    @staticmethod
    def _status_problem(status: WriteStatus) -> ProblemError:
        if status is WriteStatus.DELETED:
            return _deleted()
        if status is WriteStatus.CLAIM_MISMATCH:
            return _wrong_claim()
        return _not_found()

    async def delete(self, mailbox_id: MailboxId, claim: bytes, request_id: bytes) -> bool:
        """Returns True for a duplicate (this side already deleted with this Request-ID)."""
        raw = mailbox_id.bytes
        key = self._keys.mailbox_key(raw)
        claim_hash = self._keys.claim_hash(raw, claim)
        # The store finds the deleting side and checks its rights under the write's own lock.
        result = await self._store.delete_mailbox(
            key, None, claim_hash, request_id, self._now(), recipient_right="D"
        )
        if result.status is WriteStatus.DUPLICATE:
            return True
        if result.status is WriteStatus.ACCESS_DENIED:
            raise ProblemError("access-denied", "the recipient may not delete this mailbox")
        if result.status is not WriteStatus.OK:
            raise self._status_problem(result.status)
        assert result.side is not None
        self._metrics.outcome("completed" if result.had_recipient else "cancelled")
        self._bus.publish(key)
        self._notify(mailbox_id, result.side.peer, result.peer_token, result.last_seq)
        return False

    async def relinquish(self, mailbox_id: MailboxId, claim: bytes, request_id: bytes) -> bool:
        """The recipient unbinds; returns True for a duplicate."""
        raw = mailbox_id.bytes
        key = self._keys.mailbox_key(raw)
        claim_hash = self._keys.claim_hash(raw, claim)
        status = await self._store.relinquish(key, claim_hash, request_id, self._now())
        if status is WriteStatus.DUPLICATE:
            return True
        if status is WriteStatus.OK:
            self._bus.publish(key)
            return False
        if status is WriteStatus.DELETED:
            state = await self._store.get_mailbox(key, self._now())
            if state is not None and _side_of(state, claim_hash) is not None:
                raise _deleted()
            raise _not_found()
        raise self._status_problem(status)

    # -- event streams ---------------------------------------------------------------------------

    async def open_stream(self, mailbox_id: MailboxId, claim: bytes) -> StreamHandle:
        """Authorise an event stream: only the initiator and the bound recipient may listen."""
        raw = mailbox_id.bytes
        key = self._keys.mailbox_key(raw)
        claim_hash = self._keys.claim_hash(raw, claim)
        state = await self._state(key)
        side = _side_of(state, claim_hash)
        if side is None:
            raise _not_found() if state.deleted else _wrong_claim()
        if state.deleted:
            raise _deleted()
        return StreamHandle(mailbox_id, key, side, claim_hash)

    async def stream(self, handle: StreamHandle, after: int) -> AsyncIterator[StreamEvent]:
        """Peer messages after ``after`` as they are written; heartbeats while idle; ends with a
        "gone" event when the mailbox is deleted, expires, or this side is unbound."""
        limit = self._config.messages_per_mailbox
        heartbeat = self._config.sse_heartbeat_seconds
        cursor = after
        peer = handle.side.peer
        async with self._bus.subscribe(handle.key) as subscription:
            recheck, idle, expires_at = True, 0, 0
            while True:
                now = self._clock()
                if recheck or now >= expires_at:
                    state = await self._store.get_mailbox(handle.key, int(now))
                    if state is None:
                        yield StreamEvent("gone", reason="expired")
                        return
                    if state.deleted:
                        yield StreamEvent("gone", reason="deleted")
                        return
                    if _side_of(state, handle.claim) is not handle.side:
                        yield StreamEvent("gone", reason="relinquished")
                        return
                    expires_at = state.expires_at
                    messages = await self._store.read_messages(handle.key, peer, cursor, limit)
                    for message in messages:
                        cursor = message.seq
                        yield StreamEvent("message", seq=message.seq)
                    if len(messages) == limit:
                        continue
                timeout = max(0.05, min(heartbeat, expires_at - now))
                if await subscription.wait(timeout):
                    recheck, idle = True, 0
                    continue
                yield StreamEvent("heartbeat")
                # Writes, deletes and relinquishes all publish a wake-up, so an idle heartbeat
                # needs no database read (10,000 idle streams would cost ~1,300 queries/s);
                # expiry is known, and every few heartbeats a read catches a lost wake-up.
                idle += 1
                recheck = idle % _RECHECK_EVERY_HEARTBEATS == 0

    # -- expiry ----------------------------------------------------------------------------------

    async def sweep_once(self) -> SweepResult:
        result = await self._store.delete_expired(self._now(), self._config.sweep_batch)
        if result.expired_live:
            self._metrics.outcome("expired", result.expired_live)
        return result

    async def run_sweeper(self) -> None:
        """Delete expired mailboxes in small batches; a full batch means more are due, so the
        next one follows after a pause proportional to the batch's cost."""
        while True:
            started = time.perf_counter()
            try:
                result = await self.sweep_once()
            except Exception:
                _log.exception("expiry sweep failed")
                result = SweepResult(0, 0)
            if result.removed >= self._config.sweep_batch:
                # A backlog: keep going, but leave requests most of the single writer — pause
                # for a multiple of the batch's own duration — so a mass expiry never stalls them.
                await asyncio.sleep(min(1.0, _SWEEP_PAUSE_FACTOR * (time.perf_counter() - started)))
                continue
            await asyncio.sleep(self._config.sweep_interval_seconds)
