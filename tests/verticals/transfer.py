"""Drive a vertical's sender and receiver flows through the real channel state machines.

Frames are handed from one ``Sender``/``Receiver`` to the other in memory.  After every step the
state machines and both flows are serialised and restored (flow state through the canonical JSON
codec), as the wallet does between rounds, so every test also proves the flows survive restarts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tigress.protocol import codec
from tigress.protocol.events import Action, Deliver, Failed, PeerDone, SendFrame
from tigress.protocol.session import Receiver, Sender
from tigress.verticals.base import ReceiverFlow, SenderFlow, Step, VerticalError, VerticalSpec
from tigress.wallet.api import WalletView


@dataclass
class Outcome:
    sender_done: bool = False
    receiver_done: bool = False
    credential_id: str | None = None
    sender_failure: Failed | None = None
    receiver_failure: Failed | None = None
    sender_error: VerticalError | None = None
    receiver_error: VerticalError | None = None
    messages: list[str] = field(default_factory=list)  # formats delivered, in order


def _round_trip(state: Mapping[str, Any]) -> dict[str, Any]:
    """What persisting a flow does: canonical JSON out and back in."""
    return dict(codec.decode(codec.encode(dict(state))))


def run_transfer(
    spec: VerticalSpec,
    sender_wallet: WalletView,
    receiver_wallet: WalletView,
    credential_id: str,
    options: dict[str, object] | None = None,
    *,
    receiver_flow_factory: Callable[[WalletView], ReceiverFlow] | None = None,
) -> Outcome:
    outcome = Outcome()
    secret, channel = secrets.token_bytes(32), secrets.token_bytes(16)
    sender = Sender(secret=secret, channel_id=channel)
    receiver = Receiver(secret=secret, channel_id=channel)
    sflow: SenderFlow = spec.sender_flow(sender_wallet, credential_id, options or {})
    rflow: ReceiverFlow = (receiver_flow_factory or spec.receiver_flow)(receiver_wallet)
    opening = sflow.opening()
    to_receiver = _frames(sender.start(opening))
    to_sender: list[bytes] = []
    for _ in range(20):
        if not to_receiver and not to_sender:
            break
        for frame in to_receiver:
            receiver = Receiver.from_bytes(receiver.to_bytes())
            rflow = spec.restore_receiver_flow(receiver_wallet, _round_trip(rflow.to_dict()))
            for action in receiver.receive(frame):
                to_sender += _handle(action, receiver, rflow, outcome, is_sender=False)
        to_receiver = []
        for frame in to_sender:
            sender = Sender.from_bytes(sender.to_bytes())
            sflow = spec.restore_sender_flow(sender_wallet, _round_trip(sflow.to_dict()))
            for action in sender.receive(frame):
                to_receiver += _handle(action, sender, sflow, outcome, is_sender=True)
        to_sender = []
    return outcome


def _frames(actions: list[Action]) -> list[bytes]:
    return [a.frame for a in actions if isinstance(a, SendFrame)]


def _handle(
    action: Action,
    endpoint: Sender | Receiver,
    flow: SenderFlow | ReceiverFlow,
    outcome: Outcome,
    *,
    is_sender: bool,
) -> list[bytes]:
    if isinstance(action, SendFrame):
        return [action.frame]
    if isinstance(action, PeerDone):
        if is_sender:
            outcome.sender_done = True
        return []
    if isinstance(action, Failed):
        if is_sender:
            outcome.sender_failure = action
        else:
            outcome.receiver_failure = action
        return []
    if not isinstance(action, Deliver):
        return []
    outcome.messages.append(action.info.format)
    try:
        step: Step = flow.on_message(action.info)
    except VerticalError as error:
        if is_sender:
            outcome.sender_error = error
        else:
            outcome.receiver_error = error
        # What a runner does: stop the transfer and tell the peer the vertical's reason.
        return _frames(endpoint.cancel(reason=error.code, message=str(error)[:500]))
    frames: list[bytes] = []
    if step.reply is not None:
        frames += _frames(endpoint.send(step.reply))
    if step.finished and not is_sender:
        outcome.receiver_done = True
        outcome.credential_id = step.credential_id
        frames += _frames(endpoint.finish())
    return frames
