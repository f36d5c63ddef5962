"""CipherState, suites and pattern parsing: the pieces under the handshake."""

from __future__ import annotations

import contextlib
import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st
from noise.connection import NoiseConnection

from tigress.crypto.errors import (
    DecryptError,
    HandshakeError,
    MessageSizeError,
    NoiseError,
    NonceExhaustedError,
)
from tigress.crypto.noise import DEFAULT_SUITE, CipherState, HandshakeState, Suite
from tigress.crypto.noise_patterns import parse_pattern, parse_protocol_name, supported_patterns
from tigress.crypto.noise_suite import MAX_MESSAGE_LEN, MAX_NONCE

AESGCM_SUITE = Suite.parse("25519_AESGCM_SHA256")
CHACHA_SUITE = Suite.parse("25519_ChaChaPoly_SHA256")


def pair(suite: Suite = AESGCM_SUITE) -> tuple[CipherState, CipherState]:
    key = secrets.token_bytes(32)
    return CipherState(suite, key), CipherState(suite, key)


class TestNonceEncoding:
    """Spec §12.3/§12.4: 4 zero bytes, then the 64-bit counter, big-endian (AES) or little."""

    NONCE = 0x0102030405060708

    def test_aesgcm_nonce_is_big_endian(self) -> None:
        key = secrets.token_bytes(32)
        ours = CipherState(AESGCM_SUITE, key, nonce=self.NONCE).encrypt_with_ad(b"ad", b"pt")
        nonce = bytes(4) + bytes.fromhex("0102030405060708")
        assert ours == AESGCM(key).encrypt(nonce, b"pt", b"ad")

    def test_chachapoly_nonce_is_little_endian(self) -> None:
        key = secrets.token_bytes(32)
        ours = CipherState(CHACHA_SUITE, key, nonce=self.NONCE).encrypt_with_ad(b"ad", b"pt")
        nonce = bytes(4) + bytes.fromhex("0807060504030201")
        assert ours == ChaCha20Poly1305(key).encrypt(nonce, b"pt", b"ad")


