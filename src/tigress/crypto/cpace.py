"""CPace (CPACE-X25519-SHA512), the PIN check that runs inside the Noise channel.

A sender may protect a share with a short PIN given over a second channel. A PIN has so little
entropy that it must never be usable to derive keys directly: anyone holding a transcript could try
all 10^6 values offline. CPace, a balanced PAKE, gives each active attacker exactly one guess per
protocol run and nothing usable offline. We run it inside the already-established Noise channel and
pass the Noise handshake hash as ``sid`` so that a CPace run is bound to exactly one channel.

This module follows draft-irtf-cfrg-cpace-21 in the initiator-responder setting:

* the generator is ``g = Elligator2(decodeUCoordinate(SHA-512(generator_string)[:32]))`` with
  ``generator_string = lv_cat(b"CPace255", PRS, zero padding, CI, sid)`` (draft section 8.2);
* each side sends ``Y = X25519(y, g)`` with its associated data ``AD``; on the wire a message is
  ``lv_cat(Y, AD)`` (the draft leaves the encoding to the application; this one is self-delimiting);
* ``K = X25519(y, Y_peer)``, aborting when ``K`` is the neutral element (all zero), which covers
  every low-order point of the curve and of its twist (draft section 10.8);
* ``ISK = SHA-512(lv_cat(b"CPace255_ISK", sid, K) || lv_cat(Ya, ADa) || lv_cat(Yb, ADb))``;
* explicit key confirmation as the draft's section 10.4 suggests, with HMAC-SHA-512 as the MAC:
  ``mac_key = SHA-512(b"CPaceMac" || sid || ISK)``, ``Ta = HMAC(mac_key, lv_cat(Ya, ADa))`` and
  ``Tb = HMAC(mac_key, lv_cat(Yb, ADb))``. A wrong PIN shows up as a confirmation tag that does not
  verify (:class:`CPaceConfirmationError`); the draft publishes no vectors for the tags.

Side channels: the Elligator2 map below runs on Python integers, whose ``pow`` and modular
arithmetic are not constant-time, although the draft asks for a constant-time map. We accept that
here because (1) a PIN run is online, and the protocol layer allows three attempts per share
before destroying it; (2) the map's input is a hash of the PIN together with the per-session
``sid`` (the Noise handshake hash), so any timing leak concerns one generator that is never used
again; and (3) an attacker able to time this process that precisely would have to sit on the
user's own device. The scalar multiplications use pyca/cryptography's X25519 (OpenSSL), which is
constant-time.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from tigress.crypto.errors import CryptoError

__all__ = [
    "DSI",
    "ELEMENT_BYTES",
    "ISK_BYTES",
    "MAX_AD_BYTES",
    "MAX_CI_BYTES",
    "MAX_PRS_BYTES",
    "MAX_SID_BYTES",
    "NEUTRAL_ELEMENT",
    "SUITE",
    "TAG_BYTES",
    "CPaceAbort",
    "CPaceConfirmationError",
    "CPaceError",
    "CPaceMessageError",
    "CPaceParty",
    "CPaceResult",
    "CPaceStateError",
    "calculate_generator",
    "confirmation_key",
    "confirmation_tag",
    "decode_u_coordinate",
    "derive_isk",
    "generator_string",
    "lv_cat",
    "map_to_curve_elligator2",
    "parse_message",
    "prepend_len",
    "scalar_mult_vfy",
    "transcript_ir",
]

SUITE: Final = "CPACE-X25519-SHA512"
DSI: Final = b"CPace255"
_ISK_DSI: Final = DSI + b"_ISK"
_MAC_LABEL: Final = b"CPaceMac"
_SHA512_BLOCK_BYTES: Final = 128  # H.s_in_bytes: the zero padding fills SHA-512's first block

ELEMENT_BYTES: Final = 32  # G_X25519.field_size_bytes: scalars, u-coordinates and K
NEUTRAL_ELEMENT: Final = bytes(ELEMENT_BYTES)  # G_X25519.I
ISK_BYTES: Final = 64
TAG_BYTES: Final = 64

# Bounds on what a caller may pass and on what a peer may send. PINs and role labels are short;
# the limits only keep hostile or buggy input from costing memory and hashing time.
MAX_PRS_BYTES: Final = 1024
MAX_CI_BYTES: Final = 4096
MAX_SID_BYTES: Final = 1024
MAX_AD_BYTES: Final = 1024
_MAX_LENGTH_PREFIX_BYTES: Final = 2  # LEB128 of any length <= MAX_AD_BYTES fits in two bytes

# Curve25519 (RFC 7748) and the Elligator2 parameters of RFC 9380 for it.
_P: Final = 2**255 - 19
_A: Final = 486662
_Z: Final = 2  # the non-square used by the map; 2 is the draft's (and RFC 9380's) choice
_HALF_A: Final = _A * pow(2, -1, _P) % _P
_LEGENDRE_EXPONENT: Final = (_P - 1) // 2

_STATE_VERSION: Final = 1
_STATE_KEYS: Final = frozenset({"suite", "version", "role", "sid", "ad", "element", "scalar"})
_HEX_DIGITS: Final = frozenset("0123456789abcdef")


class CPaceError(CryptoError):
    """Base class of every CPace failure; also raised for invalid local arguments."""


class CPaceAbort(CPaceError):  # "abort" is the draft's own word for this outcome
    """The peer's message must be rejected: a malformed message, a low-order or neutral element,
    or our own element reflected back. The run is over; the attempt counts against the limit."""


class CPaceMessageError(CPaceAbort):
    """The peer's message is not ``lv_cat(Y, AD)`` with a 32-byte ``Y`` and a bounded ``AD``."""


