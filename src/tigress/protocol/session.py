"""Sender and receiver state machines of the tigress channel (sans-IO).

Bytes and user decisions go in; :mod:`tigress.protocol.events` actions come out.  No sockets,
clocks or event loop: the relay client, the direct transport and tests all drive the same logic.

The channel is Noise ``NNpsk0`` (the invitation secret is the PSK, the channel id is in the
prologue).  The sender is the Noise initiator: its first frame carries an :class:`Offer`.  Forward
secrecy starts with the receiver's reply.  After the handshake each frame has an explicit
per-direction sequence number checked before decryption, and every plaintext is padded to a size
bucket.  An optional PIN runs CPace inside the channel, bound to the handshake hash; once it
verifies, both directions are re-keyed with the CPace key, so data sent after it needs the PIN.

State snapshots (:meth:`to_bytes`) hold channel keys, the PSK and, on the sender, the PIN: the
wallet must store them encrypted and delete them when the transfer ends.
"""

from __future__ import annotations

from tigress.protocol.endpoint import (
    DEFAULT_PIN_ATTEMPTS,
    DEFAULT_SUITE_NAME,
    MAX_PIN_LENGTH,
    MIN_PIN_LENGTH,
    SECRET_SIZE,
    STATE_VERSION,
    ChannelEndpoint,
    Phase,
    Role,
    normalise_pin,
    prologue_for,
)
from tigress.protocol.receiver import Receiver
from tigress.protocol.sender import Sender

__all__ = [
    "DEFAULT_PIN_ATTEMPTS",
    "DEFAULT_SUITE_NAME",
    "MAX_PIN_LENGTH",
    "MIN_PIN_LENGTH",
    "SECRET_SIZE",
    "STATE_VERSION",
    "ChannelEndpoint",
    "Phase",
    "Receiver",
    "Role",
    "Sender",
    "normalise_pin",
    "prologue_for",
]
