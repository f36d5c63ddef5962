"""Handshake behaviour: tampering, wrong secrets, turn order, sizes and hostile input.

These are the channel's security properties as the rest of tigress relies on them: whatever a
relay does to the bytes in a mailbox, the Noise engine answers with a typed NoiseError and
never accepts altered data or crashes with an untyped exception.
"""

from __future__ import annotations

import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tigress.crypto.errors import (
    CryptoError,
    DecryptError,
    HandshakeError,
    MessageSizeError,
    NoiseError,
)
from tigress.crypto.noise import MAX_MESSAGE_LEN, HandshakeState
from tigress.crypto.noise_patterns import parse_protocol_name
from tigress.crypto.noise_suite import DEFAULT_SUITE

PROTOCOL = "Noise_NNpsk0_25519_AESGCM_SHA256"
PSK = bytes(range(32))
PROLOGUE = b"mailbox:3f9a"


def make_pair(
    protocol: str = PROTOCOL,
    *,
    init_psk: bytes = PSK,
    resp_psk: bytes = PSK,
    init_prologue: bytes = PROLOGUE,
    resp_prologue: bytes = PROLOGUE,
) -> tuple[HandshakeState, HandshakeState]:
    initiator = HandshakeState(protocol, initiator=True, prologue=init_prologue, psks=[init_psk])
    responder = HandshakeState(protocol, initiator=False, prologue=resp_prologue, psks=[resp_psk])
    return initiator, responder


def flip_bit(data: bytes, index: int, bit: int = 0) -> bytes:
    mutable = bytearray(data)
    mutable[index] ^= 1 << bit
    return bytes(mutable)


def test_full_nnpsk0_handshake_and_transport() -> None:
    initiator, responder = make_pair()
    assert initiator.is_my_turn
    assert not responder.is_my_turn
    message1 = initiator.write_message(b"hello")
    assert len(message1) == 32 + len(b"hello") + 16  # e, then the payload under the PSK key
    assert responder.read_message(message1) == b"hello"
    message2 = responder.write_message(b"world")
    assert initiator.read_message(message2) == b"world"
    assert initiator.complete
    assert responder.complete
    assert initiator.handshake_hash == responder.handshake_hash
    assert len(initiator.handshake_hash) == 32

    init_send, init_recv = initiator.split()
    resp_send, resp_recv = responder.split()
    for index in range(3):
        assert resp_recv.decrypt_with_ad(b"", init_send.encrypt_with_ad(b"", b"i%d" % index))
        assert init_recv.decrypt_with_ad(b"", resp_send.encrypt_with_ad(b"", b"r%d" % index))


def test_the_psk_payload_of_message_one_is_encrypted() -> None:
    initiator, _ = make_pair()
    secret_payload = b"car key #42 for Alice"
    assert secret_payload not in initiator.write_message(secret_payload)


@pytest.mark.parametrize("index", range(32 + 5 + 16))
def test_flipped_bit_in_message_one_is_detected(index: int) -> None:
    initiator, responder = make_pair()
    message1 = initiator.write_message(b"hello")
    with pytest.raises(DecryptError):
        responder.read_message(flip_bit(message1, index))
    # The failed read left the responder untouched: the genuine message still works.
    assert responder.read_message(message1) == b"hello"


@pytest.mark.parametrize("index", range(32 + 5 + 16))
def test_flipped_bit_in_message_two_is_detected(index: int) -> None:
    initiator, responder = make_pair()
    responder.read_message(initiator.write_message(b""))
    message2 = responder.write_message(b"world")
    # Bit 7 of the last key byte is masked by X25519 itself; it must still be caught (h).
    with pytest.raises(DecryptError):
        initiator.read_message(flip_bit(message2, index, bit=7 if index == 31 else 0))
    assert initiator.read_message(message2) == b"world"
    assert initiator.complete


def test_wrong_psk_fails_on_message_one() -> None:
    initiator, responder = make_pair(resp_psk=secrets.token_bytes(32))
    with pytest.raises(DecryptError):
        responder.read_message(initiator.write_message(b"x"))


def test_wrong_prologue_fails_on_message_one() -> None:
    initiator, responder = make_pair(resp_prologue=b"mailbox:another")
    with pytest.raises(DecryptError):
        responder.read_message(initiator.write_message(b""))


def test_wrong_prologue_fails_even_without_psk() -> None:
    """Without a PSK the first payload is plaintext; the mismatch surfaces at message two."""
    initiator = HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=True, prologue=b"a")
    responder = HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=False, prologue=b"b")
    responder.read_message(initiator.write_message(b""))
    with pytest.raises(DecryptError):
        initiator.read_message(responder.write_message(b""))