class CPaceConfirmationError(CPaceError):
    """The peer's key-confirmation tag is wrong: in practice, the two sides used different PINs
    (or a different ``sid``/``ci``/transcript)."""


class CPaceStateError(CPaceError):
    """A party was used twice, or a persisted party state is malformed."""


# --- the draft's string utilities -----------------------------------------------------------


def prepend_len(data: bytes) -> bytes:
    """Prefix ``data`` with its length in unsigned LEB128 (seven bits per byte, low bits first)."""
    length = len(data)
    prefix = bytearray()
    while True:
        low_bits = length & 0x7F
        length >>= 7
        if length:
            prefix.append(low_bits | 0x80)
        else:
            prefix.append(low_bits)
            return bytes(prefix) + data


def lv_cat(*parts: bytes) -> bytes:
    """Length-value concatenation: a prefix-free encoding, so no two inputs hash alike."""
    return b"".join(prepend_len(part) for part in parts)


def generator_string(dsi: bytes, prs: bytes, ci: bytes, sid: bytes, s_in_bytes: int) -> bytes:
    """``lv_cat(DSI, PRS, zero padding, CI, sid)``, padded so DSI and PRS fill the first hash block.

    The padding makes the number of compressed blocks independent of a short PRS's length.
    """
    zero_padding_length = max(0, s_in_bytes - 1 - len(prepend_len(prs)) - len(prepend_len(dsi)))
    return lv_cat(dsi, prs, bytes(zero_padding_length), ci, sid)


def transcript_ir(ya: bytes, ada: bytes, yb: bytes, adb: bytes) -> bytes:
    """The initiator-responder transcript: the initiator's message first."""
    return lv_cat(ya, ada) + lv_cat(yb, adb)


# --- hashing ----------------------------------------------------------------------------------


def _sha512(*chunks: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA512())
    for chunk in chunks:
        digest.update(chunk)
    return digest.finalize()


def _hmac_sha512(key: bytes, message: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA512())
    mac.update(message)
    return mac.finalize()


# --- the group G_X25519 -----------------------------------------------------------------------


def decode_u_coordinate(encoded: bytes) -> int:
    """RFC 7748 decodeUCoordinate for 255 bits: little-endian, the unused top bit cleared.

    The result is not reduced modulo p; the field arithmetic of the map does that.
    """
    if len(encoded) != ELEMENT_BYTES:
        raise CPaceError(f"a u-coordinate is {ELEMENT_BYTES} bytes, got {len(encoded)}")
    return int.from_bytes(encoded, "little") & ((1 << 255) - 1)


