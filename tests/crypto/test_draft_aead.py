"""The draft's AEAD_AES_*_GCM payloads: known answers, exact layout, strict decoding, fuzz."""

from __future__ import annotations

import base64
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.crypto.draft_aead import (
    DRAFT_PAYLOAD_TYPES,
    IV_LEN,
    MAX_DRAFT_DATA_CHARS,
    TAG_LEN,
    open_draft_payload,
    seal_draft_payload,
)
from tigress.crypto.errors import (
    CryptoError,
    DraftPayloadError,
    PayloadAuthenticationError,
    PayloadEncodingError,
    PayloadKeyError,
    UnsupportedPayloadTypeError,
)

KEY_LEN = {"AEAD_AES_128_GCM": 16, "AEAD_AES_256_GCM": 32}

# Known answers from "The Galois/Counter Mode of Operation (GCM)", D. McGrew and J. Viega,
# test case 3 (AES-128) and test case 15 (AES-256): no AAD, 96-bit IV, 64-byte plaintext.
# Independent of the library under test; transcribed from the published paper.
GCM_PLAINTEXT = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_IV = bytes.fromhex("cafebabefacedbaddecaf888")
KNOWN_ANSWERS = [
    (
        "AEAD_AES_128_GCM",
        bytes.fromhex("feffe9928665731c6d6a8f9467308308"),
        bytes.fromhex(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
            "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985"
        ),
        bytes.fromhex("4d5c2af327cd64a62cf35abd2ba6fab4"),
    ),
    (
        "AEAD_AES_256_GCM",
        bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
        bytes.fromhex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
        ),
        bytes.fromhex("b094dac5d93471bdec1a502270e3cc6c"),
    ),
]


def test_payload_types() -> None:
    assert DRAFT_PAYLOAD_TYPES == ("AEAD_AES_128_GCM", "AEAD_AES_256_GCM")


@pytest.mark.parametrize(("payload_type", "key", "ciphertext", "tag"), KNOWN_ANSWERS)
def test_known_answer_layout_is_iv_ciphertext_tag(
    payload_type: str, key: bytes, ciphertext: bytes, tag: bytes
) -> None:
    data = seal_draft_payload(payload_type, key, GCM_PLAINTEXT, iv=GCM_IV)
    raw = base64.b64decode(data)
    assert raw[:IV_LEN] == GCM_IV
    assert raw[IV_LEN:-TAG_LEN] == ciphertext
    assert raw[-TAG_LEN:] == tag
    assert data == base64.b64encode(GCM_IV + ciphertext + tag).decode("ascii")
    assert open_draft_payload(payload_type, key, data) == GCM_PLAINTEXT


@pytest.mark.parametrize("payload_type", DRAFT_PAYLOAD_TYPES)
def test_random_iv_each_time(payload_type: str) -> None:
    key = secrets.token_bytes(KEY_LEN[payload_type])
    first = seal_draft_payload(payload_type, key, b"same")
    second = seal_draft_payload(payload_type, key, b"same")
    assert first != second
    assert base64.b64decode(first)[:IV_LEN] != base64.b64decode(second)[:IV_LEN]
    assert len(base64.b64decode(first)) == IV_LEN + 4 + TAG_LEN


@pytest.mark.parametrize("payload_type", DRAFT_PAYLOAD_TYPES)
def test_empty_plaintext_round_trip(payload_type: str) -> None:
    key = secrets.token_bytes(KEY_LEN[payload_type])
    data = seal_draft_payload(payload_type, key, b"")
    assert len(base64.b64decode(data)) == IV_LEN + TAG_LEN
    assert open_draft_payload(payload_type, key, data) == b""