def test_message_from_another_session_is_rejected() -> None:
    """A relay swapping in message two of a parallel session with the same PSK is detected."""
    initiator_a, responder_a = make_pair()
    initiator_b, responder_b = make_pair()
    responder_a.read_message(initiator_a.write_message(b""))
    responder_b.read_message(initiator_b.write_message(b""))
    with pytest.raises(DecryptError):
        initiator_a.read_message(responder_b.write_message(b""))


def test_reflected_message_one_is_rejected() -> None:
    """A relay echoing the initiator's message back as the responder's reply is detected."""
    initiator, _ = make_pair()
    message1 = initiator.write_message(b"")
    with pytest.raises(NoiseError):
        initiator.read_message(message1)


@pytest.fixture
def nn_pair() -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=True),
        HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=False),
    )


def test_all_zero_peer_ephemeral_raises_handshake_error(
    nn_pair: tuple[HandshakeState, HandshakeState],
) -> None:
    initiator, responder = nn_pair
    responder.read_message(initiator.write_message(b""))
    # An all-zero X25519 point has small order: the DH output would be zero. Refused, typed.
    hostile = bytes(32) + bytes(16)
    with pytest.raises(HandshakeError, match="invalid 25519 public key"):
        initiator.read_message(hostile)
    assert not initiator.complete


class TestTurnOrder:
    def test_initiator_cannot_read_first(self) -> None:
        initiator, _ = make_pair()
        with pytest.raises(HandshakeError, match="out of turn"):
            initiator.read_message(bytes(64))

    def test_responder_cannot_write_first(self) -> None:
        _, responder = make_pair()
        with pytest.raises(HandshakeError, match="out of turn"):
            responder.write_message(b"")

    def test_initiator_cannot_write_twice(self) -> None:
        initiator, _ = make_pair()
        initiator.write_message(b"")
        with pytest.raises(HandshakeError, match="out of turn"):
            initiator.write_message(b"")

    def test_no_handshake_messages_after_completion(self) -> None:
        initiator, responder = make_pair()
        responder.read_message(initiator.write_message(b""))
        initiator.read_message(responder.write_message(b""))
        with pytest.raises(HandshakeError, match="complete"):
            initiator.write_message(b"")
        with pytest.raises(HandshakeError, match="complete"):
            responder.read_message(bytes(64))

    def test_split_only_once_and_only_when_complete(self) -> None:
        initiator, responder = make_pair()
        with pytest.raises(HandshakeError, match="before the handshake is complete"):
            initiator.split()
        responder.read_message(initiator.write_message(b""))
        initiator.read_message(responder.write_message(b""))
        initiator.split()
        with pytest.raises(HandshakeError, match="already"):
            initiator.split()
        with pytest.raises(HandshakeError):
            initiator.write_message(b"")

    def test_wipe_ends_the_handshake(self) -> None:
        initiator, _ = make_pair()
        initiator.wipe()
        with pytest.raises(HandshakeError):
            initiator.write_message(b"")
        with pytest.raises(HandshakeError):
            initiator.to_dict()


class TestSizes:
    # NNpsk0 message 1 is e (32) + payload + tag (16).
    LARGEST_PAYLOAD = MAX_MESSAGE_LEN - 32 - 16

    def test_largest_payload_fits_exactly(self) -> None:
        initiator, responder = make_pair()
        message1 = initiator.write_message(bytes(self.LARGEST_PAYLOAD))
        assert len(message1) == MAX_MESSAGE_LEN
        assert responder.read_message(message1) == bytes(self.LARGEST_PAYLOAD)

    def test_one_byte_more_is_refused_and_state_is_kept(self) -> None:
        initiator, responder = make_pair()
        with pytest.raises(MessageSizeError):
            initiator.write_message(bytes(self.LARGEST_PAYLOAD + 1))
        assert initiator.message_index == 0
        assert responder.read_message(initiator.write_message(b"ok")) == b"ok"

    def test_huge_payload_is_refused_before_any_work(self) -> None:
        initiator, _ = make_pair()
        with pytest.raises(MessageSizeError):
            initiator.write_message(bytes(MAX_MESSAGE_LEN + 1))

    def test_oversize_incoming_message_is_refused(self) -> None:
        _, responder = make_pair()
        with pytest.raises(MessageSizeError):
            responder.read_message(bytes(MAX_MESSAGE_LEN + 1))

    @pytest.mark.parametrize("length", range(32 + 16 + 3))
    def test_every_truncation_of_message_one_is_a_typed_error(self, length: int) -> None:
        initiator, responder = make_pair()
        message1 = initiator.write_message(b"abc")
        with pytest.raises(NoiseError):
            responder.read_message(message1[:length])
        assert responder.read_message(message1) == b"abc"

    def test_truncated_static_key_is_a_handshake_error(self) -> None:
        responder_static = secrets.token_bytes(32)
        initiator = HandshakeState(
            "Noise_XX_25519_AESGCM_SHA256", initiator=True, s=secrets.token_bytes(32)
        )
        responder = HandshakeState(
            "Noise_XX_25519_AESGCM_SHA256", initiator=False, s=responder_static
        )
        responder.read_message(initiator.write_message(b""))
        message2 = responder.write_message(b"")
        with pytest.raises(HandshakeError, match="truncated"):
            initiator.read_message(message2[: 32 + 20])

    def test_non_bytes_message_is_a_handshake_error(self) -> None:
        _, responder = make_pair()
        with pytest.raises(HandshakeError):
            responder.read_message("not bytes")  # type: ignore[arg-type]


