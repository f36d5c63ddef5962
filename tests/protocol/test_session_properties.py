"""Property tests: whatever a relay does to frames, delivery is in order or the damage is named."""

from __future__ import annotations

import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.protocol.events import Action, Deliver, Failed, FailureReason, SendFrame
from tigress.protocol.messages import ProvisioningInfo
from tigress.protocol.session import Receiver, Sender

CHANNEL = b"tigress-relay:https://relay.test/v1/m/0d9a4c1e-6a53-4f5e-8d2b-1f2e3d4c5b6a"


def _frames(actions: list[Action]) -> list[bytes]:
    return [a.frame for a in actions if isinstance(a, SendFrame)]


def _established() -> tuple[Sender, Receiver]:
    key = secrets.token_bytes(32)
    sender, receiver = (
        Sender(secret=key, channel_id=CHANNEL),
        Receiver(secret=key, channel_id=CHANNEL),
    )
    receiver.receive(_frames(sender.start())[0])
    sender.receive(_frames(receiver.send(ProvisioningInfo("tigress.test.hello", {})))[0])
    return sender, receiver


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=6),
    schedule=st.lists(st.integers(min_value=0, max_value=5), max_size=10),
)
def test_any_delivery_schedule_yields_an_in_order_prefix_or_a_named_failure(
    count: int, schedule: list[int]
) -> None:
    sender, receiver = _established()
    sent = [ProvisioningInfo("tigress.test.part", {"n": i}) for i in range(count)]
    wire = [_frames(sender.send(info))[0] for info in sent]
    delivered: list[ProvisioningInfo] = []
    failures: list[Failed] = []
    plan = [i for i in schedule if i < count]
    for index in plan:
        if not receiver.is_open:
            break
        for action in receiver.receive(wire[index]):
            if isinstance(action, Deliver):
                delivered.append(action.info)
            elif isinstance(action, Failed):
                failures.append(action)
    assert delivered == sent[: len(delivered)]
    honest = plan == list(range(len(plan)))
    if honest:
        assert not failures
    else:
        assert failures and failures[0].reason in {
            FailureReason.REPLAYED,
            FailureReason.MISSING_MESSAGE,
        }


@settings(max_examples=150, deadline=None)
@given(junk=st.binary(max_size=200), stage=st.sampled_from(["new", "established"]))
def test_arbitrary_bytes_never_raise(junk: bytes, stage: str) -> None:
    if stage == "new":
        receiver = Receiver(secret=secrets.token_bytes(32), channel_id=CHANNEL)
    else:
        _, receiver = _established()
    actions = receiver.receive(junk)
    assert any(isinstance(a, Failed) for a in actions)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=0, max_value=2000), bit=st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_detected(position: int, bit: int) -> None:
    sender, receiver = _established()
    frame = bytearray(_frames(sender.send(ProvisioningInfo("tigress.test.part", {"n": 1})))[0])
    frame[position % len(frame)] ^= 1 << bit
    actions = receiver.receive(bytes(frame))
    assert not any(isinstance(a, Deliver) for a in actions)
    assert any(isinstance(a, Failed) for a in actions)