def map_to_curve_elligator2(r: int) -> bytes:
    """Elligator2 onto Curve25519: the u-coordinate (32 bytes, little-endian) that ``r`` maps to.

    With ``v = -A / (1 + Z r^2)``, ``v`` itself is a valid u-coordinate when ``v^3 + A v^2 + v``
    is a square, and otherwise ``-v - A`` is (because Z is a non-square). The Legendre symbol
    ``e`` (1, -1 or 0) selects between them in one expression, ``u = e v - (1 - e) A / 2``,
    without a branch on the PIN-derived value. Not constant-time: see the module docstring.
    """
    r %= _P
    denominator = (1 + _Z * r * r) % _P  # never 0: -1/Z is a non-square modulo p
    v = -_A * pow(denominator, _P - 2, _P) % _P
    legendre = pow((v * v * v + _A * v * v + v) % _P, _LEGENDRE_EXPONENT, _P)
    u = (legendre * v - (1 - legendre) * _HALF_A) % _P
    return u.to_bytes(ELEMENT_BYTES, "little")


def calculate_generator(prs: bytes, ci: bytes, sid: bytes) -> bytes:
    """G_X25519.calculate_generator with SHA-512: the 32-byte u-coordinate of the generator."""
    gen_str = generator_string(DSI, prs, ci, sid, _SHA512_BLOCK_BYTES)
    gen_str_hash = _sha512(gen_str)[:ELEMENT_BYTES]
    return map_to_curve_elligator2(decode_u_coordinate(gen_str_hash))


def scalar_mult_vfy(scalar: bytes, point: bytes) -> bytes:
    """G_X25519.scalar_mult_vfy: ``X25519(scalar, point)``, or :data:`NEUTRAL_ELEMENT` when the
    result is the neutral element (a low-order point on the curve or its twist).

    OpenSSL refuses an all-zero X25519 result by raising; that refusal is exactly the draft's
    ``G.I`` outcome, so it is mapped back to the neutral element for the caller to abort on.
    """
    if len(scalar) != ELEMENT_BYTES or len(point) != ELEMENT_BYTES:
        raise CPaceError(f"X25519 scalars and points are {ELEMENT_BYTES} bytes")
    private_key = X25519PrivateKey.from_private_bytes(scalar)
    peer = X25519PublicKey.from_public_bytes(point)
    try:
        shared = private_key.exchange(peer)
    except ValueError:
        return NEUTRAL_ELEMENT
    # Redundant with OpenSSL's own check; kept so the abort never depends on a library detail.
    if hmac.compare_digest(shared, NEUTRAL_ELEMENT):
        return NEUTRAL_ELEMENT
    return shared


# --- keys and confirmation --------------------------------------------------------------------


def derive_isk(sid: bytes, k: bytes, transcript: bytes) -> bytes:
    """``ISK = SHA-512(lv_cat(b"CPace255_ISK", sid, K) || transcript)`` (64 bytes)."""
    return _sha512(lv_cat(_ISK_DSI, sid, k), transcript)


def confirmation_key(sid: bytes, isk: bytes) -> bytes:
    """``mac_key = SHA-512(b"CPaceMac" || sid || ISK)``, as the draft's section 10.4 suggests."""
    return _sha512(_MAC_LABEL, sid, isk)


def confirmation_tag(mac_key: bytes, element: bytes, ad: bytes) -> bytes:
    """The tag a party sends over the message it sent: ``HMAC-SHA-512(mac_key, lv_cat(Y, AD))``."""
    return _hmac_sha512(mac_key, lv_cat(element, ad))


# --- the wire message -------------------------------------------------------------------------


def _read_length(buffer: bytes, offset: int) -> tuple[int, int]:
    """Read one canonical LEB128 length of at most two bytes; return (length, next offset)."""
    value = 0
    for index in range(_MAX_LENGTH_PREFIX_BYTES):
        position = offset + index
        if position >= len(buffer):
            raise CPaceMessageError("message truncated inside a length prefix")
        byte = buffer[position]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            # A final byte of zero after a continuation byte encodes the same length twice over.
            if index and byte == 0:
                raise CPaceMessageError("length prefix is not minimally encoded")
            return value, position + 1
    raise CPaceMessageError("length prefix too long")