class TestCipherState:
    def test_round_trip_advances_both_nonces(self) -> None:
        send, receive = pair()
        for index in range(5):
            assert receive.decrypt_with_ad(b"h", send.encrypt_with_ad(b"h", b"m%d" % index))
        assert send.nonce == receive.nonce == 5

    def test_no_key_is_identity(self) -> None:
        state = CipherState(AESGCM_SUITE)
        assert not state.has_key
        assert state.encrypt_with_ad(b"ad", b"plain") == b"plain"
        assert state.decrypt_with_ad(b"ad", b"plain") == b"plain"

    def test_failed_decryption_does_not_advance_the_nonce(self) -> None:
        send, receive = pair()
        ciphertext = send.encrypt_with_ad(b"", b"message")
        forged = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
        with pytest.raises(DecryptError):
            receive.decrypt_with_ad(b"", forged)
        assert receive.nonce == 0
        assert receive.decrypt_with_ad(b"", ciphertext) == b"message"

    @pytest.mark.parametrize("index", range(16 + 7))
    def test_every_flipped_byte_is_detected(self, index: int) -> None:
        send, receive = pair()
        ciphertext = bytearray(send.encrypt_with_ad(b"", b"payload"))
        ciphertext[index] ^= 0x80
        with pytest.raises(DecryptError):
            receive.decrypt_with_ad(b"", bytes(ciphertext))

    def test_replay_reorder_and_reflection_are_detected(self) -> None:
        send, receive = pair()
        first = send.encrypt_with_ad(b"", b"first")
        second = send.encrypt_with_ad(b"", b"second")
        with pytest.raises(DecryptError):  # reordered: second before first
            receive.decrypt_with_ad(b"", second)
        assert receive.decrypt_with_ad(b"", first) == b"first"
        with pytest.raises(DecryptError):  # replayed
            receive.decrypt_with_ad(b"", first)
        assert receive.decrypt_with_ad(b"", second) == b"second"

    def test_reflection_between_directions_is_detected(self) -> None:
        initiator = HandshakeState(
            "Noise_NNpsk0_25519_AESGCM_SHA256", initiator=True, psks=[b"k" * 32]
        )
        responder = HandshakeState(
            "Noise_NNpsk0_25519_AESGCM_SHA256", initiator=False, psks=[b"k" * 32]
        )
        responder.read_message(initiator.write_message(b""))
        initiator.read_message(responder.write_message(b""))
        init_send, init_recv = initiator.split()
        outbound = init_send.encrypt_with_ad(b"", b"to the responder")
        with pytest.raises(DecryptError):
            init_recv.decrypt_with_ad(b"", outbound)

    def test_associated_data_is_authenticated(self) -> None:
        send, receive = pair()
        with pytest.raises(DecryptError):
            receive.decrypt_with_ad(b"other", send.encrypt_with_ad(b"ad", b"x"))

    def test_short_ciphertext_is_a_decrypt_error(self) -> None:
        _, receive = pair()
        for length in range(16):
            with pytest.raises(DecryptError):
                receive.decrypt_with_ad(b"", bytes(length))

    def test_size_limits(self) -> None:
        send, receive = pair()
        largest = send.encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN - 16))
        assert len(largest) == MAX_MESSAGE_LEN
        assert receive.decrypt_with_ad(b"", largest) == bytes(MAX_MESSAGE_LEN - 16)
        with pytest.raises(MessageSizeError):
            send.encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN - 15))
        with pytest.raises(MessageSizeError):
            receive.decrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN + 1))
        with pytest.raises(MessageSizeError):
            CipherState(AESGCM_SUITE).encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN + 1))

    def test_nonce_exhaustion(self) -> None:
        send, receive = pair()
        send.set_nonce(MAX_NONCE - 1)
        receive.set_nonce(MAX_NONCE - 1)
        assert receive.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"last")) == b"last"
        with pytest.raises(NonceExhaustedError):
            send.encrypt_with_ad(b"", b"one too many")
        with pytest.raises(NonceExhaustedError):
            receive.decrypt_with_ad(b"", bytes(32))

    @pytest.mark.parametrize("nonce", [-1, 2**64, 1.5, True])
    def test_invalid_nonce_values(self, nonce: object) -> None:
        with pytest.raises(NoiseError):
            CipherState(AESGCM_SUITE, bytes(32), nonce=nonce)  # type: ignore[arg-type]
        with pytest.raises(NoiseError):
            CipherState(AESGCM_SUITE, bytes(32)).set_nonce(nonce)  # type: ignore[arg-type]

    @pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
    def test_invalid_key_length(self, length: int) -> None:
        with pytest.raises(NoiseError):
            CipherState(AESGCM_SUITE, bytes(length))

    def test_rekey_changes_the_key_but_not_the_nonce(self) -> None:
        send, receive = pair()
        assert receive.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"x")) == b"x"
        before = send.export()
        send.rekey()
        after = send.export()
        assert after[1] == before[1] == 1
        assert after[0] != before[0]
        ciphertext = send.encrypt_with_ad(b"", b"after rekey")
        with pytest.raises(DecryptError):
            receive.decrypt_with_ad(b"", ciphertext)
        receive.rekey()
        assert receive.decrypt_with_ad(b"", ciphertext) == b"after rekey"

    def test_rekey_matches_an_independent_implementation(self) -> None:
        psk = secrets.token_bytes(32)
        name = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
        ours = HandshakeState(name, initiator=True, psks=[psk])
        theirs = NoiseConnection.from_name(name.encode())
        theirs.set_psks(psk)
        theirs.set_as_responder()
        theirs.start_handshake()
        theirs.read_message(ours.write_message(b""))
        ours.read_message(bytes(theirs.write_message(b"")))
        send, receive = ours.split()
        send.rekey()
        theirs.rekey_inbound_cipher()
        assert bytes(theirs.decrypt(send.encrypt_with_ad(b"", b"rekeyed"))) == b"rekeyed"
        theirs.rekey_outbound_cipher()
        receive.rekey()
        assert receive.decrypt_with_ad(b"", bytes(theirs.encrypt(b"back"))) == b"back"

    def test_rekey_without_key_is_an_error(self) -> None:
        with pytest.raises(NoiseError):
            CipherState(AESGCM_SUITE).rekey()

    def test_export_and_restore_continue_identically(self) -> None:
        send, _ = pair()
        send.encrypt_with_ad(b"", b"one")
        key, nonce = send.export()
        restored = CipherState(AESGCM_SUITE, key, nonce)
        assert restored.encrypt_with_ad(b"", b"two") == send.encrypt_with_ad(b"", b"two")

    def test_wiped_state_is_unusable_and_never_falls_back_to_plaintext(self) -> None:
        send, _ = pair()
        send.wipe()
        assert not send.has_key
        for call in (
            lambda: send.encrypt_with_ad(b"", b"secret"),
            lambda: send.decrypt_with_ad(b"", bytes(32)),
            lambda: send.set_nonce(0),
            send.rekey,
            send.export,
        ):
            with pytest.raises(NoiseError, match="wiped"):
                call()

    def test_repr_has_no_key(self) -> None:
        key = secrets.token_bytes(32)
        text = repr(CipherState(AESGCM_SUITE, key, nonce=3))
        assert key.hex() not in text
        assert repr(key) not in text
        assert "nonce=3" in text

    @settings(max_examples=100, deadline=None)
    @given(ad=st.binary(max_size=64), plaintext=st.binary(max_size=2048))
    def test_round_trip_property(self, ad: bytes, plaintext: bytes) -> None:
        for suite in (AESGCM_SUITE, CHACHA_SUITE):
            send, receive = pair(suite)
            ciphertext = send.encrypt_with_ad(ad, plaintext)
            assert len(ciphertext) == len(plaintext) + 16
            assert receive.decrypt_with_ad(ad, ciphertext) == plaintext

    @settings(max_examples=100, deadline=None)
    @given(garbage=st.binary(max_size=256))
    def test_arbitrary_ciphertext_raises_only_decrypt_error(self, garbage: bytes) -> None:
        _, receive = pair()
        with pytest.raises(DecryptError):
            receive.decrypt_with_ad(b"", garbage)
        assert receive.nonce == 0