class TestRejections:
    KEY = bytes(range(16))

    def sealed(self) -> str:
        return seal_draft_payload("AEAD_AES_128_GCM", self.KEY, b"credential")

    @pytest.mark.parametrize(
        "payload_type", ["AEAD_AES_192_GCM", "aead_aes_128_gcm", "", "AEAD_CHACHA20_POLY1305", None]
    )
    def test_unknown_type(self, payload_type: str) -> None:
        with pytest.raises(UnsupportedPayloadTypeError):
            seal_draft_payload(payload_type, self.KEY, b"x")
        with pytest.raises(UnsupportedPayloadTypeError):
            open_draft_payload(payload_type, self.KEY, self.sealed())

    @pytest.mark.parametrize(
        ("payload_type", "length"),
        [("AEAD_AES_128_GCM", 32), ("AEAD_AES_128_GCM", 15), ("AEAD_AES_256_GCM", 16),
         ("AEAD_AES_256_GCM", 24), ("AEAD_AES_256_GCM", 0)],
    )  # fmt: skip
    def test_wrong_key_length_for_the_type(self, payload_type: str, length: int) -> None:
        with pytest.raises(PayloadKeyError):
            seal_draft_payload(payload_type, bytes(length), b"x")
        with pytest.raises(PayloadKeyError):
            open_draft_payload(payload_type, bytes(length), self.sealed())

    def test_key_must_be_bytes(self) -> None:
        with pytest.raises(PayloadKeyError):
            open_draft_payload("AEAD_AES_128_GCM", "0" * 16, self.sealed())  # type: ignore[arg-type]

    def test_plaintext_too_long_to_encode_within_the_data_limit(self) -> None:
        limit = MAX_DRAFT_DATA_CHARS // 4 * 3 - IV_LEN - TAG_LEN
        with pytest.raises(DraftPayloadError, match="plaintext longer"):
            seal_draft_payload("AEAD_AES_128_GCM", self.KEY, bytes(limit + 1))
        largest = seal_draft_payload("AEAD_AES_128_GCM", self.KEY, bytes(limit))
        assert len(largest) == MAX_DRAFT_DATA_CHARS
        assert open_draft_payload("AEAD_AES_128_GCM", self.KEY, largest) == bytes(limit)

    def test_wrong_iv_length(self) -> None:
        with pytest.raises(DraftPayloadError):
            seal_draft_payload("AEAD_AES_128_GCM", self.KEY, b"x", iv=bytes(16))

    def test_wrong_key_fails_authentication(self) -> None:
        with pytest.raises(PayloadAuthenticationError):
            open_draft_payload("AEAD_AES_128_GCM", bytes(16), self.sealed())

    def test_every_flipped_byte_fails_authentication(self) -> None:
        raw = base64.b64decode(self.sealed())
        for index in range(len(raw)):
            tampered = bytearray(raw)
            tampered[index] ^= 0x01
            data = base64.b64encode(bytes(tampered)).decode("ascii")
            with pytest.raises(PayloadAuthenticationError):
                open_draft_payload("AEAD_AES_128_GCM", self.KEY, data)

    def test_truncated_or_extended_fails(self) -> None:
        raw = base64.b64decode(self.sealed())
        for candidate in (raw[:-1], raw[1:], raw + b"\x00"):
            data = base64.b64encode(candidate).decode("ascii")
            with pytest.raises(PayloadAuthenticationError):
                open_draft_payload("AEAD_AES_128_GCM", self.KEY, data)

    @pytest.mark.parametrize("length", range(IV_LEN + TAG_LEN))
    def test_too_short(self, length: int) -> None:
        data = base64.b64encode(bytes(length)).decode("ascii")
        with pytest.raises(PayloadEncodingError, match="at least"):
            open_draft_payload("AEAD_AES_128_GCM", self.KEY, data)

    def test_non_canonical_and_malformed_base64(self) -> None:
        good = self.sealed()
        raw = base64.b64decode(good)
        # 29 bytes encode to 40 characters ending in "X="; the last symbol "X" carries two
        # unused low bits that must be zero. Setting one gives a second spelling of the same
        # bytes, which lenient decoders accept and we must not.
        odd = base64.b64encode(raw[:29]).decode("ascii")
        assert odd.endswith("=")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        non_canonical = odd[:-2] + alphabet[alphabet.index(odd[-2]) | 1] + "="
        assert base64.b64decode(non_canonical) == raw[:29]
        bad_inputs = [
            non_canonical,
            odd[:-1],  # padding removed
            odd + "=",  # extra padding
            " " + good,
            good + "\n",
            good[:8] + "\n" + good[8:],
            good + "AAAA",
            odd + "AAAA",  # data after padding
            "!" * 40,
            "\u00e9" * 40,
            "",
        ]
        for data in bad_inputs:
            with pytest.raises(PayloadEncodingError):
                open_draft_payload("AEAD_AES_128_GCM", self.KEY, data)

    def test_url_safe_alphabet_is_refused(self) -> None:
        raw = bytes([0xFB, 0xFF]) * 20  # encodes to '+' and '/' in the standard alphabet
        data = base64.urlsafe_b64encode(raw).decode("ascii")
        assert "-" in data or "_" in data
        with pytest.raises(PayloadEncodingError):
            open_draft_payload("AEAD_AES_128_GCM", self.KEY, data)

    def test_data_must_be_a_string(self) -> None:
        with pytest.raises(PayloadEncodingError):
            open_draft_payload("AEAD_AES_128_GCM", self.KEY, self.sealed().encode())  # type: ignore[arg-type]

    def test_oversized_data_is_refused_before_decoding(self) -> None:
        with pytest.raises(PayloadEncodingError, match="longer"):
            open_draft_payload("AEAD_AES_128_GCM", self.KEY, "A" * (MAX_DRAFT_DATA_CHARS + 4))

    def test_errors_form_one_hierarchy(self) -> None:
        for error in (
            UnsupportedPayloadTypeError,
            PayloadKeyError,
            PayloadEncodingError,
            PayloadAuthenticationError,
        ):
            assert issubclass(error, DraftPayloadError)
        assert issubclass(DraftPayloadError, CryptoError)


@settings(max_examples=200, deadline=None)
@given(
    payload_type=st.sampled_from(DRAFT_PAYLOAD_TYPES),
    plaintext=st.binary(max_size=4096),
    data=st.data(),
)
def test_round_trip_property(payload_type: str, plaintext: bytes, data: st.DataObject) -> None:
    key = data.draw(st.binary(min_size=KEY_LEN[payload_type], max_size=KEY_LEN[payload_type]))
    sealed = seal_draft_payload(payload_type, key, plaintext)
    assert len(base64.b64decode(sealed)) == IV_LEN + len(plaintext) + TAG_LEN
    assert open_draft_payload(payload_type, key, sealed) == plaintext


@settings(max_examples=300, deadline=None)
@given(
    garbage=st.one_of(
        st.text(max_size=200), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
    )
)
def test_arbitrary_data_raises_only_draft_payload_errors(garbage: str) -> None:
    with pytest.raises(DraftPayloadError):
        open_draft_payload("AEAD_AES_256_GCM", bytes(32), garbage)
