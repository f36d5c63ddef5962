"""Sender/receiver state machines: flows, PIN, cancel, tampering, snapshots."""

from __future__ import annotations

import json
import secrets

import pytest

from tigress.protocol.events import (
    Action,
    AskPin,
    Deliver,
    Established,
    Failed,
    FailureReason,
    PeerDone,
    ProtocolStateError,
    SendFrame,
)
from tigress.protocol.frames import HEADER_SIZE, parse_frame
from tigress.protocol.messages import ProvisioningInfo
from tigress.protocol.session import Phase, Receiver, Sender

CHANNEL = b"tigress-relay:https://relay.test/v1/m/6f1c8e0a-3c1e-4b7e-9a51-0c8f6f3d2a11"
HOME_KEY = ProvisioningInfo("tigress.home.key.v1", {"lock": "front-door", "key": "AAAA"})


def frames(actions: list[Action]) -> list[bytes]:
    return [a.frame for a in actions if isinstance(a, SendFrame)]


def only_frame(actions: list[Action]) -> bytes:
    out = frames(actions)
    assert len(out) == 1, actions
    return out[0]


def failure(actions: list[Action]) -> Failed:
    found = [a for a in actions if isinstance(a, Failed)]
    assert found, f"expected a failure in {actions}"
    return found[0]


def pair(pin: str | None = None, secret: bytes | None = None) -> tuple[Sender, Receiver, bytes]:
    key = secret or secrets.token_bytes(32)
    return (
        Sender(secret=key, channel_id=CHANNEL, pin=pin),
        Receiver(secret=key, channel_id=CHANNEL),
        key,
    )


def test_copy_flow_delivers_in_first_frame_and_finishes() -> None:
    sender, receiver, _ = pair()
    hello = only_frame(sender.start(HOME_KEY))
    got = receiver.receive(hello)
    assert Established() in got and Deliver(HOME_KEY) in got
    done = only_frame(receiver.finish())
    assert receiver.phase == Phase.FINISHED
    assert sender.receive(done) == [Established(), PeerDone()]
    assert sender.phase == Phase.FINISHED


def test_multi_round_trip_flow_with_back_to_back_messages() -> None:
    sender, receiver, _ = pair()
    request = ProvisioningInfo("tigress.car.key-creation-request.v1", {"entitlements": ["unlock"]})
    receiver.receive(only_frame(sender.start(request)))
    signing = ProvisioningInfo("tigress.car.key-signing-request.v1", {"pub": "x"})
    assert sender.receive(only_frame(receiver.send(signing))) == [Established(), Deliver(signing)]
    first = ProvisioningInfo("tigress.car.key-import.v1", {"part": 1})
    second = ProvisioningInfo("tigress.car.key-import.v1", {"part": 2})
    f1, f2 = only_frame(sender.send(first)), only_frame(sender.send(second))
    assert receiver.receive(f1) == [Deliver(first)]
    assert receiver.receive(f2) == [Deliver(second)]
    assert sender.receive(only_frame(receiver.finish())) == [PeerDone()]


def run_pin(sender: Sender, receiver: Receiver, guesses: list[str]) -> list[Action]:
    """Drive a PIN exchange; returns the last batch of receiver actions."""
    asked = receiver.receive(only_frame(sender.start()))
    assert isinstance(asked[0], AskPin)
    out: list[Action] = []
    for guess in guesses:
        start = only_frame(receiver.submit_pin(guess))
        reply_actions = sender.receive(start)
        if not frames(reply_actions):
            return reply_actions
        out = receiver.receive(only_frame(reply_actions))
        confirm = frames(out)
        if confirm and any(isinstance(a, Established) for a in out):
            assert sender.receive(confirm[0]) == [Established()]
            return out
        if any(isinstance(a, Failed) for a in out):
            for frame in confirm:
                sender.receive(frame)
            return out
    return out