class TestSuite:
    def test_default_suite(self) -> None:
        assert DEFAULT_SUITE.name == "25519_AESGCM_SHA256"
        assert Suite(dh="25519", cipher="AESGCM", hash="SHA256") == DEFAULT_SUITE

    @pytest.mark.parametrize(
        "text",
        ["25519_AESGCM", "25519_AESGCM_SHA256_X", "25519_AESGCM_MD5", "25520_AESGCM_SHA256",
         "25519_AES_SHA256", "", "25519__SHA256", "25519_aesgcm_sha256"],
    )  # fmt: skip
    def test_invalid_suites(self, text: str) -> None:
        with pytest.raises(HandshakeError):
            Suite.parse(text)

    def test_keypair_repr_hides_the_private_key(self) -> None:
        pair_ = DEFAULT_SUITE.generate_keypair()
        assert pair_.private.hex() not in repr(pair_)
        assert DEFAULT_SUITE.keypair_from_private(pair_.private) == pair_

    def test_hash_lengths(self) -> None:
        lengths = {"SHA256": 32, "SHA512": 64, "BLAKE2s": 32, "BLAKE2b": 64}
        for hash_name, length in lengths.items():
            suite = Suite(dh="25519", cipher="AESGCM", hash=hash_name)
            assert suite.hash_len == length
            assert len(suite.hash_data(b"x")) == length
            assert all(len(out) == length for out in suite.hkdf(bytes(length), b"ikm", 3))

    def test_aead_key_repr_is_redacted(self) -> None:
        key = secrets.token_bytes(32)
        assert key.hex() not in repr(AESGCM_SUITE.aead_key(key))

    def test_448_handshake_with_generated_keys(self) -> None:
        name = "Noise_XX_448_ChaChaPoly_BLAKE2b"
        suite = Suite.parse("448_ChaChaPoly_BLAKE2b")
        init_static, resp_static = suite.generate_keypair(), suite.generate_keypair()
        assert len(init_static.public) == 56
        initiator = HandshakeState(name, initiator=True, s=init_static.private)
        responder = HandshakeState(name, initiator=False, s=resp_static.private)
        assert initiator.protocol_name == name
        assert initiator.initiator
        assert not responder.initiator
        known_before = initiator.remote_static
        assert known_before is None
        responder.read_message(initiator.write_message(b""))
        initiator.read_message(responder.write_message(b""))
        responder.read_message(initiator.write_message(b""))
        assert initiator.remote_static == resp_static.public
        assert responder.remote_static == init_static.public
        assert initiator.handshake_hash == responder.handshake_hash


