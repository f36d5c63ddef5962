"""Invitations: the share URL a sender hands to a receiver, parsed strictly and written canonically.

Two forms exist.

* Relay invitation (draft-vinokurov-tigress-http-00 share URL)::

      https://{relay-host}[:port]/v1/m/{mailbox-id}?v={a|h|c}#{secret}

* Direct invitation, for a transfer without a relay (the sender listens on host:port)::

      tigress+direct://{host}:{port}/{session-id}?v={a|h|c}#{secret}

Decisions where the draft is silent (each one is tested):

* Leading and trailing ASCII whitespace is stripped (people paste URLs); whitespace, control
  characters or non-ASCII characters anywhere else are rejected. Host names must therefore already
  be in IDNA A-label form (``xn--...``); we do not convert Unicode host names, because IDNA 2003
  and IDNA 2008 disagree on some characters and a silent mismatch would send a key elsewhere.
* Scheme and host are case-insensitive on input and lowercase on output; the default port (443
  for https, 80 for http) is dropped. Plain ``http`` is accepted only for loopback hosts
  (``localhost``, 127.0.0.0/8, ``::1``), for development.
* The mailbox and session ids are version-4 UUIDs (the relay draft's security text asks for 122
  random bits). Uppercase hex is accepted on input (RFC 9562 makes UUIDs case-insensitive) and
  written lowercase; the canonical lowercase form is what goes into ``channel_id``.
* Nothing is percent-decoded: every valid component is plain ASCII, so ``%`` is always an error.
* A host name may not end with a dot, and a host whose last label is numeric must be a valid
  dotted-quad IPv4 address (browsers would read ``1.2.3`` or ``0x7f.1`` as IPv4 addresses).
  IPv6 literals are written in RFC 5952 form; IPv4-mapped IPv6 literals and zone ids are
  rejected. The normalised origin is bound into ``channel_id``, so a second implementation must
  normalise exactly as described here.
* The secret is 32 bytes written as 43 characters of unpadded base64url, with zero trailing bits
  (one canonical spelling per secret). ``allow_draft_secret=True`` additionally accepts the
  draft's form: standard base64 with padding, of a 16- or 32-byte key. A 16-byte secret can only
  be written in the draft's form, so ``to_url`` writes it that way.
* ``?v=`` absent means ``vertical is None``; ``?v=a`` means ``Vertical.GENERAL``. Both mean
  "general access" but are kept apart so that parsing and writing round-trip exactly.
* ``mailbox_url`` carries neither the query nor the fragment: the relay does not need the
  vertical, and not sending it keeps the credential type from the relay.
* Error messages never echo the secret.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass, field

from tigress.protocol.errors import InvitationError

__all__ = [
    "MAX_INVITATION_LENGTH",
    "SECRET_BYTES",
    "DirectInvitation",
    "RelayInvitation",
    "Vertical",
    "decode_secret",
    "encode_secret",
    "new_secret",
    "new_session_id",
    "parse_invitation",
]

MAX_INVITATION_LENGTH = 2048
SECRET_BYTES = 32
DRAFT_SECRET_SIZES = (16, 32)
RELAY_PATH_PREFIX = "/v1/m/"
DIRECT_SCHEME = "tigress+direct"
RELAY_CHANNEL_LABEL = b"tigress-relay:"
DIRECT_CHANNEL_LABEL = b"tigress-direct:"

_DEFAULT_PORTS = {"https": 443, "http": 80}
_ASCII_WHITESPACE = " \t\n\r\f\v"
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I | re.A)
# A last label that a WHATWG URL parser reads as a number (decimal, or hex with 0x).
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]*", re.A)
_HOST_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.A)
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]*", re.A)
_BASE64_PADDED_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.A)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*", re.A)
_SECRET_TEXT_LENGTH = 43  # ceil(32 * 8 / 6) characters, unpadded


class Vertical(enum.Enum):
    """The ``v`` query parameter: which kind of credential the link carries (routes the link)."""

    GENERAL = "a"
    HOME = "h"
    CAR = "c"


def new_secret() -> bytes:
    """A fresh 256-bit invitation secret from the operating system's CSPRNG."""
    return secrets.token_bytes(SECRET_BYTES)