def parse_message(message: bytes) -> tuple[bytes, bytes]:
    """Split a peer's ``lv_cat(Y, AD)`` into ``(Y, AD)``, rejecting anything else precisely."""
    if not isinstance(message, bytes):
        raise CPaceMessageError(f"a CPace message is bytes, got {type(message).__name__}")
    if len(message) > 1 + ELEMENT_BYTES + _MAX_LENGTH_PREFIX_BYTES + MAX_AD_BYTES:
        raise CPaceMessageError(f"message of {len(message)} bytes is too long")
    element_length, offset = _read_length(message, 0)
    if element_length != ELEMENT_BYTES:
        raise CPaceMessageError(f"element must be {ELEMENT_BYTES} bytes, got {element_length}")
    element = message[offset : offset + ELEMENT_BYTES]
    if len(element) != ELEMENT_BYTES:
        raise CPaceMessageError("message truncated inside the element")
    ad_length, offset = _read_length(message, offset + ELEMENT_BYTES)
    if ad_length > MAX_AD_BYTES:
        raise CPaceMessageError(f"associated data of {ad_length} bytes exceeds {MAX_AD_BYTES}")
    ad = message[offset:]
    if len(ad) != ad_length:
        raise CPaceMessageError(
            f"associated data should be {ad_length} bytes, message carries {len(ad)}"
        )
    return element, ad


# --- the protocol -----------------------------------------------------------------------------


def _require_bytes(name: str, value: object, *, maximum: int, allow_empty: bool = True) -> bytes:
    if not isinstance(value, bytes):
        raise CPaceError(f"{name} must be bytes, got {type(value).__name__}")
    if not value and not allow_empty:
        raise CPaceError(f"{name} must not be empty")
    if len(value) > maximum:
        raise CPaceError(f"{name} of {len(value)} bytes exceeds {maximum}")
    return value


@dataclass(frozen=True, eq=False)
class CPaceResult:
    """What one side holds after processing the peer's message.

    ``isk`` is the intermediate session key: feed it to a KDF, and use it only after the peer's
    confirmation tag verified. ``own_confirmation`` is the tag to send (Ta for the initiator, Tb for
    the responder). Equality is identity, so that secrets are never compared in variable time.
    """

    isk: bytes = field(repr=False)
    own_confirmation: bytes
    peer_ad: bytes
    expected_peer_confirmation: bytes = field(repr=False)

    def verify_peer_confirmation(self, tag: bytes) -> None:
        """Check the peer's tag in constant time; raise :class:`CPaceConfirmationError` if wrong."""
        if not isinstance(tag, bytes) or len(tag) != TAG_BYTES:
            raise CPaceConfirmationError(f"a confirmation tag is {TAG_BYTES} bytes")
        if not hmac.compare_digest(tag, self.expected_peer_confirmation):
            raise CPaceConfirmationError("confirmation tag does not verify (wrong PIN?)")