def test_pin_correct_establishes_and_rekeys() -> None:
    sender, receiver, _ = pair(pin="482913")
    out = run_pin(sender, receiver, ["482913"])
    assert Established() in out
    assert sender.phase == receiver.phase == Phase.ESTABLISHED
    assert receiver.receive(only_frame(sender.send(HOME_KEY))) == [Deliver(HOME_KEY)]


def test_pin_wrong_then_right() -> None:
    sender, receiver, _ = pair(pin="482913")
    asked = receiver.receive(only_frame(sender.start()))
    assert asked == [AskPin(attempts_left=3, retry=False)]
    reply = only_frame(sender.receive(only_frame(receiver.submit_pin("000000"))))
    assert receiver.receive(reply) == [AskPin(attempts_left=2, retry=True)]
    reply = only_frame(sender.receive(only_frame(receiver.submit_pin("482913"))))
    out = receiver.receive(reply)
    assert Established() in out
    assert sender.receive(only_frame(out)) == [Established()]


def test_pin_attempts_exhausted_kills_both_sides() -> None:
    sender, receiver, _ = pair(pin="482913")
    receiver.receive(only_frame(sender.start()))
    last: list[Action] = []
    for guess in ["111111", "222222", "333333"]:
        reply = only_frame(sender.receive(only_frame(receiver.submit_pin(guess))))
        last = receiver.receive(reply)
    assert failure(last).reason == FailureReason.PIN_ATTEMPTS_EXCEEDED
    cancel = only_frame(last)
    assert failure(sender.receive(cancel)).reason == FailureReason.PEER_CANCELLED
    assert not sender.is_open and not receiver.is_open


def test_sender_refuses_more_pin_starts_than_allowed() -> None:
    """A receiver that ignores the limit locally still cannot guess more than allowed."""
    sender, receiver, _ = pair(pin="482913")
    sender_actions = sender.start()
    receiver.receive(only_frame(sender_actions))
    for guess in ["111111", "222222", "333333"]:
        sender.receive(only_frame(receiver.submit_pin(guess)))
        receiver._pin_used = 0  # a cheating receiver resets its own counter
        receiver.phase = Phase.AWAITING_PIN
    out = sender.receive(only_frame(receiver.submit_pin("444444")))
    assert failure(out).reason == FailureReason.PIN_ATTEMPTS_EXCEEDED
    assert len(frames(out)) == 1  # the sender tells the receiver the share is void


def test_provisioning_data_cannot_precede_pin() -> None:
    sender, _, _ = pair(pin="482913")
    with pytest.raises(ProtocolStateError):
        sender.start(HOME_KEY)


def test_wrong_secret_is_detected_by_receiver() -> None:
    sender = Sender(secret=secrets.token_bytes(32), channel_id=CHANNEL)
    receiver = Receiver(secret=secrets.token_bytes(32), channel_id=CHANNEL)
    assert (
        failure(receiver.receive(only_frame(sender.start(HOME_KEY)))).reason
        == FailureReason.WRONG_SECRET
    )


def test_foreign_mailbox_frame_is_detected() -> None:
    key = secrets.token_bytes(32)
    sender = Sender(secret=key, channel_id=CHANNEL + b"-other")
    receiver = Receiver(secret=key, channel_id=CHANNEL)
    assert (
        failure(receiver.receive(only_frame(sender.start()))).reason
        == FailureReason.FOREIGN_MESSAGE
    )


def test_foreign_frame_with_forged_tag_still_fails_authentication() -> None:
    key = secrets.token_bytes(32)
    sender = Sender(secret=key, channel_id=CHANNEL + b"-other")
    receiver = Receiver(secret=key, channel_id=CHANNEL)
    frame = bytearray(only_frame(sender.start()))
    own_tag = parse_frame(only_frame(Sender(secret=key, channel_id=CHANNEL).start())).tag
    frame[3:11] = own_tag
    assert failure(receiver.receive(bytes(frame))).reason == FailureReason.WRONG_SECRET


def established() -> tuple[Sender, Receiver]:
    sender, receiver, _ = pair()
    receiver.receive(only_frame(sender.start()))
    sender.receive(only_frame(receiver.send(HOME_KEY)))
    return sender, receiver