def new_session_id() -> str:
    """A fresh direct-transfer session id: a random (version-4) UUID in canonical form."""
    return str(uuid.uuid4())


def encode_secret(secret: bytes) -> str:
    """Write a 32-byte secret as 43 characters of unpadded base64url."""
    if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
        raise InvitationError(f"secret must be {SECRET_BYTES} bytes")
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def decode_secret(text: str) -> bytes:
    """Read a secret written by :func:`encode_secret`; any other spelling is rejected."""
    if not isinstance(text, str):
        raise InvitationError("secret must be text")
    if "=" in text:
        raise InvitationError("secret must be unpadded base64url ('=' padding found)")
    if not _BASE64URL_RE.fullmatch(text):
        raise InvitationError("secret contains a character outside the base64url alphabet")
    if len(text) != _SECRET_TEXT_LENGTH:
        raise InvitationError(
            f"secret must be {_SECRET_TEXT_LENGTH} base64url characters "
            f"({SECRET_BYTES} bytes), got {len(text)}"
        )
    secret = base64.urlsafe_b64decode(text + "=")
    if encode_secret(secret) != text:
        raise InvitationError("secret is non-canonical base64url (trailing bits are not zero)")
    return secret


def _decode_draft_secret(text: str) -> bytes:
    """The draft's secret form: standard base64 with padding, 16 or 32 bytes."""
    if not _BASE64_PADDED_RE.fullmatch(text) or len(text) % 4 != 0:
        raise InvitationError("secret is neither unpadded base64url nor padded standard base64")
    try:
        secret = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise InvitationError("secret is not valid padded standard base64") from None
    if len(secret) not in DRAFT_SECRET_SIZES:
        raise InvitationError(f"draft-form secret must be 16 or 32 bytes, got {len(secret)}")
    if base64.b64encode(secret).decode("ascii") != text:
        raise InvitationError("secret is non-canonical base64 (trailing bits are not zero)")
    return secret


def _encode_draft_secret(secret: bytes) -> str:
    return base64.b64encode(secret).decode("ascii")


def _parse_secret(fragment: str, *, allow_draft_secret: bool) -> bytes:
    if not fragment:
        raise InvitationError("empty fragment: omit '#' when the secret travels separately")
    if allow_draft_secret and len(fragment) != _SECRET_TEXT_LENGTH:
        return _decode_draft_secret(fragment)
    return decode_secret(fragment)


def _check_secret_value(secret: object, *, allow_draft_secret: bool) -> bytes | None:
    if secret is None:
        return None
    if not isinstance(secret, bytes | bytearray):
        raise InvitationError("secret must be bytes or None")
    allowed = DRAFT_SECRET_SIZES if allow_draft_secret else (SECRET_BYTES,)
    if len(secret) not in allowed:
        sizes = " or ".join(str(size) for size in allowed)
        raise InvitationError(f"secret must be {sizes} bytes, got {len(secret)}")
    return bytes(secret)


def _secret_for_url(secret: bytes) -> str:
    return encode_secret(secret) if len(secret) == SECRET_BYTES else _encode_draft_secret(secret)


def _secrets_equal(left: bytes | None, right: bytes | None) -> bool:
    if left is None or right is None:
        return left is right
    return hmac.compare_digest(left, right)


# --- whole-text checks -------------------------------------------------------------------------


def _clean_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvitationError("invitation must be text")
    text = text.strip(_ASCII_WHITESPACE)
    if not text:
        raise InvitationError("empty invitation")
    if len(text) > MAX_INVITATION_LENGTH:
        raise InvitationError(
            f"invitation is {len(text)} characters long, above the limit of {MAX_INVITATION_LENGTH}"
        )
    for position, char in enumerate(text):
        code = ord(char)
        if 0x21 <= code <= 0x7E:
            continue
        if char in _ASCII_WHITESPACE:
            raise InvitationError(f"whitespace inside the invitation at position {position}")
        if code < 0x20 or code == 0x7F:
            raise InvitationError(f"control character U+{code:04X} at position {position}")
        raise InvitationError(
            f"non-ASCII character at position {position} "
            "(host names must be in IDNA A-label form, xn--...)"
        )
    return text