class TestPatterns:
    def test_nnpsk0(self) -> None:
        pattern = parse_pattern("NNpsk0")
        assert pattern.messages == (("psk", "e"), ("e", "ee"))
        assert pattern.psk_count == 1
        assert not pattern.one_way

    def test_psk_modifiers_positions(self) -> None:
        assert parse_pattern("XXpsk3").messages[2] == ("s", "se", "psk")
        assert parse_pattern("NNpsk2").messages[1] == ("e", "ee", "psk")
        both = parse_pattern("XXpsk0+psk3")
        assert both.messages[0] == ("psk", "e")
        assert both.messages[2] == ("s", "se", "psk")
        assert both.psk_count == 2

    def test_one_way_patterns(self) -> None:
        for name in ("N", "K", "X", "Npsk0", "Xpsk1"):
            assert parse_pattern(name).one_way

    def test_required_patterns_are_supported(self) -> None:
        one_way = {"N", "K", "X"}
        interactive = {f"{i}{r}" for i in "NKXI" for r in "NKX"}
        assert one_way | interactive <= set(supported_patterns())

    @pytest.mark.parametrize(
        "name",
        ["", "nn", "NNN", "NNpsk", "NNpsk3", "NNpsk0+psk0", "NNpsk00", "NNpsk01", "NNpsk999",
         "XXfallback", "NN+psk0", "I", "N1", "IN1", "NNpsk0+", "NNpsk0+fallback", "Q", "XX1X",
         "NNpsk0 "],
    )  # fmt: skip
    def test_malformed_pattern_names(self, name: str) -> None:
        with pytest.raises(HandshakeError):
            parse_pattern(name)

    @pytest.mark.parametrize(
        "name",
        ["Noise_NN_25519_AESGCM", "Noise_NN_25519_AESGCM_SHA256_", "noise_NN_25519_AESGCM_SHA256",
         "Noise_NN_448_AESGCM_SHA3", "Noise_NN_25519_AESGCM_SHA256" + "x" * 300,
         "Noise_NN_25519_AESGCM_SHA256\u00e9", "NoisePSK_NN_25519_AESGCM_SHA256"],
    )  # fmt: skip
    def test_malformed_protocol_names(self, name: str) -> None:
        with pytest.raises(HandshakeError):
            parse_protocol_name(name)
        with pytest.raises(HandshakeError):
            HandshakeState(name, initiator=True)

    @settings(max_examples=300, deadline=None)
    @given(name=st.text(max_size=80))
    def test_arbitrary_names_raise_only_handshake_errors(self, name: str) -> None:
        with contextlib.suppress(HandshakeError):
            assert parse_protocol_name(name).text == name


class TestConstructorValidation:
    NNPSK0 = "Noise_NNpsk0_25519_AESGCM_SHA256"

    def test_psk_count_must_match(self) -> None:
        with pytest.raises(HandshakeError, match="PSK"):
            HandshakeState(self.NNPSK0, initiator=True)
        with pytest.raises(HandshakeError, match="PSK"):
            HandshakeState(self.NNPSK0, initiator=True, psks=[bytes(32), bytes(32)])
        with pytest.raises(HandshakeError, match="PSK"):
            HandshakeState("Noise_NN_25519_AESGCM_SHA256", initiator=True, psks=[bytes(32)])

    @pytest.mark.parametrize("length", [0, 16, 31, 33])
    def test_psk_length(self, length: int) -> None:
        with pytest.raises(HandshakeError, match="32 bytes"):
            HandshakeState(self.NNPSK0, initiator=True, psks=[bytes(length)])

    def test_static_key_required_and_refused(self) -> None:
        with pytest.raises(HandshakeError, match="s="):
            HandshakeState("Noise_XX_25519_AESGCM_SHA256", initiator=True)
        with pytest.raises(HandshakeError, match="s="):
            HandshakeState(self.NNPSK0, initiator=True, psks=[bytes(32)], s=bytes(32))

    def test_remote_static_pre_message(self) -> None:
        with pytest.raises(HandshakeError, match="rs="):
            HandshakeState("Noise_IK_25519_AESGCM_SHA256", initiator=True, s=bytes([7] * 32))
        with pytest.raises(HandshakeError, match="rs="):
            HandshakeState(
                "Noise_XX_25519_AESGCM_SHA256", initiator=True, s=bytes(32), rs=bytes(32)
            )
        with pytest.raises(HandshakeError, match="public keys are 32 bytes"):
            HandshakeState("Noise_NK_25519_AESGCM_SHA256", initiator=True, rs=bytes(31))

    def test_pre_message_ephemeral_is_refused_without_such_pattern(self) -> None:
        with pytest.raises(HandshakeError, match="re="):
            HandshakeState(self.NNPSK0, initiator=True, psks=[bytes(32)], re=bytes(32))

    def test_injected_ephemeral_refused_when_never_sent(self) -> None:
        with pytest.raises(HandshakeError, match="ephemeral"):
            HandshakeState(
                "Noise_N_25519_AESGCM_SHA256", initiator=False, s=bytes([5] * 32), e=bytes(32)
            )

    @pytest.mark.parametrize("length", [0, 31, 33])
    def test_private_key_lengths(self, length: int) -> None:
        with pytest.raises(HandshakeError, match="private keys"):
            HandshakeState(self.NNPSK0, initiator=True, psks=[bytes(32)], e=bytes(length))