def test_replayed_data_frame_is_detected() -> None:
    sender, receiver = established()
    frame = only_frame(sender.send(HOME_KEY))
    receiver.receive(frame)
    out = receiver.receive(frame)
    assert failure(out).reason == FailureReason.REPLAYED


def test_replayed_handshake_frame_is_detected() -> None:
    sender, receiver, _ = pair()
    hello = only_frame(sender.start())
    receiver.receive(hello)
    sender.receive(only_frame(receiver.send(HOME_KEY)))
    assert failure(receiver.receive(hello)).reason == FailureReason.REPLAYED


def test_reordered_frames_are_detected() -> None:
    sender, receiver = established()
    first, second = only_frame(sender.send(HOME_KEY)), only_frame(sender.send(HOME_KEY))
    out = receiver.receive(second)
    assert failure(out).reason == FailureReason.MISSING_MESSAGE
    del first


def test_reflected_frame_is_detected() -> None:
    sender, _ = established()
    own = only_frame(sender.send(HOME_KEY))
    assert failure(sender.receive(own)).reason == FailureReason.REFLECTED


def test_truncated_conversation_ends_as_expired() -> None:
    sender, receiver = established()
    sender.send(HOME_KEY)  # the relay drops this one and everything after
    assert failure(receiver.expire()).reason == FailureReason.EXPIRED


@pytest.mark.parametrize("offset", [HEADER_SIZE, HEADER_SIZE + 5, -1])
def test_bit_flip_in_data_frame_is_tampering(offset: int) -> None:
    sender, receiver = established()
    frame = bytearray(only_frame(sender.send(HOME_KEY)))
    frame[offset] ^= 0x01
    assert failure(receiver.receive(bytes(frame))).reason == FailureReason.TAMPERED


def test_header_sequence_rewrite_is_detected() -> None:
    sender, receiver = established()
    frame = bytearray(only_frame(sender.send(HOME_KEY)))
    frame[14] ^= 0x01  # sequence 1 -> 0
    assert failure(receiver.receive(bytes(frame))).reason == FailureReason.REPLAYED


def test_malformed_bytes_are_rejected_cleanly() -> None:
    _, receiver, _ = pair()
    assert failure(receiver.receive(b"\x01garbage")).reason == FailureReason.MALFORMED


def test_tampering_notifies_the_peer_when_the_channel_allows() -> None:
    sender, receiver = established()
    frame = bytearray(only_frame(sender.send(HOME_KEY)))
    frame[-1] ^= 0x80
    out = receiver.receive(bytes(frame))
    notice = only_frame(out)
    peer = failure(sender.receive(notice))
    assert peer.reason == FailureReason.PEER_ERROR and peer.peer_code == "tampered"


@pytest.mark.parametrize("step", range(4))
def test_cancel_by_receiver_at_every_step_reaches_sender(step: int) -> None:
    sender, receiver, _ = pair()
    receiver.receive(only_frame(sender.start()))
    if step >= 1:
        sender.receive(only_frame(receiver.send(HOME_KEY)))
    if step >= 2:
        receiver.receive(only_frame(sender.send(HOME_KEY)))
    if step >= 3:
        sender.receive(only_frame(receiver.send(HOME_KEY)))
    out = receiver.cancel("declined", "not today")
    assert failure(out).reason == FailureReason.CANCELLED
    seen = failure(sender.receive(only_frame(out)))
    assert seen.reason == FailureReason.PEER_CANCELLED
    assert seen.peer_code == "declined" and "not today" in seen.detail


@pytest.mark.parametrize("step", range(3))
def test_cancel_by_sender_at_every_step(step: int) -> None:
    sender, receiver, _ = pair()
    hello = only_frame(sender.start())
    if step == 0:
        out = sender.cancel()
        del receiver
        assert frames(out) == []  # before the reply no frame can reach the receiver: relay DELETE
        assert failure(out).reason == FailureReason.CANCELLED
        return
    receiver.receive(hello)
    sender.receive(only_frame(receiver.send(HOME_KEY)))
    if step == 2:
        receiver.receive(only_frame(sender.send(HOME_KEY)))
    out = sender.cancel("revoked")
    assert failure(receiver.receive(only_frame(out))).peer_code == "revoked"