def _static_protocol_pair(protocol: str) -> tuple[HandshakeState, HandshakeState]:
    """Both parties of a pattern needing static keys, with the right pre-messages set."""
    pattern = parse_protocol_name(protocol).pattern
    init_static = DEFAULT_SUITE.generate_keypair()
    resp_static = DEFAULT_SUITE.generate_keypair()
    uses = {
        True: any("s" in m for m in pattern.messages[0::2]) or "s" in pattern.initiator_pre,
        False: any("s" in m for m in pattern.messages[1::2]) or "s" in pattern.responder_pre,
    }
    psks = [PSK] * pattern.psk_count
    initiator = HandshakeState(
        protocol,
        initiator=True,
        psks=psks,
        s=init_static.private if uses[True] else None,
        rs=resp_static.public if "s" in pattern.responder_pre else None,
    )
    responder = HandshakeState(
        protocol,
        initiator=False,
        psks=psks,
        s=resp_static.private if uses[False] else None,
        rs=init_static.public if "s" in pattern.initiator_pre else None,
    )
    return initiator, responder


FUZZ_PROTOCOLS = [
    "Noise_NNpsk0_25519_AESGCM_SHA256",
    "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b",
    "Noise_NN_25519_AESGCM_SHA256",
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_IK_25519_AESGCM_SHA512",
    "Noise_XXpsk3_25519_AESGCM_BLAKE2s",
    "Noise_N_25519_AESGCM_SHA256",
]


@pytest.mark.parametrize("protocol", FUZZ_PROTOCOLS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_noise_errors(protocol: str, garbage: bytes) -> None:
    initiator, responder = _static_protocol_pair(protocol)
    if _accepts(responder, garbage):
        # Only unauthenticated first messages (NN, XX: a bare ephemeral key) can be forged.
        assert not parse_protocol_name(protocol).pattern.is_psk
        return
    # A rejected message changed nothing: the genuine one is still accepted.
    assert responder.read_message(initiator.write_message(b"payload")) == b"payload"
    if responder.complete:
        return
    assert not _accepts(initiator, garbage)
    assert initiator.read_message(responder.write_message(b"reply")) == b"reply"


def _accepts(state: HandshakeState, message: bytes) -> bool:
    try:
        state.read_message(message)
    except NoiseError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_genuine_messages_raise_only_noise_errors(data: st.DataObject) -> None:
    """Random edits of real messages (the relay's most plausible attack) are always caught."""
    initiator, responder = make_pair()
    message1 = initiator.write_message(b"payload")
    position = data.draw(st.integers(min_value=0, max_value=len(message1) - 1))
    replacement = data.draw(st.binary(max_size=8))
    cut = data.draw(st.integers(min_value=0, max_value=8))
    mutated = message1[:position] + replacement + message1[position + cut :]
    if mutated == message1:
        assert responder.read_message(mutated) == b"payload"
        return
    with pytest.raises(NoiseError):
        responder.read_message(mutated)


def test_noise_errors_are_crypto_errors() -> None:
    assert issubclass(NoiseError, CryptoError)
    assert issubclass(DecryptError, NoiseError)
    assert issubclass(HandshakeError, NoiseError)
    assert issubclass(MessageSizeError, NoiseError)


def test_repr_never_shows_secrets() -> None:
    static = secrets.token_bytes(32)
    ephemeral = secrets.token_bytes(32)
    state = HandshakeState(
        "Noise_XXpsk3_25519_AESGCM_SHA256", initiator=True, psks=[PSK], s=static, e=ephemeral
    )
    state.write_message(b"")
    text = repr(state) + str(state)
    for secret in (static, ephemeral, PSK):
        assert secret.hex() not in text
        assert repr(secret) not in text
