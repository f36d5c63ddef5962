"""Handshake snapshots: a device stops between handshake messages and resumes days later.

The property that matters: resuming from a JSON round trip of ``to_dict`` behaves *byte for
byte* like the party that never stopped. And a corrupted snapshot is refused with a typed
error instead of resuming into a subtly different handshake.
"""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import pytest

from tigress.crypto.errors import HandshakeError, SnapshotError
from tigress.crypto.noise import HandshakeState

PROTOCOL = "Noise_NNpsk0_25519_AESGCM_SHA256"
PSK = secrets.token_bytes(32)
PROLOGUE = b"mailbox:resume"


def json_round_trip(state: HandshakeState) -> HandshakeState:
    return HandshakeState.from_dict(json.loads(json.dumps(state.to_dict())))


def fixed_pair(protocol: str = PROTOCOL) -> tuple[HandshakeState, HandshakeState]:
    """Parties with injected ephemerals, so two runs are deterministic and comparable."""
    init_e, resp_e = bytes([1] * 32), bytes([2] * 32)
    return (
        HandshakeState(protocol, initiator=True, prologue=PROLOGUE, psks=[PSK], e=init_e),
        HandshakeState(protocol, initiator=False, prologue=PROLOGUE, psks=[PSK], e=resp_e),
    )


def transcript(initiator: HandshakeState, responder: HandshakeState) -> list[bytes]:
    """Finish the handshake and send two transport messages each way; return all bytes."""
    out: list[bytes] = []
    while not (initiator.complete and responder.complete):
        sender, receiver = (
            (initiator, responder) if initiator.is_my_turn else (responder, initiator)
        )
        message = sender.write_message(b"step %d" % sender.message_index)
        out += [message, receiver.read_message(message)]
    out.append(initiator.handshake_hash)
    (init_send, init_recv), (resp_send, resp_recv) = initiator.split(), responder.split()
    for index in range(2):
        to_responder = init_send.encrypt_with_ad(b"", b"i->r %d" % index)
        to_initiator = resp_send.encrypt_with_ad(b"", b"r->i %d" % index)
        out += [to_responder, resp_recv.decrypt_with_ad(b"", to_responder)]
        out += [to_initiator, init_recv.decrypt_with_ad(b"", to_initiator)]
    return out


def test_initiator_resumed_after_message_one_is_byte_identical() -> None:
    baseline = transcript(*fixed_pair())

    initiator, responder = fixed_pair()
    message1 = initiator.write_message(b"step 0")
    resumed = json_round_trip(initiator)
    del initiator  # the process "exits"
    assert resumed.message_index == 1
    assert resumed.is_my_turn is False
    resumed_run = [message1, responder.read_message(message1), *transcript(resumed, responder)]
    assert resumed_run == baseline


def test_snapshot_before_any_message_is_byte_identical() -> None:
    baseline = transcript(*fixed_pair())
    initiator, responder = fixed_pair()
    assert transcript(json_round_trip(initiator), json_round_trip(responder)) == baseline


def test_responder_resumed_after_reading_message_one_is_byte_identical() -> None:
    baseline = transcript(*fixed_pair())
    initiator, responder = fixed_pair()
    message1 = initiator.write_message(b"step 0")
    payload = responder.read_message(message1)
    resumed = json_round_trip(responder)
    assert [message1, payload, *transcript(initiator, resumed)] == baseline


