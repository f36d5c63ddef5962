"""The abstract mailbox store: what the service needs from durable storage, and nothing more.

The store holds data; :class:`tigress.relay.service.MailboxService` holds the rules.  Every
operation that changes state is *conditional* (compare-and-set on the stored claim, the deleted
flag and the expiry), and each one is atomic on its own, so two relay processes sharing one
database can never both win a race (e.g. two devices binding as recipient).

What the store sees is already blinded by the service:

* ``key`` — the mailbox's lookup key, a keyed hash (HMAC-SHA256 with the relay secret, 16 bytes)
  of the mailbox id.  The id itself is never stored.
* claims — keyed hashes of ``Mailbox-Device-Claim`` values, bound to the mailbox; compare them
  with :func:`hmac.compare_digest` only.
* notification tokens — sealed (AEAD) blobs the store keeps per side and never interprets.
* the create-idempotency record — a keyed hash of the creating claim, the last Request-ID it
  used, and the mailbox id sealed under a key derived from claim and Request-ID.

Payload ``data`` is end-to-end ciphertext and ``displayInformation`` is public by the draft; both
are stored as given.  No IP address and no attestation ever reach the store.

Times are integer Unix seconds (UTC).  A mailbox whose ``expires_at`` is ``<= now`` is gone: every
read answers as if it never existed, and :meth:`MailboxStore.delete_expired` removes it.

Implementations: ``tigress.relay.stores.sqlite`` (embedded default) and
``tigress.relay.stores.postgres`` (several relay processes, several machines).
"""

from __future__ import annotations

import abc
import enum
import hmac
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field


class Side(enum.Enum):
    """Which party of a mailbox wrote a message or holds a claim/token."""

    INITIATOR = "i"
    RECIPIENT = "r"

    @property
    def peer(self) -> Side:
        return Side.RECIPIENT if self is Side.INITIATOR else Side.INITIATOR


# The values below are made on every request.  Small value types stay frozen; the larger
# snapshots and results are plain slotted dataclasses, never mutated after construction: a frozen
# dataclass's ``__init__`` pays an ``object.__setattr__`` call per field (~1.4 µs for a
# MailboxState instead of ~0.2 µs).