def _split_scheme(text: str) -> tuple[str, str]:
    colon = text.find(":")
    # The scheme is never echoed unless valid: a colon inside the fragment would otherwise put
    # part of the secret into an error message.
    if colon <= 0 or not _SCHEME_RE.fullmatch(text[:colon]):
        raise InvitationError("missing or invalid URL scheme")
    scheme, rest = text[:colon].lower(), text[colon + 1 :]
    if not rest.startswith("//"):
        raise InvitationError(f"expected '//' after '{_shorten(scheme)}:'")
    return scheme, rest[2:]


def _shorten(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _split_reference(rest: str) -> tuple[str, str, str | None, str | None]:
    """Split ``authority path [?query] [#fragment]`` (RFC 3986 order: fragment first)."""
    fragment: str | None = None
    query: str | None = None
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    if "?" in rest:
        rest, query = rest.split("?", 1)
    slash = rest.find("/")
    if slash < 0:
        return rest, "", query, fragment
    return rest[:slash], rest[slash:], query, fragment


# --- host and port -----------------------------------------------------------------------------


def _parse_ipv6(literal: str) -> str:
    if "%" in literal:
        raise InvitationError("IPv6 zone identifiers are not allowed in a host")
    try:
        address = ipaddress.IPv6Address(literal)
    except ValueError:
        raise InvitationError("invalid IPv6 address in host") from None
    if address.ipv4_mapped is not None:
        # Python versions disagree on how to write these (3.13 keeps the dotted tail), and the
        # written form is bound into channel_id, so both sides must agree: use plain IPv4.
        raise InvitationError("IPv4-mapped IPv6 host: write the IPv4 address instead")
    return str(address)


def _parse_host_name(host: str) -> str:
    """A DNS name in A-label form or a dotted-quad IPv4 address, lowercased."""
    if not host:
        raise InvitationError("empty host")
    host = host.lower()
    if host.endswith("."):
        raise InvitationError("host must not end with a dot")
    if len(host) > 253:
        raise InvitationError("host name longer than 253 characters")
    labels = host.split(".")
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise InvitationError("numeric host is not a valid dotted-quad IPv4 address") from None
    for label in labels:
        if not label:
            raise InvitationError("empty label in host name")
        if len(label) > 63:
            raise InvitationError("host label longer than 63 characters")
        if not _HOST_LABEL_RE.fullmatch(label):
            raise InvitationError(
                "invalid host name: labels are letters, digits and inner hyphens only"
            )
        if label.startswith("xn--"):
            _check_a_label(label)
    return host


def _check_a_label(label: str) -> None:
    """Light A-label check: valid punycode that decodes to printable, non-ASCII text."""
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        raise InvitationError("host label is not valid punycode") from None
    if decoded.isascii() or not decoded.isprintable():
        raise InvitationError("host label is not a valid IDNA A-label")


def _parse_port(text: str) -> int:
    if not text:
        raise InvitationError("empty port after ':'")
    if not text.isascii() or not text.isdigit():
        raise InvitationError("port must be decimal digits")
    if len(text) > 1 and text.startswith("0"):
        raise InvitationError("port must not have leading zeros")
    port = int(text) if len(text) <= 5 else 0
    if not 1 <= port <= 65535:
        raise InvitationError("port out of range 1-65535")
    return port


def _parse_authority(authority: str) -> tuple[str, int | None]:
    """Return (host, port); an IPv6 host is returned without brackets."""
    if not authority:
        raise InvitationError("empty host")
    if "@" in authority:
        raise InvitationError("user information ('user@') is not allowed in an invitation")
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise InvitationError("unterminated '[' in IPv6 host")
        host = _parse_ipv6(authority[1:close])
        after = authority[close + 1 :]
        if not after:
            return host, None
        if not after.startswith(":"):
            raise InvitationError("unexpected characters after IPv6 host")
        return host, _parse_port(after[1:])
    if "]" in authority:
        raise InvitationError("unexpected ']' in host")
    host, colon, port_text = authority.partition(":")
    if colon and ":" in port_text:
        raise InvitationError("IPv6 host must be enclosed in brackets")
    return _parse_host_name(host), _parse_port(port_text) if colon else None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name, an IP literal, or a bracketed IPv6 literal) is this machine.

    Only loopback hosts may use plain http (development); everything else needs https.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_host_value(host: object) -> str:
    """Validate a host passed to ``create``: a name, IPv4 address or bare IPv6 address."""
    if not isinstance(host, str):
        raise InvitationError("host must be text")
    if not host.isascii() or not host.isprintable():
        raise InvitationError("host must be printable ASCII (IDNA A-label form)")
    if ":" in host:
        return _parse_ipv6(host)
    return _parse_host_name(host)


