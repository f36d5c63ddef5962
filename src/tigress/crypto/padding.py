"""Length-hiding padding for channel plaintexts.

Encryption hides content but not length, and lengths are telling: a car key, a hotel key and a
home key serialise to recognisably different sizes, so a relay (or anyone watching it) could
classify transfers by ciphertext size alone. Every channel plaintext is therefore padded, before
encryption, to the smallest of a few fixed bucket sizes::

    u32 big-endian message length || message || zero bytes   (total = a bucket size)

Buckets: 1024, 4096, 16384 and 32768 bytes. Almost every credential fits the first bucket, so
the relay learns at most which of four coarse size classes a message falls in.

:func:`unpad` runs on authenticated plaintext, yet is still strict (size must be a bucket, the
length must fit, every padding byte must be zero): a malformed buffer means a bug or a peer
deviating from the protocol, and it is refused with a :class:`PaddingError` rather than guessed at.
"""

from __future__ import annotations

from typing import Final

from tigress.crypto.errors import PaddingError

__all__ = ["LENGTH_PREFIX_LEN", "MAX_PADDED_MESSAGE", "PAD_BUCKETS", "pad", "padded_size", "unpad"]

PAD_BUCKETS: Final[tuple[int, ...]] = (1024, 4096, 16384, 32768)
LENGTH_PREFIX_LEN: Final = 4
MAX_PADDED_MESSAGE: Final = PAD_BUCKETS[-1] - LENGTH_PREFIX_LEN


def padded_size(message_len: int) -> int:
    """The bucket a message of ``message_len`` bytes is padded to."""
    needed = LENGTH_PREFIX_LEN + message_len
    for bucket in PAD_BUCKETS:
        if needed <= bucket:
            return bucket
    raise PaddingError(
        f"message of {message_len} bytes exceeds the largest bucket ({MAX_PADDED_MESSAGE} bytes)"
    )


def pad(message: bytes | bytearray | memoryview) -> bytes:
    """Prefix the length and zero-fill to the smallest bucket that fits."""
    if not isinstance(message, bytes | bytearray | memoryview):
        raise PaddingError("only bytes can be padded")
    size = padded_size(len(message))
    prefix = len(message).to_bytes(LENGTH_PREFIX_LEN, "big")
    return prefix + bytes(message) + bytes(size - LENGTH_PREFIX_LEN - len(message))


def unpad(padded: bytes | bytearray | memoryview) -> bytes:
    """Recover the message from a padded buffer; raises :class:`PaddingError` if malformed.

    A message in a larger bucket than the smallest that fits is accepted: a sender may choose
    to hide more, and it costs the receiver nothing.
    """
    if not isinstance(padded, bytes | bytearray | memoryview):
        raise PaddingError("only bytes can be unpadded")
    data = bytes(padded)
    if len(data) not in PAD_BUCKETS:
        raise PaddingError(f"padded size {len(data)} is not one of the buckets {PAD_BUCKETS}")
    length = int.from_bytes(data[:LENGTH_PREFIX_LEN], "big")
    end = LENGTH_PREFIX_LEN + length
    if end > len(data):
        raise PaddingError(f"declared length {length} does not fit a {len(data)}-byte buffer")
    if data[end:].count(0) != len(data) - end:
        raise PaddingError("padding bytes are not all zero")
    return data[LENGTH_PREFIX_LEN:end]
