"""Interoperability with an independent Noise implementation (PyPI ``noiseprotocol``, test-only).

Our initiator talks to their responder and their initiator to our responder, for the product's
NNpsk0 with both ciphers (and, because it costs nothing, every hash), through the handshake and
several transport messages in each direction. Fresh random ephemerals are used, so this
complements the fixed-key cacophony vectors.
"""

from __future__ import annotations

import json
import secrets

import pytest
from noise.connection import NoiseConnection

from tigress.crypto.noise import CipherState, HandshakeState

PROTOCOLS = [
    f"Noise_NNpsk0_25519_{cipher}_{hash_name}"
    for cipher in ("AESGCM", "ChaChaPoly")
    for hash_name in ("SHA256", "SHA512", "BLAKE2s", "BLAKE2b")
]
PROLOGUE = b"tigress mailbox 0123456789abcdef"
TRANSPORT_ROUNDS = 5


def _theirs(protocol_name: str, psk: bytes, *, initiator: bool) -> NoiseConnection:
    connection = NoiseConnection.from_name(protocol_name.encode("ascii"))
    connection.set_psks(psk)
    connection.set_prologue(PROLOGUE)
    if initiator:
        connection.set_as_initiator()
    else:
        connection.set_as_responder()
    connection.start_handshake()
    return connection


def _exchange_transport(
    ours: tuple[CipherState, CipherState], theirs: NoiseConnection, *, rounds: int
) -> None:
    send, receive = ours
    for index in range(rounds):
        outbound = f"ours->theirs #{index} ".encode() * (index + 1)
        assert bytes(theirs.decrypt(send.encrypt_with_ad(b"", outbound))) == outbound
        inbound = f"theirs->ours #{index} ".encode() * (index + 2)
        assert receive.decrypt_with_ad(b"", bytes(theirs.encrypt(inbound))) == inbound
    assert send.nonce == rounds
    assert receive.nonce == rounds


@pytest.mark.parametrize("protocol_name", PROTOCOLS)
def test_our_initiator_with_their_responder(protocol_name: str) -> None:
    psk = secrets.token_bytes(32)
    ours = HandshakeState(protocol_name, initiator=True, prologue=PROLOGUE, psks=[psk])
    theirs = _theirs(protocol_name, psk, initiator=False)

    assert bytes(theirs.read_message(ours.write_message(b"offer"))) == b"offer"
    assert ours.read_message(bytes(theirs.write_message(b"accept"))) == b"accept"

    assert ours.complete
    assert theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    _exchange_transport(ours.split(), theirs, rounds=TRANSPORT_ROUNDS)


@pytest.mark.parametrize("protocol_name", PROTOCOLS)
def test_their_initiator_with_our_responder(protocol_name: str) -> None:
    psk = secrets.token_bytes(32)
    theirs = _theirs(protocol_name, psk, initiator=True)
    ours = HandshakeState(protocol_name, initiator=False, prologue=PROLOGUE, psks=[psk])

    assert ours.read_message(bytes(theirs.write_message(b"offer"))) == b"offer"
    assert bytes(theirs.read_message(ours.write_message(b"accept"))) == b"accept"

    assert ours.complete
    assert theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    _exchange_transport(ours.split(), theirs, rounds=TRANSPORT_ROUNDS)


def test_interop_across_a_snapshot_resume() -> None:
    """Our initiator stops after message 1, resumes from JSON, and still talks to theirs."""
    protocol_name = PROTOCOLS[0]
    psk = secrets.token_bytes(32)
    ours = HandshakeState(protocol_name, initiator=True, prologue=PROLOGUE, psks=[psk])
    theirs = _theirs(protocol_name, psk, initiator=False)
    theirs.read_message(ours.write_message(b"offer"))
    resumed = HandshakeState.from_dict(json.loads(json.dumps(ours.to_dict())))
    del ours
    assert resumed.read_message(bytes(theirs.write_message(b"accept"))) == b"accept"
    _exchange_transport(resumed.split(), theirs, rounds=2)