# --- path, query, ids --------------------------------------------------------------------------


def _parse_uuid4(text: str, what: str) -> str:
    if not _UUID_RE.fullmatch(text):
        raise InvitationError(f"{what} is not a UUID in 8-4-4-4-12 hex form")
    text = text.lower()
    if text[14] != "4":
        raise InvitationError(f"{what} must be a version-4 UUID, got version {text[14]}")
    if text[19] not in "89ab":
        raise InvitationError(f"{what} has a UUID variant other than RFC 9562")
    return text


def _check_uuid4_value(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvitationError(f"{what} must be text")
    return _parse_uuid4(value, what)


def _parse_relay_path(path: str) -> str:
    if not path or path == "/":
        raise InvitationError("missing path /v1/m/{mailbox-id}")
    if not path.startswith(RELAY_PATH_PREFIX):
        first = path.split("/")[1]
        if re.fullmatch(r"v[0-9]+", first, re.A) and first != "v1":
            raise InvitationError(f"unsupported API version '{_shorten(first)}' (only v1)")
        raise InvitationError("path must be exactly /v1/m/{mailbox-id}")
    mailbox_id = path[len(RELAY_PATH_PREFIX) :]
    if mailbox_id.endswith("/"):
        raise InvitationError("trailing slash after the mailbox id")
    if "/" in mailbox_id:
        raise InvitationError("extra path segments after the mailbox id")
    return _parse_uuid4(mailbox_id, "mailbox id")


def _parse_direct_path(path: str) -> str:
    if not path or path == "/":
        raise InvitationError("missing path /{session-id}")
    session_id = path[1:]
    if session_id.endswith("/"):
        raise InvitationError("trailing slash after the session id")
    if "/" in session_id:
        raise InvitationError("path must be exactly /{session-id}")
    return _parse_uuid4(session_id, "session id")


def _parse_query(query: str | None) -> Vertical | None:
    if query is None:
        return None
    if not query:
        raise InvitationError("empty query string: omit '?' when there are no parameters")
    vertical: Vertical | None = None
    for parameter in query.split("&"):
        if not parameter:
            raise InvitationError("empty query parameter")
        name, equals, value = parameter.partition("=")
        if name != "v":
            raise InvitationError(f"unknown query parameter '{_shorten(name)}'")
        if not equals:
            raise InvitationError("query parameter 'v' has no value")
        if vertical is not None:
            raise InvitationError("repeated query parameter 'v'")
        try:
            vertical = Vertical(value)
        except ValueError:
            raise InvitationError(
                f"invalid vertical '{_shorten(value, 8)}' (expected one of a, h, c)"
            ) from None
    return vertical


def _check_vertical_value(vertical: object) -> Vertical | None:
    if vertical is not None and not isinstance(vertical, Vertical):
        raise InvitationError("vertical must be a Vertical or None")
    return vertical


def _query_and_fragment(vertical: Vertical | None, secret: bytes | None) -> str:
    query = f"?v={vertical.value}" if vertical is not None else ""
    fragment = f"#{_secret_for_url(secret)}" if secret is not None else ""
    return query + fragment


def _require_canonical(normalised: str, given: str, name: str) -> None:
    if normalised != given:
        raise InvitationError(f"{name} is not in normalised form; build with create() or parse()")


def _check_port_value(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvitationError("port out of range 1-65535")
    return port


def _check_stored_secret(secret: object) -> None:
    if secret is None:
        return
    if type(secret) is not bytes:
        raise InvitationError("secret must be bytes or None")
    if len(secret) not in DRAFT_SECRET_SIZES:
        raise InvitationError(f"secret must be 16 or 32 bytes, got {len(secret)}")


# --- relay invitations -------------------------------------------------------------------------


def _origin(scheme: str, host: str, port: int | None) -> str:
    if scheme not in _DEFAULT_PORTS:
        raise InvitationError(f"unsupported scheme '{_shorten(scheme)}' (expected https)")
    if scheme == "http" and not is_loopback_host(host):
        raise InvitationError("plain http is allowed only for loopback hosts; use https")
    shown_port = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{_host_for_url(host)}{shown_port}"


def _parse_origin(text: object) -> str:
    """Validate and normalise ``scheme://host[:port]`` as passed to ``RelayInvitation.create``."""
    if not isinstance(text, str):
        raise InvitationError("relay origin must be text")
    cleaned = _clean_text(text)
    scheme, rest = _split_scheme(cleaned)
    authority, path, query, fragment = _split_reference(rest)
    if path or query is not None or fragment is not None:
        raise InvitationError("relay origin must be scheme://host[:port] with no path")
    host, port = _parse_authority(authority)
    return _origin(scheme, host, port)


@dataclass(frozen=True, eq=False)
class RelayInvitation:
    """A share URL pointing at a mailbox on a relay. Build with :meth:`parse` or :meth:`create`."""

    relay_origin: str
    mailbox_id: str
    vertical: Vertical | None
    secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Every instance is valid and canonical, however it was built; create() normalises.
        _require_canonical(_parse_origin(self.relay_origin), self.relay_origin, "relay_origin")
        _require_canonical(
            _check_uuid4_value(self.mailbox_id, "mailbox id"), self.mailbox_id, "mailbox_id"
        )
        _check_vertical_value(self.vertical)
        _check_stored_secret(self.secret)

    @classmethod
    def parse(cls, text: str, *, allow_draft_secret: bool = False) -> RelayInvitation:
        cleaned = _clean_text(text)
        scheme, rest = _split_scheme(cleaned)
        if scheme not in _DEFAULT_PORTS:
            raise InvitationError(f"unsupported scheme '{_shorten(scheme)}' (expected https)")
        authority, path, query, fragment = _split_reference(rest)
        host, port = _parse_authority(authority)
        origin = _origin(scheme, host, port)
        mailbox_id = _parse_relay_path(path)
        vertical = _parse_query(query)
        secret = (
            None
            if fragment is None
            else _parse_secret(fragment, allow_draft_secret=allow_draft_secret)
        )
        return cls(origin, mailbox_id, vertical, secret)

    @classmethod
    def create(
        cls,
        relay_origin: str,
        mailbox_id: str,
        vertical: Vertical | None,
        secret: bytes | None,
        *,
        allow_draft_secret: bool = False,
    ) -> RelayInvitation:
        """Validate and normalise every part; a 16-byte secret needs ``allow_draft_secret``."""
        return cls(
            _parse_origin(relay_origin),
            _check_uuid4_value(mailbox_id, "mailbox id"),
            _check_vertical_value(vertical),
            _check_secret_value(secret, allow_draft_secret=allow_draft_secret),
        )

    @property
    def mailbox_url(self) -> str:
        """The mailbox's URL as the relay knows it: no vertical, and never the secret."""
        return f"{self.relay_origin}{RELAY_PATH_PREFIX}{self.mailbox_id}"

    @property
    def channel_id(self) -> bytes:
        """Names this transfer in the end-to-end handshake (bound into the Noise prologue)."""
        return RELAY_CHANNEL_LABEL + self.mailbox_url.encode("ascii")

    def to_url(self, *, include_secret: bool = True) -> str:
        secret = self.secret if include_secret else None
        return self.mailbox_url + _query_and_fragment(self.vertical, secret)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RelayInvitation):
            return NotImplemented
        return (self.relay_origin, self.mailbox_id, self.vertical) == (
            other.relay_origin,
            other.mailbox_id,
            other.vertical,
        ) and _secrets_equal(self.secret, other.secret)

    def __hash__(self) -> int:
        # The secret is left out of the hash so that it cannot leak through hash values.
        return hash((RelayInvitation, self.relay_origin, self.mailbox_id, self.vertical))


# --- direct invitations ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DirectInvitation:
    """An invitation to connect straight to the sender at host:port, without a relay.

    ``host`` is a lowercase host name, a dotted-quad IPv4 address or a bare (unbracketed),
    compressed IPv6 address.
    """

    host: str
    port: int
    session_id: str
    vertical: Vertical | None
    secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _require_canonical(_check_host_value(self.host), self.host, "host")
        _check_port_value(self.port)
        _require_canonical(
            _check_uuid4_value(self.session_id, "session id"), self.session_id, "session_id"
        )
        _check_vertical_value(self.vertical)
        _check_stored_secret(self.secret)

    @classmethod
    def parse(cls, text: str, *, allow_draft_secret: bool = False) -> DirectInvitation:
        cleaned = _clean_text(text)
        scheme, rest = _split_scheme(cleaned)
        if scheme != DIRECT_SCHEME:
            raise InvitationError(
                f"unsupported scheme '{_shorten(scheme)}' (expected {DIRECT_SCHEME})"
            )
        authority, path, query, fragment = _split_reference(rest)
        host, port = _parse_authority(authority)
        if port is None:
            raise InvitationError("a direct invitation needs an explicit port")
        session_id = _parse_direct_path(path)
        vertical = _parse_query(query)
        secret = (
            None
            if fragment is None
            else _parse_secret(fragment, allow_draft_secret=allow_draft_secret)
        )
        return cls(host, port, session_id, vertical, secret)

    @classmethod
    def create(
        cls,
        host: str,
        port: int,
        session_id: str,
        vertical: Vertical | None,
        secret: bytes | None,
        *,
        allow_draft_secret: bool = False,
    ) -> DirectInvitation:
        return cls(
            _check_host_value(host),
            _check_port_value(port),
            _check_uuid4_value(session_id, "session id"),
            _check_vertical_value(vertical),
            _check_secret_value(secret, allow_draft_secret=allow_draft_secret),
        )

    @property
    def channel_id(self) -> bytes:
        # Host and port are left out on purpose: NAT and port forwarding change them in transit.
        return DIRECT_CHANNEL_LABEL + self.session_id.encode("ascii")

    def to_url(self, *, include_secret: bool = True) -> str:
        secret = self.secret if include_secret else None
        base = f"{DIRECT_SCHEME}://{_host_for_url(self.host)}:{self.port}/{self.session_id}"
        return base + _query_and_fragment(self.vertical, secret)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DirectInvitation):
            return NotImplemented
        return (self.host, self.port, self.session_id, self.vertical) == (
            other.host,
            other.port,
            other.session_id,
            other.vertical,
        ) and _secrets_equal(self.secret, other.secret)

    def __hash__(self) -> int:
        return hash((DirectInvitation, self.host, self.port, self.session_id, self.vertical))


def parse_invitation(
    text: str, *, allow_draft_secret: bool = False
) -> RelayInvitation | DirectInvitation:
    """Parse either invitation form, chosen by the URL scheme."""
    cleaned = _clean_text(text)
    scheme, _ = _split_scheme(cleaned)
    if scheme == DIRECT_SCHEME:
        return DirectInvitation.parse(cleaned, allow_draft_secret=allow_draft_secret)
    if scheme in _DEFAULT_PORTS:
        return RelayInvitation.parse(cleaned, allow_draft_secret=allow_draft_secret)
    raise InvitationError(
        f"unsupported scheme '{_shorten(scheme)}' (expected https or {DIRECT_SCHEME})"
    )