@dataclass(frozen=True, slots=True)
class Payload:
    """The draft's ``payload {type, data}``: an opaque, end-to-end encrypted message."""

    type: str
    data: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DisplayInformation:
    """The draft's public ``displayInformation`` (shown in link previews)."""

    title: str
    description: str
    image_url: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One entry of a mailbox's message log.

    ``seq`` is assigned by the store: per mailbox, strictly increasing, shared by both sides
    (the initial payload of CreateMailbox is seq 1).
    """

    seq: int
    side: Side
    payload: Payload


@dataclass(slots=True)
class MailboxState:
    """A snapshot of one mailbox, as :meth:`MailboxStore.get_mailbox` returns it.

    ``deleted`` marks a tombstone: the mailbox was deleted by a party and its messages, tokens and
    display information are already wiped; only the claims remain (until ``expires_at``) so the
    relay can answer the parties 410 instead of 404.
    """

    key: bytes
    initiator_claim: bytes = field(repr=False)
    recipient_claim: bytes | None = field(repr=False)
    access_rights: str
    created_at: int
    expires_at: int
    deleted: bool
    display: DisplayInformation | None
    last_seq: int
    initiator_token: bytes | None = field(repr=False)
    recipient_token: bytes | None = field(repr=False)
    #: Last processed ``Mailbox-Request-ID`` of each side (16 raw bytes) and, for the recipient
    #: side, the claim that sent it (the recipient can change after a relinquish).
    initiator_request_id: bytes | None = field(repr=False)
    recipient_request_id: bytes | None = field(repr=False)
    recipient_request_claim: bytes | None = field(repr=False)


def side_of(state: MailboxState, claim: bytes) -> Side | None:
    """The side ``claim`` (a keyed claim hash) holds in ``state``, compared in constant time;
    the initiator is checked first.  None when it holds neither."""
    if hmac.compare_digest(state.initiator_claim, claim):
        return Side.INITIATOR
    if state.recipient_claim is not None and hmac.compare_digest(state.recipient_claim, claim):
        return Side.RECIPIENT
    return None


@dataclass(slots=True)
class MailboxView:
    """Everything one read needs, from one store call: see :meth:`MailboxStore.read_mailbox`."""

    state: MailboxState
    #: The side the reader's claim holds (:func:`side_of`), None when it holds neither.
    side: Side | None
    #: Messages written by the reader's peer — the initiator's when ``side`` is None (a reader
    #: about to bind as recipient) — as :meth:`MailboxStore.read_mailbox` describes.
    messages: list[StoredMessage]


@dataclass(slots=True)
class NewMailbox:
    """Everything CreateMailbox stores, in one atomic insert."""

    key: bytes
    initiator_claim: bytes = field(repr=False)
    access_rights: str
    created_at: int
    expires_at: int
    display: DisplayInformation
    payload: Payload
    initiator_token: bytes | None = field(repr=False)
    initiator_request_id: bytes = field(repr=False)
    #: Create idempotency: keyed hash of the creating claim (not bound to any mailbox, since none
    #: exists yet) and the mailbox id sealed under a key only that claim + Request-ID can derive.
    create_claim: bytes = field(repr=False)
    sealed_mailbox_id: bytes = field(repr=False)


class WriteStatus(enum.Enum):
    """The outcome of a conditional write."""

    OK = "ok"
    #: The same side already processed this ``Mailbox-Request-ID``: nothing changed.
    DUPLICATE = "duplicate"
    #: Unknown or expired (indistinguishable on purpose).
    NOT_FOUND = "not-found"
    #: A tombstone: the mailbox was deleted by one of its parties.
    DELETED = "deleted"
    #: The claim given is not (or no longer) the one bound to that side.
    CLAIM_MISMATCH = "claim-mismatch"
    #: bind_recipient lost: another device is bound as recipient.
    ALREADY_BOUND = "already-bound"
    #: append_message: the mailbox holds its maximum number of messages.
    FULL = "full"
    #: The claim is the recipient's, and the mailbox's access rights do not let the recipient do
    #: this (only when the store resolved the side itself).
    ACCESS_DENIED = "access-denied"


@dataclass(slots=True)
class CreateResult:
    status: WriteStatus  # OK or DUPLICATE
    #: For DUPLICATE: the sealed id of the mailbox the earlier request created.
    sealed_mailbox_id: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class AppendResult:
    status: WriteStatus
    #: The new message's sequence number when status is OK.
    seq: int = 0
    #: The peer's sealed token at commit time (for the push notification), when status is OK.
    peer_token: bytes | None = field(default=None, repr=False)
    #: The side that wrote (OK) or had written (DUPLICATE); None for the other statuses.
    side: Side | None = None
    #: Whether that side holds a notification token after the write (OK, DUPLICATE).
    has_token: bool = False


@dataclass(slots=True)
class DeleteResult:
    status: WriteStatus
    #: True when a recipient was bound at deletion (the transfer "completed" rather than being
    #: "cancelled"; for metrics only).
    had_recipient: bool = False
    #: The peer's sealed token at commit time, to tell it the mailbox is gone.
    peer_token: bytes | None = field(default=None, repr=False)
    #: The side that deleted (OK); None for the other statuses.
    side: Side | None = None
    #: The mailbox's last sequence number when it was deleted (OK), for the notification.
    last_seq: int = 0


@dataclass(slots=True)
class SweepResult:
    #: Rows removed (live mailboxes that expired plus tombstones that reached their expiry).
    removed: int
    #: Of those, mailboxes that were still live (never deleted) — the "expired" outcome.
    expired_live: int


class Subscription(abc.ABC):
    """Interest in wake-ups for one mailbox key; use as a context manager via
    :meth:`WakeupBus.subscribe`."""

    @abc.abstractmethod
    async def wait(self, timeout: float) -> bool:
        """Wait until the mailbox is written (or deleted) or ``timeout`` seconds pass.

        Returns True when woken.  A wake-up that arrived after the subscription began but before
        ``wait`` was called is not lost: ``wait`` then returns True at once.  Each call consumes
        the pending wake-up.
        """


class WakeupBus(abc.ABC):
    """Tells waiting requests (long-poll reads, SSE streams) that a mailbox changed.

    A wake-up carries only the mailbox key; waiters re-read the store.  Publishing must reach
    waiters in every relay process sharing the store (SQLite: datagram sockets next to the
    database; PostgreSQL: LISTEN/NOTIFY).  Delivery is best-effort: waiters also wake on their
    own timeout, so a lost wake-up costs latency, never correctness.
    """

    @abc.abstractmethod
    def subscribe(self, key: bytes) -> AbstractAsyncContextManager[Subscription]:
        """Register interest in ``key``; subscribe *before* reading the store to miss nothing."""

    @abc.abstractmethod
    def publish(self, key: bytes) -> None:
        """Wake every waiter on ``key`` in every process; call after the write committed.

        Never blocks for long and never raises.
        """

    async def start(self) -> None:
        """Begin receiving wake-ups from other processes (called once by the store's open)."""
        return None

    async def aclose(self) -> None:
        return None


class MailboxStore(abc.ABC):
    """Durable mailbox storage.  All methods are coroutines; all writes are atomic.

    Every method returns only after its write is durable at the configured level (SQLite
    ``normal``/``full``; PostgreSQL's commit), so the relay answers a request only for a
    committed write.
    """

    @property
    @abc.abstractmethod
    def wakeups(self) -> WakeupBus:
        """The bus that wakes waiters on this store (shared by every user of the store)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, apply schema migrations, start background machinery. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release every resource. Idempotent."""

    @abc.abstractmethod
    async def health_check(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers a trivial query."""

    @abc.abstractmethod
    async def create_mailbox(self, new: NewMailbox) -> CreateResult:
        """Insert the mailbox and its first message (seq 1, side INITIATOR) atomically.

        When the create-idempotency record for ``new.create_claim`` already holds
        ``new.initiator_request_id``, change nothing and return DUPLICATE with the stored sealed
        id.  Otherwise record (create_claim, request id, sealed id) — one record per claim, the
        latest wins — and return OK.  The record is removed with its mailbox.
        """

    @abc.abstractmethod
    async def get_mailbox(self, key: bytes, now: int) -> MailboxState | None:
        """The mailbox, a tombstone (``deleted=True``), or None when unknown or expired."""

    @abc.abstractmethod
    async def read_mailbox(
        self, key: bytes, claim: bytes, now: int, *, after: int | None, limit: int
    ) -> MailboxView | None:
        """A read in one call: the mailbox (or tombstone), the side ``claim`` holds, and the
        messages of that side's peer (the initiator's when ``claim`` holds no side).

        With ``after`` None, ``messages`` is the peer's latest message alone (or empty); else
        every peer message with ``seq > after``, ascending, at most ``limit``.  A tombstone has
        no messages.  None when the mailbox is unknown or expired.
        """

    @abc.abstractmethod
    async def bind_recipient(
        self, key: bytes, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        """Compare-and-set the recipient claim from NULL to ``claim``.

        OK when it bound, or when ``claim`` was already the recipient (then ``token``, if given,
        replaces the stored recipient token).  ALREADY_BOUND when another claim holds it;
        NOT_FOUND; DELETED.  Exactly one of any number of concurrent binders gets OK, across
        processes.
        """

    @abc.abstractmethod
    async def set_token(
        self, key: bytes, side: Side, claim: bytes, token: bytes | None, now: int
    ) -> WriteStatus:
        """Replace a side's sealed token (None clears it) if ``claim`` is still that side's.

        OK, CLAIM_MISMATCH, NOT_FOUND or DELETED.
        """

    @abc.abstractmethod
    async def append_message(
        self,
        key: bytes,
        side: Side | None,
        claim: bytes,
        *,
        payload: Payload,
        request_id: bytes,
        token: bytes | None,
        now: int,
        max_messages: int,
        recipient_right: str | None = None,
    ) -> AppendResult:
        """Append ``payload`` to the log as written by ``side``, if ``claim`` is still that side's.

        With ``side`` None the store finds the side ``claim`` holds (:func:`side_of`) in the
        same atomic step: when it holds neither, NOT_FOUND for a tombstone (as for an unknown
        id) and CLAIM_MISMATCH otherwise.  A recipient gets ACCESS_DENIED (checked after DELETED)
        when the mailbox's access rights lack ``recipient_right`` (a letter such as ``"W"``;
        None: no right needed).  Then: DUPLICATE (nothing changes) when ``request_id`` equals
        that side's last processed id (for the recipient: sent by the same claim).  FULL when
        the mailbox already holds ``max_messages`` messages.  ``token`` (when not None) replaces
        the side's token in the same transaction.  Records ``request_id`` as the side's last.
        Returns the new seq, the peer's token, the side and whether it holds a token.
        """

    @abc.abstractmethod
    async def read_messages(
        self, key: bytes, side: Side, after: int, limit: int
    ) -> list[StoredMessage]:
        """Messages written by ``side`` with ``seq > after``, ascending, at most ``limit``."""

    @abc.abstractmethod
    async def latest_message(self, key: bytes, side: Side) -> StoredMessage | None:
        """The message with the highest seq written by ``side``, if any."""

    @abc.abstractmethod
    async def relinquish(
        self, key: bytes, claim: bytes, request_id: bytes, now: int
    ) -> WriteStatus:
        """Unbind the recipient if ``claim`` is the bound recipient.

        Clears the recipient claim and token and removes the messages the recipient wrote (the
        next recipient starts afresh; sequence numbers keep increasing).  DUPLICATE when this
        claim's last processed request id equals ``request_id``; else CLAIM_MISMATCH (not bound
        or bound to another claim), NOT_FOUND or DELETED.
        """

    @abc.abstractmethod
    async def delete_mailbox(
        self,
        key: bytes,
        side: Side | None,
        claim: bytes,
        request_id: bytes,
        now: int,
        *,
        recipient_right: str | None = None,
    ) -> DeleteResult:
        """Turn the mailbox into a tombstone if ``claim`` is still ``side``'s.

        Wipes messages, tokens and display information and keeps the claims until the original
        expiry.  DUPLICATE when the tombstone was made by this side with this ``request_id``;
        DELETED when it already is a tombstone; CLAIM_MISMATCH; NOT_FOUND.  With ``side`` None
        the store finds the side ``claim`` holds in the same atomic step: when it holds neither,
        NOT_FOUND for a tombstone and CLAIM_MISMATCH otherwise.  The recipient of a live mailbox
        gets ACCESS_DENIED when its access rights lack ``recipient_right`` (e.g. ``"D"``).
        """

    @abc.abstractmethod
    async def delete_expired(self, now: int, batch: int) -> SweepResult:
        """Remove up to ``batch`` mailboxes (live or tombstones) with ``expires_at <= now``,
        with their messages and idempotency records, in one short transaction."""

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[MailboxStore]:
        """``async with store.opened():`` — open, then close however the block ends."""
        await self.open()
        try:
            yield self
        finally:
            await self.close()


class StoreError(Exception):
    """Base class of store failures."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or answered with an error (``/readyz`` turns 503)."""