def test_receiver_cancel_while_asked_for_pin_completes_handshake() -> None:
    sender, receiver, _ = pair(pin="123456")
    receiver.receive(only_frame(sender.start()))
    out = receiver.cancel("declined")
    assert failure(sender.receive(only_frame(out))).reason == FailureReason.PEER_CANCELLED


def test_calls_after_the_end_raise_state_errors() -> None:
    sender, receiver = established()
    sender.receive(only_frame(receiver.finish()))
    with pytest.raises(ProtocolStateError):
        sender.send(HOME_KEY)
    with pytest.raises(ProtocolStateError):
        receiver.receive(b"x")


def test_snapshots_resume_at_every_step_with_pin() -> None:
    key = secrets.token_bytes(32)

    def hop(side: Sender | Receiver) -> Sender | Receiver:
        blob = side.to_bytes()
        assert key not in repr(side).encode()
        return type(side).from_bytes(blob)

    sender: Sender = Sender(secret=key, channel_id=CHANNEL, pin="2468")
    receiver: Receiver = Receiver(secret=key, channel_id=CHANNEL)
    hello = only_frame(sender.start())
    sender, receiver = hop(sender), hop(receiver)  # type: ignore[assignment]
    receiver.receive(hello)
    receiver = hop(receiver)  # type: ignore[assignment]
    start = only_frame(receiver.submit_pin("2468"))
    receiver = hop(receiver)  # type: ignore[assignment]
    reply = only_frame(sender.receive(start))
    sender = hop(sender)  # type: ignore[assignment]
    out = receiver.receive(reply)
    receiver = hop(receiver)  # type: ignore[assignment]
    assert sender.receive(only_frame(out)) == [Established()]
    sender = hop(sender)  # type: ignore[assignment]
    assert receiver.receive(only_frame(sender.send(HOME_KEY))) == [Deliver(HOME_KEY)]
    assert hop(receiver).phase == Phase.ESTABLISHED


def test_first_frame_sizes_do_not_reveal_content_length() -> None:
    small = ProvisioningInfo("tigress.hotel.token.v1", {"t": "x"})
    large = ProvisioningInfo("tigress.car.key.v1", {"blob": "y" * 700})
    a, _, _ = pair()
    b, _, _ = pair()
    assert len(only_frame(a.start(small))) == len(only_frame(b.start(large)))


def test_each_share_uses_fresh_ephemeral_keys() -> None:
    key = secrets.token_bytes(32)
    one = only_frame(Sender(secret=key, channel_id=CHANNEL).start())
    two = only_frame(Sender(secret=key, channel_id=CHANNEL).start())
    assert one[HEADER_SIZE : HEADER_SIZE + 32] != two[HEADER_SIZE : HEADER_SIZE + 32]


def _mutations(blob: bytes) -> list[bytes]:
    state = json.loads(blob)
    out = []
    for key in list(state):
        broken = dict(state)
        del broken[key]
        out.append(broken)
        if isinstance(state[key], str):
            out.append({**state, key: "!not base64!"})
        out.append({**state, key: 12345})
    return [json.dumps(m, sort_keys=True, separators=(",", ":")).encode() for m in out]


@pytest.mark.parametrize("side", ["sender", "receiver"])
def test_damaged_snapshots_raise_state_errors_only(side: str) -> None:
    sender, receiver = established()
    endpoint: Sender | Receiver = sender if side == "sender" else receiver
    blob = endpoint.to_bytes()
    for damaged in [b"", b"{}", b"not json", *_mutations(blob)]:
        try:
            type(endpoint).from_bytes(damaged)
        except ProtocolStateError:
            continue


def test_snapshot_of_the_other_role_is_refused() -> None:
    sender, _ = established()
    with pytest.raises(ProtocolStateError, match="receiver state snapshot"):
        Receiver.from_bytes(sender.to_bytes())
