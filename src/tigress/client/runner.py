"""The transfer runner: drives the channel state machines, a vertical flow and a transport.

Every step is persisted before its effects leave the device.  Processing a peer message updates
the session state, the flow state, the cursor and the *outbox* (the frames the step produced) in
one transaction; the frames are then sent, each with the request id saved beside it, and removed
from the outbox one by one.  So the program may stop at any instant and ``advance`` later picks up
exactly where it was: a frame is never processed twice (the cursor moved with the state) and a
reply is never lost or duplicated (the relay recognises a re-sent request id).  Sender and
receiver never need to be online at the same time when a relay carries the frames.

Relay conventions (the draft has the relay choose the mailbox id, which the channel binds):
the sender creates the mailbox with a placeholder payload of type :data:`PLACEHOLDER_TYPE`
(message seq 1), then writes the channel's first frame (seq 2) once it knows the mailbox URL.
The receiver skips that one placeholder, only as the initiator's first message.

Who deletes the mailbox: when a transfer ends, the side that was last to *read* deletes it — the
sender after the receiver's ``done``, either side after reading the peer's ``cancel``/``error``.
A side that ends by *writing* a final message (``done``, an encrypted ``cancel`` or ``error``)
leaves the mailbox so that the peer can read why; a side that ends with nothing to say (a cancel
before the channel exists, an expiry) deletes at once and the peer learns it from the relay's
404/410.  The relay's expiry removes whatever a vanished peer leaves behind.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tigress.client.direct import (
    DirectClosed,
    DirectConnection,
    DirectError,
    DirectListener,
    DirectTimeout,
    connect,
)
from tigress.client.errors import (
    MailboxConflict,
    MailboxGone,
    MailboxNotFound,
    RateLimited,
    RelayError,
    RelayUnavailable,
    TransferError,
)
from tigress.client.flows import (
    ReceiverFlowLike,
    SenderFlowLike,
    VerticalSpecLike,
    vertical_error_code,
)
from tigress.client.outcomes import describe_failure
from tigress.client.relay import (
    DEFAULT_DISPLAY,
    MAX_LONG_POLL_SECONDS,
    DisplayInformation,
    RelayClient,
    new_claim,
    new_request_id,
)
from tigress.client.trust import RelayTrust, normalise_origin
from tigress.protocol.errors import ProtocolError
from tigress.protocol.events import (
    Action,
    AskPin,
    Deliver,
    Established,
    Failed,
    PeerDone,
    ProtocolStateError,
    SendFrame,
)
from tigress.protocol.frames import FrameError, frame_to_payload, payload_to_frame
from tigress.protocol.invitation import (
    DirectInvitation,
    RelayInvitation,
    new_secret,
    new_session_id,
    parse_invitation,
)
from tigress.protocol.messages import REASON_PATTERN, CancelReason, ProvisioningInfo
from tigress.protocol.session import Phase, Receiver, Sender
from tigress.wallet.transfers import (
    OutgoingFrame,
    TransferRecord,
    TransferStatus,
    new_transfer_id,
)
from tigress.wallet.wallet import Wallet

PLACEHOLDER_TYPE = "tigress-pending-v1"
PLACEHOLDER_PAYLOAD = {"type": PLACEHOLDER_TYPE, "data": "AA=="}
DEFAULT_EXPIRY = timedelta(hours=48)
_MIN_DIRECT_WAIT = 0.05

Session = Sender | Receiver
Flow = SenderFlowLike | ReceiverFlowLike


@dataclass(frozen=True)
class DirectOptions:
    """Listen for the receiver on ``host:port`` (0: any free port) without a relay."""

    host: str = "127.0.0.1"
    port: int = 0
    advertise_host: str | None = None  # the host written into the invitation, if not ``host``


@dataclass(frozen=True)
class ShareResult:
    record: TransferRecord
    invitation_url: str = field(repr=False)  # carries the secret in its fragment


class _Offline(Exception):
    """The relay cannot be reached right now; the transfer stays pending."""


@dataclass
class _Context:
    """One transfer while a runner call works on it."""

    record: TransferRecord
    session: Session
    flow: Flow | None
    pin: str | None = None
    wrote_final: bool = False  # the ending step wrote a frame the peer has to read
    vertical_failure: str | None = None

    @property
    def role(self) -> str:
        return self.record.role

    @property
    def meta(self) -> dict[str, Any]:
        if self.record.flow_state is None:
            self.record.flow_state = {}
        return self.record.flow_state


class TransferRunner:
    """Shares and receives credentials for one wallet.

    ``verticals`` maps vertical names to their specs (the runner never imports them itself).
    Relay transfers survive restarts; direct transfers live as long as this object.
    """

    def __init__(
        self,
        wallet: Wallet,
        verticals: Mapping[str, VerticalSpecLike],
        *,
        trust: RelayTrust | None = None,
        client_factory: Callable[[str], RelayClient] = RelayClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.wallet = wallet
        self.verticals = dict(verticals)
        self.trust = trust if trust is not None else RelayTrust.from_environment()
        self._client_factory = client_factory
        self._clock = clock
        self._clients: dict[str, RelayClient] = {}
        self._listeners: dict[str, DirectListener] = {}
        self._connections: dict[str, DirectConnection] = {}

    def __repr__(self) -> str:
        return f"<TransferRunner {self.wallet.directory}>"

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        for connection in self._connections.values():
            connection.close()
        for listener in self._listeners.values():
            listener.close()
        self._clients.clear()
        self._connections.clear()
        self._listeners.clear()

    def __enter__(self) -> TransferRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _client(self, origin: str) -> RelayClient:
        if origin not in self._clients:
            self._clients[origin] = self._client_factory(origin)
        return self._clients[origin]

    def _spec(self, name: str | None) -> VerticalSpecLike:
        spec = self.verticals.get(name or "")
        if spec is None:
            raise TransferError(f"This program does not know the {name!r} credential type.")
        return spec

    # -- starting ----------------------------------------------------------------------------

    def share(
        self,
        credential_id: str,
        vertical: str,
        *,
        relay_url: str | None = None,
        direct: DirectOptions | None = None,
        pin: str | None = None,
        pin_attempts: int = 3,
        expires: timedelta = DEFAULT_EXPIRY,
        display: DisplayInformation = DEFAULT_DISPLAY,
        options: Mapping[str, Any] | None = None,
    ) -> ShareResult:
        """Start sharing a credential; returns the record and the invitation URL (with secret)."""
        if (relay_url is None) == (direct is None):
            raise TransferError("Share either through a relay or directly, not both or neither.")
        spec = self._spec(vertical)
        self.wallet.credentials.get(credential_id)  # fail early, with the wallet's sentence
        try:
            flow = spec.sender_flow(self.wallet, credential_id, options or {})
        except Exception as exc:
            if vertical_error_code(exc) is None:
                raise
            raise TransferError(str(exc)) from exc
        secret = new_secret()
        record = TransferRecord(
            id=new_transfer_id(),
            role="sender",
            transport="relay" if relay_url is not None else "direct",
            vertical=vertical,
            credential_id=credential_id,
            expires_at=self._clock().replace(microsecond=0) + expires,
        )
        invitation: RelayInvitation | DirectInvitation
        listener: DirectListener | None = None
        if relay_url is not None:
            origin = normalise_origin(relay_url)
            record.relay_origin = origin
            record.claim = new_claim()
            created = self._client(origin).create_mailbox(
                PLACEHOLDER_PAYLOAD,
                display,
                claim=record.claim,
                request_id=new_request_id(),
                expires_at=record.expires_at,
            )
            link = RelayInvitation.parse(created.url_link)
            invitation = RelayInvitation.create(
                link.relay_origin, link.mailbox_id, spec.hint, secret
            )
            record.mailbox_id = invitation.mailbox_id
        else:
            assert direct is not None
            session_id = new_session_id()
            probe = DirectInvitation.create(
                direct.advertise_host or direct.host, 1, session_id, spec.hint, secret
            )
            listener = DirectListener(direct.host, direct.port, channel_id=probe.channel_id)
            invitation = DirectInvitation.create(
                probe.host, listener.port, session_id, spec.hint, secret
            )
            record.direct_host, record.direct_port = invitation.host, invitation.port
        record.invitation_url = invitation.to_url(include_secret=False)
        sender = Sender(
            secret=secret, channel_id=invitation.channel_id, pin=pin, pin_attempts=pin_attempts
        )
        ctx = _Context(record, sender, flow)
        # Without a PIN the opening rides in the offer; with one it waits for the PIN to verify.
        opening = flow.opening() if pin is None else None
        ctx.meta["opening_sent"] = opening is not None
        self._apply(ctx, sender.start(opening))
        self._store(ctx)
        self.wallet.transfers.create(record)
        if listener is not None:
            self._listeners[record.id] = listener
        else:
            with contextlib.suppress(_Offline):
                self._flush(ctx)
        return ShareResult(record, invitation.to_url())

    def receive(
        self, invitation_url: str, *, pin: str | None = None, wait: float = 0
    ) -> TransferRecord:
        """Accept an invitation: bind at the relay (or connect to the sender) and start."""
        try:
            invitation = parse_invitation(invitation_url)
        except ProtocolError as exc:
            raise TransferError(f"The invitation is not valid: {exc}.") from exc
        if invitation.secret is None or len(invitation.secret) != 32:
            raise TransferError(
                "The invitation has no usable secret (the part after '#' is missing)."
            )
        record = TransferRecord(
            id=new_transfer_id(),
            role="receiver",
            transport="relay" if isinstance(invitation, RelayInvitation) else "direct",
            invitation_url=invitation.to_url(include_secret=False),
            claim=new_claim(),
        )
        receiver = Receiver(secret=invitation.secret, channel_id=invitation.channel_id)
        connection: DirectConnection | None = None
        if isinstance(invitation, RelayInvitation):
            self.trust.evaluate(invitation.relay_origin, self._client(invitation.relay_origin))
            record.relay_origin = invitation.relay_origin
            record.mailbox_id = invitation.mailbox_id
        else:
            record.direct_host, record.direct_port = invitation.host, invitation.port
            try:
                connection = connect(
                    invitation.host, invitation.port, channel_id=invitation.channel_id
                )
            except DirectError as exc:
                raise TransferError(f"Could not reach the sending device: {exc}.") from exc
        ctx = _Context(record, receiver, None)
        self._store(ctx)
        # Saved (with its claim) before binding: a crash after binding can still resume.
        self.wallet.transfers.create(record)
        if connection is not None:
            self._connections[record.id] = connection
        return self.advance(record.id, wait=wait, pin=pin)

    # -- progressing -------------------------------------------------------------------------

    def advance(
        self, transfer_id: str, *, wait: float = 0, pin: str | None = None
    ) -> TransferRecord:
        """Process every new peer message (waiting up to ``wait`` seconds for one); persist.

        Safe to call at any time and repeatedly.  Returns the record as stored.
        """
        record = self.wallet.transfers.get(transfer_id)
        if record.status.is_terminal:
            return record
        ctx = self._restore(record)
        ctx.pin = pin
        try:
            self._flush(ctx)
            if self._expired(ctx):
                return ctx.record
            if record.status == TransferStatus.WAITING_FOR_PIN:
                if pin is None:
                    return record
                ctx.pin = None
                self._step(ctx, lambda: self._submit_pin(ctx, pin))
                self._flush(ctx)
                if ctx.record.status != TransferStatus.PENDING:
                    return ctx.record
            if record.transport == "relay":
                self._advance_relay(ctx, wait)
            else:
                self._advance_direct(ctx, wait)
        except _Offline:
            pass
        return ctx.record

    def complete(
        self, transfer_id: str, *, timeout: float, pin: str | None = None
    ) -> TransferRecord:
        """Advance until the transfer ends, asks for a PIN, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        record = self.advance(transfer_id, pin=pin)
        while record.status == TransferStatus.PENDING:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            record = self.advance(transfer_id, wait=min(remaining, MAX_LONG_POLL_SECONDS))
        return record

    def continue_all(self, *, wait: float = 0) -> list[TransferRecord]:
        """Advance every transfer in progress (after being offline); returns them."""
        return [
            self.advance(record.id, wait=wait)
            for record in self.wallet.transfers.list(active_only=True)
        ]

    def cancel(
        self,
        transfer_id: str,
        reason: str = CancelReason.USER_CANCELLED.value,
        message: str | None = None,
    ) -> TransferRecord:
        """Stop a transfer: an encrypted cancel when the channel allows, else delete the share."""
        record = self.wallet.transfers.get(transfer_id)
        if record.status.is_terminal:
            return record
        ctx = self._restore(record)
        self._step(ctx, lambda: ctx.session.cancel(reason, message))
        with contextlib.suppress(_Offline):
            self._flush(ctx)
        return ctx.record

    # -- persistence -------------------------------------------------------------------------

    def _restore(self, record: TransferRecord) -> _Context:
        if record.session_state is None:
            raise TransferError(f"Transfer {record.id} has no saved state to resume.")
        session: Session = (
            Sender.from_bytes(record.session_state)
            if record.role == "sender"
            else Receiver.from_bytes(record.session_state)
        )
        flow: Flow | None = None
        state = record.flow_state or {}
        if "flow" in state:
            spec = self._spec(record.vertical)
            if record.role == "sender":
                flow = spec.restore_sender_flow(self.wallet, state["flow"])
            else:
                flow = spec.restore_receiver_flow(self.wallet, state["flow"])
        return _Context(record, session, flow)

    def _store(self, ctx: _Context) -> None:
        """Copy the live session and flow into the record (not yet written)."""
        record = ctx.record
        if ctx.flow is not None:
            ctx.meta["flow"] = dict(ctx.flow.to_dict())
        if record.status.is_terminal or not ctx.session.is_open:
            # The snapshot holds the PSK and channel keys: it goes as soon as it is not needed.
            record.session_state = None
        else:
            record.session_state = ctx.session.to_bytes()

    def _save(self, ctx: _Context) -> None:
        self._store(ctx)
        self.wallet.transfers.save(ctx.record)

    # -- one step ----------------------------------------------------------------------------

    def _step(
        self, ctx: _Context, produce: Callable[[], list[Action]], cursor: int | None = None
    ) -> None:
        """Run one state-machine input, apply its actions, and persist it all at once."""
        was_open = ctx.session.is_open
        try:
            actions = produce()
        except ProtocolStateError as exc:
            raise TransferError(f"The transfer cannot do that now: {exc}.") from exc
        self._apply(ctx, actions)
        if cursor is not None:
            ctx.record.cursor = cursor
        if was_open and not ctx.session.is_open and ctx.record.status == TransferStatus.PENDING:
            ctx.record.status = TransferStatus.FINISHED
        self._save(ctx)
        if ctx.record.status.is_terminal:
            self._finish(ctx)

    def _apply(self, ctx: _Context, actions: list[Action]) -> None:
        queue = list(actions)
        ending_frames = 0
        while queue:
            action = queue.pop(0)
            if isinstance(action, SendFrame):
                ctx.record.outbox.append(OutgoingFrame(new_request_id(), action.frame))
                ending_frames += 1
            elif isinstance(action, Established):
                queue += self._on_established(ctx)
            elif isinstance(action, Deliver):
                queue += self._deliver(ctx, action.info)
            elif isinstance(action, AskPin):
                queue += self._on_ask_pin(ctx, action)
            elif isinstance(action, PeerDone):
                ctx.record.status = TransferStatus.FINISHED
                ctx.record.detail = "The transfer completed."
            elif isinstance(action, Failed):
                status, sentence = describe_failure(action)
                ctx.record.status = status
                ctx.record.peer_code = action.peer_code
                ctx.record.detail = ctx.vertical_failure or sentence
        ctx.wrote_final = ending_frames > 0

    def _on_established(self, ctx: _Context) -> list[Action]:
        if ctx.role != "sender" or ctx.meta.get("opening_sent"):
            return []
        assert isinstance(ctx.session, Sender) and ctx.flow is not None
        flow: SenderFlowLike = ctx.flow  # type: ignore[assignment]  # a sender's flow
        ctx.meta["opening_sent"] = True
        try:
            opening = flow.opening()
        except Exception as exc:
            return self._vertical_failed(ctx, exc)
        return ctx.session.send(opening)

    def _deliver(self, ctx: _Context, info: ProvisioningInfo) -> list[Action]:
        if ctx.flow is None:
            spec = next((s for s in self.verticals.values() if s.accepts(info)), None)
            if spec is None:
                ctx.vertical_failure = (
                    f"This wallet cannot receive credentials of the format {info.format!r}."
                )
                return ctx.session.cancel(CancelReason.DECLINED.value, "unsupported format")
            ctx.flow = spec.receiver_flow(self.wallet)
            ctx.record.vertical = spec.name
        try:
            step = ctx.flow.on_message(info)
        except Exception as exc:
            return self._vertical_failed(ctx, exc)
        actions: list[Action] = []
        if step.credential_id is not None:
            ctx.record.result_credential_id = step.credential_id
        if step.reply is not None:
            actions += ctx.session.send(step.reply)
        if step.finished:
            ctx.meta["flow_finished"] = True
            if ctx.role == "receiver" and ctx.session.is_open:
                # The receiver ends the conversation; the sender completes on its ``done``.
                actions += ctx.session.finish()
                ctx.record.status = TransferStatus.FINISHED
                ctx.record.detail = "The transfer completed."
        return actions

    def _vertical_failed(self, ctx: _Context, exc: Exception) -> list[Action]:
        """A flow refused (VerticalError): tell the peer its code and stop."""
        code = vertical_error_code(exc)
        if code is None:
            raise exc  # a bug, not a refusal: let it surface
        if not REASON_PATTERN.fullmatch(code):
            code = CancelReason.DECLINED.value
        ctx.vertical_failure = str(exc)
        return ctx.session.cancel(code, str(exc)[:512] or None)

    def _on_ask_pin(self, ctx: _Context, ask: AskPin) -> list[Action]:
        if ctx.pin is not None:
            pin, ctx.pin = ctx.pin, None  # one PIN is tried once per call
            return self._submit_pin(ctx, pin)
        ctx.record.status = TransferStatus.WAITING_FOR_PIN
        ctx.record.detail = (
            f"The PIN was wrong; {ask.attempts_left} attempt(s) left. Enter the PIN again."
            if ask.retry
            else f"Enter the PIN the sender gave you ({ask.attempts_left} attempt(s))."
        )
        return []

    def _submit_pin(self, ctx: _Context, pin: str) -> list[Action]:
        assert isinstance(ctx.session, Receiver)
        try:
            actions = ctx.session.submit_pin(pin)
        except ProtocolStateError as exc:
            ctx.record.status = TransferStatus.WAITING_FOR_PIN
            ctx.record.detail = f"That PIN cannot be used: {exc}."
            return []
        ctx.record.status = TransferStatus.PENDING
        ctx.record.detail = "Checking the PIN with the sender."
        return actions

    # -- ending ------------------------------------------------------------------------------

    def _expired(self, ctx: _Context) -> bool:
        expires_at = ctx.record.expires_at
        if expires_at is None or self._clock() <= expires_at or not ctx.session.is_open:
            return False
        self._step(ctx, ctx.session.expire)
        return True

    def _mailbox_gone(self, ctx: _Context, error: RelayError) -> None:
        """The relay no longer has the mailbox while this side still expected the peer."""
        if not ctx.session.is_open:
            return
        self._step(ctx, ctx.session.expire)
        record = ctx.record
        if isinstance(error, MailboxConflict):
            record.status, record.detail = TransferStatus.FAILED, str(error)
        elif isinstance(error, MailboxGone):
            record.status = TransferStatus.CANCELLED
            record.detail = "The other device cancelled the share, or it was deleted at the relay."
        elif isinstance(error, MailboxNotFound):
            record.status = TransferStatus.FAILED
            record.detail = "The share has expired or no longer exists at the relay."
        else:
            record.status, record.detail = TransferStatus.FAILED, str(error)
        self.wallet.transfers.save(record)

    def _finish(self, ctx: _Context) -> None:
        """Clean up transport resources once the transfer ended (best effort)."""
        record = ctx.record
        if record.transport == "direct":
            with contextlib.suppress(DirectError, _Offline):
                self._flush(ctx)
            connection = self._connections.pop(record.id, None)
            if connection is not None:
                connection.close()
            listener = self._listeners.pop(record.id, None)
            if listener is not None:
                listener.close()
            return
        if ctx.wrote_final or record.mailbox_id is None or record.claim is None:
            return  # the peer still has to read our final message
        assert record.relay_origin is not None
        with contextlib.suppress(RelayError):
            self._client(record.relay_origin).delete(record.mailbox_id, claim=record.claim)

    # -- transports --------------------------------------------------------------------------

    def _flush(self, ctx: _Context) -> None:
        """Send the saved outbox, removing each frame once it is delivered."""
        record = ctx.record
        if record.transport == "direct":
            connection = self._connections.get(record.id)
            if connection is None:
                return  # the receiver has not connected yet
            while record.outbox:
                try:
                    connection.send(record.outbox[0].frame)
                except DirectError:
                    self._direct_lost(ctx)
                    return
                record.outbox.pop(0)
                self.wallet.transfers.save(record)
            return
        assert record.relay_origin is not None and record.mailbox_id is not None
        assert record.claim is not None
        client = self._client(record.relay_origin)
        while record.outbox:
            frame = record.outbox[0]
            try:
                client.update(
                    record.mailbox_id,
                    frame_to_payload(frame.frame),
                    claim=record.claim,
                    request_id=frame.request_id,
                )
            except (RelayUnavailable, RateLimited) as exc:
                if not record.status.is_terminal:
                    record.detail = f"{exc} The transfer will continue when the relay answers."
                    self.wallet.transfers.save(record)
                raise _Offline from exc
            except RelayError as exc:
                record.outbox.clear()
                self.wallet.transfers.save(record)
                self._mailbox_gone(ctx, exc)
                return
            record.outbox.pop(0)
            self.wallet.transfers.save(record)

    def _advance_relay(self, ctx: _Context, wait: float) -> None:
        record = ctx.record
        assert record.relay_origin is not None and record.mailbox_id is not None
        assert record.claim is not None
        client = self._client(record.relay_origin)
        deadline = time.monotonic() + wait
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                result = client.read(
                    record.mailbox_id,
                    claim=record.claim,
                    after=record.cursor,
                    wait=int(min(remaining, MAX_LONG_POLL_SECONDS)) if remaining >= 1 else 0,
                )
            except (RelayUnavailable, RateLimited) as exc:
                record.detail = f"{exc} The transfer will continue when the relay answers."
                self.wallet.transfers.save(record)
                return
            except RelayError as exc:
                self._mailbox_gone(ctx, exc)
                return
            if record.role == "receiver" and record.expires_at is None:
                record.expires_at = result.expiration.astimezone(UTC)
                self.wallet.transfers.save(record)
            fresh = [m for m in result.messages if m.seq > record.cursor]
            if fresh:
                for message in sorted(fresh, key=lambda m: m.seq):
                    self._process_payload(ctx, message.seq, message.payload)
                    self._flush(ctx)
                    if ctx.record.status != TransferStatus.PENDING:
                        return
                return
            if time.monotonic() >= deadline:
                return

    def _process_payload(self, ctx: _Context, seq: int, payload: object) -> None:
        session = ctx.session
        if (
            ctx.role == "receiver"
            and session.phase == Phase.NEW
            and isinstance(payload, dict)
            and payload.get("type") == PLACEHOLDER_TYPE
        ):
            ctx.record.cursor = seq  # the sender's placeholder: nothing to decrypt
            self.wallet.transfers.save(ctx.record)
            return
        try:
            frame = payload_to_frame(payload)
        except FrameError:
            frame = b""  # the session names this "malformed" and stops, as for any bad frame
        self._step(ctx, lambda: session.receive(frame), cursor=seq)

    def _advance_direct(self, ctx: _Context, wait: float) -> None:
        record = ctx.record
        connection = self._connections.get(record.id)
        if connection is None:
            listener = self._listeners.get(record.id)
            if listener is None:
                self._direct_lost(ctx)
                return
            try:
                connection = listener.accept(timeout=max(wait, _MIN_DIRECT_WAIT))
            except DirectTimeout:
                return
            except DirectError:
                self._direct_lost(ctx)
                return
            self._connections[record.id] = connection
            self._flush(ctx)
        try:
            frame = connection.receive(timeout=max(wait, _MIN_DIRECT_WAIT))
        except DirectTimeout:
            return
        except DirectClosed:
            self._direct_lost(ctx)
            return
        except DirectError:
            frame = b""  # broken framing: the session fails it as malformed
        self._step(ctx, lambda: ctx.session.receive(frame), cursor=record.cursor + 1)
        self._flush(ctx)

    def _direct_lost(self, ctx: _Context) -> None:
        if not ctx.session.is_open:
            return
        self._step(ctx, ctx.session.expire)
        ctx.record.status = TransferStatus.FAILED
        ctx.record.detail = (
            "The direct connection to the other device was lost before the transfer "
            "completed; start a new share."
        )
        self.wallet.transfers.save(ctx.record)
