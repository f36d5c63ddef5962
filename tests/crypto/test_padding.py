"""Padding to size buckets: exact bucket sizes, strict unpadding, round-trip property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.crypto.errors import CryptoError, PaddingError
from tigress.crypto.padding import (
    LENGTH_PREFIX_LEN,
    MAX_PADDED_MESSAGE,
    PAD_BUCKETS,
    pad,
    padded_size,
    unpad,
)


def test_constants() -> None:
    assert PAD_BUCKETS == (1024, 4096, 16384, 32768)
    assert MAX_PADDED_MESSAGE == 32768 - 4
    assert issubclass(PaddingError, CryptoError)


@pytest.mark.parametrize(
    ("length", "bucket"),
    [(0, 1024), (1, 1024), (1020, 1024), (1021, 4096), (4092, 4096), (4093, 16384),
     (16380, 16384), (16381, 32768), (32764, 32768)],
)  # fmt: skip
def test_sizes_land_exactly_on_buckets(length: int, bucket: int) -> None:
    padded = pad(bytes([0xAB]) * length)
    assert len(padded) == bucket
    assert padded_size(length) == bucket
    assert padded[:LENGTH_PREFIX_LEN] == length.to_bytes(4, "big")
    assert padded[LENGTH_PREFIX_LEN + length :] == bytes(bucket - LENGTH_PREFIX_LEN - length)
    assert unpad(padded) == bytes([0xAB]) * length


def test_too_long_to_pad() -> None:
    with pytest.raises(PaddingError, match="largest bucket"):
        pad(bytes(MAX_PADDED_MESSAGE + 1))


def test_pad_accepts_bytes_like_and_refuses_other_types() -> None:
    assert unpad(pad(bytearray(b"abc"))) == b"abc"
    assert unpad(pad(memoryview(b"abc"))) == b"abc"
    with pytest.raises(PaddingError):
        pad("abc")  # type: ignore[arg-type]
    with pytest.raises(PaddingError):
        unpad("abc")  # type: ignore[arg-type]


class TestMalformed:
    @pytest.mark.parametrize("size", [0, 3, 4, 1023, 1025, 2048, 4095, 32767, 32769, 65536])
    def test_size_must_be_a_bucket(self, size: int) -> None:
        with pytest.raises(PaddingError, match="bucket"):
            unpad(bytes(size))

    @pytest.mark.parametrize("declared", [1021, 1024, 2**32 - 1, 5000])
    def test_declared_length_must_fit(self, declared: int) -> None:
        buffer = declared.to_bytes(4, "big") + bytes(1020)
        with pytest.raises(PaddingError, match="does not fit"):
            unpad(buffer)

    @pytest.mark.parametrize("position", [0, 1, 500, 1017, 1018])
    def test_padding_must_be_zero(self, position: int) -> None:
        padded = bytearray(pad(b"x"))
        padded[LENGTH_PREFIX_LEN + 1 + position] = 1
        with pytest.raises(PaddingError, match="zero"):
            unpad(bytes(padded))

    def test_message_in_a_larger_bucket_is_accepted(self) -> None:
        # A sender may hide more by choosing a bigger bucket; the layout is otherwise the same.
        buffer = (3).to_bytes(4, "big") + b"abc" + bytes(4096 - 7)
        assert unpad(buffer) == b"abc"

    def test_full_bucket_declared_exactly(self) -> None:
        buffer = (1020).to_bytes(4, "big") + bytes([7]) * 1020
        assert unpad(buffer) == bytes([7]) * 1020


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=MAX_PADDED_MESSAGE))
def test_round_trip_property(message: bytes) -> None:
    padded = pad(message)
    assert len(padded) in PAD_BUCKETS
    assert len(padded) == min(b for b in PAD_BUCKETS if b >= len(message) + 4)
    assert unpad(padded) == message


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([*PAD_BUCKETS, 0, 5, 1000, 2000]),
    head=st.binary(min_size=0, max_size=64),
)
def test_arbitrary_buffers_raise_only_padding_errors(size: int, head: bytes) -> None:
    buffer = (head + bytes(size))[:size]
    try:
        message = unpad(buffer)
    except PaddingError:
        return
    assert pad(message) == buffer or len(buffer) > len(pad(message))
