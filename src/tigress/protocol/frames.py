"""The binary frame each side writes to the relay (or to a direct connection).

Layout (all integers big-endian)::

    offset size field
    0      1    version      0x01
    1      1    kind         0x01 handshake 1 (sender), 0x02 handshake 2 (receiver),
                             0x03 data from the sender, 0x04 data from the receiver
    2      1    suite        0x01 25519_AESGCM_SHA256, 0x02 25519_ChaChaPoly_SHA256, ...
    3      8    channel tag  SHA-256("tigress/v1 channel" || channel id)[0:8]
    11     4    sequence     frames written by this side so far (handshake frames are 0)
    15     ...  body         a Noise handshake message, or an AEAD ciphertext whose
                             associated data is the 15-byte header

The header lets a receiver name what went wrong *before* trying to decrypt: a frame for another
mailbox (channel tag), its own frame reflected back (kind), a replay (sequence too low) or a
missing frame (sequence too high).  A relay that edits the header gains nothing: handshake
headers are fixed by the state, and data headers are authenticated as associated data.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

from tigress.crypto.kdf import sha256
from tigress.protocol.errors import ProtocolError

FRAME_VERSION = 1
HEADER = struct.Struct(">BBB8sI")
HEADER_SIZE = HEADER.size  # 15
MAX_FRAME_SIZE = 48 * 1024  # largest padded message plus Noise overhead, with headroom
PAYLOAD_TYPE = "tigress-noise-v1"  # the relay payload ``type`` of this profile


class FrameError(ProtocolError):
    """Bytes that are not a well-formed frame."""


class FrameKind(IntEnum):
    HANDSHAKE_1 = 1
    HANDSHAKE_2 = 2
    SENDER_DATA = 3
    RECEIVER_DATA = 4


SUITES: dict[int, str] = {
    1: "25519_AESGCM_SHA256",
    2: "25519_ChaChaPoly_SHA256",
    3: "25519_AESGCM_SHA512",
    4: "25519_ChaChaPoly_SHA512",
    5: "25519_ChaChaPoly_BLAKE2s",
    6: "25519_AESGCM_BLAKE2b",
}
SUITE_IDS: dict[str, int] = {name: number for number, name in SUITES.items()}


def channel_tag(channel_id: bytes) -> bytes:
    return sha256(b"tigress/v1 channel" + channel_id)[:8]


@dataclass(frozen=True)
class Frame:
    kind: FrameKind
    suite_id: int
    tag: bytes
    seq: int
    body: bytes

    @property
    def header(self) -> bytes:
        return HEADER.pack(FRAME_VERSION, self.kind, self.suite_id, self.tag, self.seq)

    def to_bytes(self) -> bytes:
        return self.header + self.body


def parse_frame(data: bytes) -> Frame:
    if len(data) > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {len(data)} bytes exceeds the limit of {MAX_FRAME_SIZE}")
    if len(data) < HEADER_SIZE + 16:
        raise FrameError(f"frame of {len(data)} bytes is too short to be a tigress frame")
    version, kind, suite_id, tag, seq = HEADER.unpack_from(data)
    if version != FRAME_VERSION:
        raise FrameError(f"unsupported frame version {version} (this implementation speaks 1)")
    try:
        frame_kind = FrameKind(kind)
    except ValueError:
        raise FrameError(f"unknown frame kind {kind}") from None
    if suite_id not in SUITES:
        raise FrameError(f"unknown cipher suite id {suite_id}")
    return Frame(frame_kind, suite_id, tag, seq, data[HEADER_SIZE:])


def frame_to_payload(frame: bytes) -> dict[str, str]:
    """The relay ``payload`` object carrying ``frame`` (standard base64, as the draft's types)."""
    return {"type": PAYLOAD_TYPE, "data": base64.b64encode(frame).decode("ascii")}


def payload_to_frame(payload: object) -> bytes:
    """Inverse of :func:`frame_to_payload`; strict about type and encoding."""
    if not isinstance(payload, dict) or set(payload) != {"type", "data"}:
        raise FrameError("relay payload must be an object with exactly 'type' and 'data'")
    if payload["type"] != PAYLOAD_TYPE:
        raise FrameError(
            f"relay payload type {str(payload['type'])[:40]!r} is not {PAYLOAD_TYPE!r}"
        )
    data = payload["data"]
    if not isinstance(data, str) or len(data) > (MAX_FRAME_SIZE * 4) // 3 + 4:
        raise FrameError("relay payload data must be a base64 string within the frame size limit")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise FrameError("relay payload data is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != data:
        raise FrameError("relay payload data is not canonical base64")
    return raw