def test_three_message_pattern_with_static_keys_resumes_at_every_step() -> None:
    protocol = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b"
    statics = (secrets.token_bytes(32), secrets.token_bytes(32))

    def pair() -> tuple[HandshakeState, HandshakeState]:
        return (
            HandshakeState(protocol, initiator=True, psks=[PSK], s=statics[0], e=bytes([3] * 32)),
            HandshakeState(protocol, initiator=False, psks=[PSK], s=statics[1], e=bytes([4] * 32)),
        )

    baseline = transcript(*pair())
    for stop_after in range(4):
        initiator, responder = pair()
        prefix: list[bytes] = []
        for _ in range(stop_after):
            sender, receiver = (
                (initiator, responder) if initiator.is_my_turn else (responder, initiator)
            )
            message = sender.write_message(b"step %d" % sender.message_index)
            prefix += [message, receiver.read_message(message)]
        initiator, responder = json_round_trip(initiator), json_round_trip(responder)
        assert [*prefix, *transcript(initiator, responder)] == baseline, stop_after


def test_generated_ephemeral_survives_the_snapshot() -> None:
    """A snapshot taken after message one keeps the ephemeral key needed to read message two."""
    initiator = HandshakeState(PROTOCOL, initiator=True, psks=[PSK])
    responder = HandshakeState(PROTOCOL, initiator=False, psks=[PSK])
    responder.read_message(initiator.write_message(b""))
    snapshot = initiator.to_dict()
    assert snapshot["e"] is not None
    resumed = HandshakeState.from_dict(snapshot)
    assert resumed.read_message(responder.write_message(b"ok")) == b"ok"
    assert resumed.handshake_hash == responder.handshake_hash


def test_snapshot_is_plain_json_types() -> None:
    initiator, _ = fixed_pair()
    snapshot = initiator.to_dict()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["psks"] == [PSK.hex()]


def test_no_snapshot_after_split() -> None:
    initiator, responder = fixed_pair()
    transcript(initiator, responder)
    with pytest.raises(HandshakeError):
        initiator.to_dict()


def _valid_snapshot() -> dict[str, Any]:
    initiator, _ = fixed_pair()
    initiator.write_message(b"")
    return initiator.to_dict()


CORRUPTIONS: list[tuple[str, Any]] = [
    ("format", "tigress.noise.handshake/0"),
    ("protocol_name", "Noise_NNpsk0_25519_AESGCM_MD5"),
    ("protocol_name", 7),
    ("initiator", 1),
    ("initiator", "true"),
    ("message_index", True),
    ("message_index", -1),
    ("message_index", 3),
    ("message_index", "1"),
    ("psk_index", 0),
    ("psks", []),
    ("psks", "00" * 32),
    ("psks", ["00" * 31]),
    ("e", "zz" * 32),
    ("e", "AB" * 32),
    ("e", "00" * 31),
    ("e", " 0" * 32),
    ("rs", 5),
    ("ck", "00" * 33),
    ("ck", None),
    ("h", ""),
    ("k", "00" * 16),
    ("n", -1),
    ("n", 2**64),
    ("n", 1.0),
]


@pytest.mark.parametrize(("field", "value"), CORRUPTIONS)
def test_corrupted_snapshot_is_refused(field: str, value: Any) -> None:
    snapshot = _valid_snapshot()
    snapshot[field] = value
    with pytest.raises(SnapshotError):
        HandshakeState.from_dict(snapshot)


def test_missing_or_extra_fields_are_refused() -> None:
    snapshot = _valid_snapshot()
    for field in snapshot:
        broken = copy.deepcopy(snapshot)
        del broken[field]
        with pytest.raises(SnapshotError):
            HandshakeState.from_dict(broken)
    with pytest.raises(SnapshotError):
        HandshakeState.from_dict({**snapshot, "extra": 1})


def test_non_mapping_is_refused() -> None:
    with pytest.raises(SnapshotError):
        HandshakeState.from_dict([1, 2, 3])  # type: ignore[arg-type]


def test_snapshot_missing_a_needed_static_key_is_refused() -> None:
    state = HandshakeState("Noise_XX_25519_AESGCM_SHA256", initiator=True, s=bytes([9] * 32))
    snapshot = state.to_dict()
    snapshot["s"] = None
    with pytest.raises(SnapshotError, match="static"):
        HandshakeState.from_dict(snapshot)