@dataclass(eq=False)
class CPaceParty:
    """One side of one CPace run (initiator-responder setting).

    Create it with :meth:`start`, send :attr:`message`, and hand the peer's message to
    :meth:`process` exactly once. The party holds its secret scalar until then; :meth:`to_dict`
    therefore contains the scalar (not the PIN) and must be stored as a secret, and deleted once
    the run is over. A restored copy can process a message again: whoever persists the state is
    responsible for using it for one run only.
    """

    initiator: bool
    sid: bytes
    ad: bytes
    element: bytes
    scalar: bytes = field(repr=False)
    _consumed: bool = field(default=False, init=False, repr=False)

    @classmethod
    def start(
        cls,
        prs: bytes,
        *,
        ci: bytes,
        sid: bytes,
        ad: bytes,
        initiator: bool,
        scalar: bytes | None = None,
    ) -> CPaceParty:
        """Begin a run: derive the generator from PIN, channel and session, pick a scalar.

        ``scalar`` is for known-answer tests only; production code leaves it to ``secrets``.
        """
        _require_bytes("prs", prs, maximum=MAX_PRS_BYTES, allow_empty=False)
        _require_bytes("ci", ci, maximum=MAX_CI_BYTES)
        _require_bytes("sid", sid, maximum=MAX_SID_BYTES, allow_empty=False)
        _require_bytes("ad", ad, maximum=MAX_AD_BYTES)
        if not isinstance(initiator, bool):
            raise CPaceError("initiator must be a bool")
        if scalar is None:
            scalar = secrets.token_bytes(ELEMENT_BYTES)
        elif not isinstance(scalar, bytes) or len(scalar) != ELEMENT_BYTES:
            raise CPaceError(f"scalar must be {ELEMENT_BYTES} bytes")
        element = scalar_mult_vfy(scalar, calculate_generator(prs, ci, sid))
        if element == NEUTRAL_ELEMENT:
            # Only if the map hit a low-order point: negligible, but never send the identity.
            raise CPaceAbort("the generator is a low-order point")
        return cls(initiator=initiator, sid=sid, ad=ad, element=element, scalar=scalar)

    @property
    def message(self) -> bytes:
        """What this side sends: ``lv_cat(Y, AD)``."""
        return lv_cat(self.element, self.ad)

    def process(self, peer_message: bytes) -> CPaceResult:
        """Derive ISK and the confirmation tags from the peer's ``lv_cat(Y, AD)``.

        The party is spent by the first call, whatever its outcome: one peer message per run, so
        one PIN guess per run. Raises :class:`CPaceAbort` (or its subclass
        :class:`CPaceMessageError`) for a message that must be rejected.
        """
        if self._consumed:
            raise CPaceStateError("this CPace party already processed a peer message")
        self._consumed = True
        scalar, self.scalar = self.scalar, b""
        peer_element, peer_ad = parse_message(peer_message)
        if peer_element == self.element:
            # Our own element reflected back (loopback attack): with our own AD it would even
            # make the "peer's" tag equal to ours.
            raise CPaceAbort("the peer's element is our own")
        k = scalar_mult_vfy(scalar, peer_element)
        if hmac.compare_digest(k, NEUTRAL_ELEMENT):
            raise CPaceAbort("the peer's element is a low-order point")
        if self.initiator:
            transcript = transcript_ir(self.element, self.ad, peer_element, peer_ad)
        else:
            transcript = transcript_ir(peer_element, peer_ad, self.element, self.ad)
        isk = derive_isk(self.sid, k, transcript)
        mac_key = confirmation_key(self.sid, isk)
        return CPaceResult(
            isk=isk,
            own_confirmation=confirmation_tag(mac_key, self.element, self.ad),
            peer_ad=peer_ad,
            expected_peer_confirmation=confirmation_tag(mac_key, peer_element, peer_ad),
        )

    def to_dict(self) -> dict[str, object]:
        """The party's state for persistence between rounds. Contains the secret scalar."""
        if self._consumed:
            raise CPaceStateError("a spent CPace party has no state worth keeping")
        return {
            "suite": SUITE,
            "version": _STATE_VERSION,
            "role": "initiator" if self.initiator else "responder",
            "sid": self.sid.hex(),
            "ad": self.ad.hex(),
            "element": self.element.hex(),
            "scalar": self.scalar.hex(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CPaceParty:
        """Restore a party saved by :meth:`to_dict`; raise :class:`CPaceStateError` if malformed."""
        if not isinstance(data, Mapping):
            raise CPaceStateError("CPace state must be a mapping")
        if set(data) != _STATE_KEYS:
            raise CPaceStateError(f"CPace state must have exactly the keys {sorted(_STATE_KEYS)}")
        if data["suite"] != SUITE:
            raise CPaceStateError(f"unsupported CPace suite {data['suite']!r}")
        version = data["version"]
        if type(version) is not int or version != _STATE_VERSION:
            raise CPaceStateError(f"unsupported CPace state version {version!r}")
        role = data["role"]
        if role not in ("initiator", "responder"):
            raise CPaceStateError(f"unknown CPace role {role!r}")
        sid = _state_hex(data, "sid", minimum=1, maximum=MAX_SID_BYTES)
        ad = _state_hex(data, "ad", minimum=0, maximum=MAX_AD_BYTES)
        element = _state_hex(data, "element", minimum=ELEMENT_BYTES, maximum=ELEMENT_BYTES)
        scalar = _state_hex(data, "scalar", minimum=ELEMENT_BYTES, maximum=ELEMENT_BYTES)
        if element == NEUTRAL_ELEMENT:
            raise CPaceStateError("CPace state holds the neutral element")
        return cls(initiator=role == "initiator", sid=sid, ad=ad, element=element, scalar=scalar)


def _state_hex(data: Mapping[str, object], key: str, *, minimum: int, maximum: int) -> bytes:
    """Decode one canonical (lower-case, even-length, no whitespace) hex field of a state."""
    value = data[key]
    if not isinstance(value, str) or len(value) % 2 or not set(value) <= _HEX_DIGITS:
        raise CPaceStateError(f"CPace state field {key!r} is not lower-case hex")
    decoded = bytes.fromhex(value)
    if not minimum <= len(decoded) <= maximum:
        raise CPaceStateError(f"CPace state field {key!r} has a bad length ({len(decoded)})")
    return decoded
