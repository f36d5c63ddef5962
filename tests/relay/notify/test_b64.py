"""Strict base64 codecs: round trips, canonical spellings only, and only the typed error."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tigress.relay.notify.b64 import Base64Error, b64_decode, b64url_decode, b64url_encode


@given(st.binary(max_size=100))
def test_round_trips(raw: bytes) -> None:
    assert b64url_decode(b64url_encode(raw)) == raw
    assert b64url_decode(base64.urlsafe_b64encode(raw).decode()) == raw  # padded form too
    assert b64_decode(base64.b64encode(raw).decode()) == raw
    assert b64_decode(base64.b64encode(raw).decode().rstrip("=")) == raw


@given(st.text(max_size=60))
def test_decoders_raise_only_the_typed_error(text: str) -> None:
    for decode in (b64url_decode, b64_decode):
        try:
            raw = decode(text)
        except Base64Error:
            continue
        assert isinstance(raw, bytes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ab+/", "outside"),
        ("ab c", "outside"),
        ("abc=d", "outside"),
        ("abcde", "impossible length"),
        ("ab=", "wrong padding"),
        ("QR", "non-zero trailing bits"),
    ],
)
def test_url_decoder_refusals(text: str, message: str) -> None:
    with pytest.raises(Base64Error, match=message):
        b64url_decode(text)


def test_standard_decoder_refuses_the_url_alphabet() -> None:
    with pytest.raises(Base64Error, match="outside"):
        b64_decode("ab-_")
