"""Strict parsers for what clients send: headers, query parameters and JSON bodies.

Every function either returns a typed value or raises :class:`ProblemError` naming the field and
the limit; nothing else escapes.  Unknown fields are rejected, so a typo never passes silently.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tigress.relay.config import RelayConfig
from tigress.relay.problems import ProblemError, invalid_field
from tigress.relay.stores.base import DisplayInformation, Payload

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: Payload and token types: a short token (e.g. ``AEAD_AES_128_GCM``, ``tigress-noise-v1``,
#: ``com.apple.apns``).
TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
#: Payload data is base64 or base64url text (the draft: ``base64(IV || ciphertext || tag)``).
#: Checked with ``bytes.translate`` (a table lookup per byte) rather than a regular expression:
#: the data is most of every request body, and this is ~3x faster on a 1.4 KB frame.
_DATA_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-"
#: ASCII display text: the control characters ``_text`` refuses (C0 but tab and newline, DEL).
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: What an image URL must not contain: whitespace (``\s`` is ``str.isspace``), C0 controls, DEL,
#: quotes, angle brackets, backslash and backtick.
_URL_FORBIDDEN_RE = re.compile(r"[\s\x00-\x1f\x7f\"'<>\\`]")
_RFC3339_UTC_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")
_ATTESTATION_RE = re.compile(r"[\x20-\x7e]+")
_RIGHTS = frozenset("RWD")
_JSON_MEDIA = "application/json"


@dataclass(frozen=True, slots=True)
class NotificationToken:
    type: str
    token_data: str


@dataclass(slots=True)
class CreateMailboxRequest:
    payload: Payload
    display: DisplayInformation
    token: NotificationToken | None
    access_rights: str
    expires_at: int


@dataclass(slots=True)
class UpdateMailboxRequest:
    payload: Payload
    token: NotificationToken | None


class MailboxId:
    """A mailbox id: its 16 bytes, and its canonical lower-case 8-4-4-4-12 text on demand.

    What the relay needs of :class:`uuid.UUID` (``.bytes`` and ``str()``), without building
    one (a Python-level constructor doing integer conversions) on every request."""

    __slots__ = ("bytes",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 16:
            raise ValueError("a mailbox id is 16 bytes")
        self.bytes = raw

    @classmethod
    def random(cls) -> MailboxId:
        """A fresh version-4 (random) UUID, exactly as :func:`uuid.uuid4` makes one."""
        raw = bytearray(os.urandom(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return cls(bytes(raw))

    def __str__(self) -> str:
        h = self.bytes.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def __repr__(self) -> str:
        return f"MailboxId('{self}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MailboxId) and other.bytes == self.bytes

    def __hash__(self) -> int:
        return hash(self.bytes)


def parse_mailbox_id(value: str) -> MailboxId | None:
    """A mailbox id in its canonical 8-4-4-4-12 form (either case), or None."""
    raw = uuid_bytes(value)
    return None if raw is None else MailboxId(raw)


def uuid_bytes(value: str) -> bytes | None:
    """The 16 bytes of a canonical 8-4-4-4-12 UUID (either case), or None."""
    if len(value) != 36 or _UUID_RE.fullmatch(value) is None:
        return None
    return bytes.fromhex(value.replace("-", ""))


def parse_claim(value: str | None) -> bytes:
    if value is None:
        raise ProblemError("invalid-claim", "the Mailbox-Device-Claim header is required")
    parsed = uuid_bytes(value)
    if parsed is None:
        raise ProblemError("invalid-claim", "Mailbox-Device-Claim must be a UUID (8-4-4-4-12 hex)")
    return parsed


def parse_request_id(value: str | None) -> bytes:
    if value is None:
        raise ProblemError("invalid-header", "the Mailbox-Request-ID header is required")
    parsed = uuid_bytes(value)
    if parsed is None:
        raise ProblemError("invalid-header", "Mailbox-Request-ID must be a UUID (8-4-4-4-12 hex)")
    return parsed


def check_attestation(value: str | None, limit: int) -> None:
    """Accepted as bounded printable ASCII and then discarded (attestation policy "none")."""
    if value is None:
        return
    if len(value) > limit:
        raise ProblemError(
            "invalid-attestation", f"Mailbox-Device-Attestation is longer than {limit} characters"
        )
    if _ATTESTATION_RE.fullmatch(value) is None:
        raise ProblemError(
            "invalid-attestation", "Mailbox-Device-Attestation must be printable ASCII"
        )


def require_json_media_type(content_type: str | None) -> None:
    if content_type is None:
        raise ProblemError("unsupported-media-type", "Content-Type must be application/json")
    media, _, params = content_type.partition(";")
    if media.strip().lower() != _JSON_MEDIA:
        raise ProblemError(
            "unsupported-media-type", f"Content-Type must be application/json, not {media.strip()}"
        )
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        raise ProblemError("unsupported-media-type", "only the utf-8 charset is accepted")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; a duplicate shows as a shorter dict
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ProblemError("malformed-json", f"duplicate member {key!r} in a JSON object")
            seen.add(key)
    return result


def _reject_constant(name: str) -> None:
    raise ProblemError("malformed-json", f"{name} is not allowed in JSON")


# One decoder for every body: ``json.loads`` with hooks would build a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError("malformed-json", "the body is not valid UTF-8") from None
    if text.startswith("\ufeff"):  # json.loads refuses it too; a decoder alone would not say why
        raise ProblemError("malformed-json", "invalid JSON: the body starts with a byte order mark")
    try:
        document = _DECODER.decode(text)
    except ProblemError:
        raise
    except RecursionError:
        raise ProblemError("malformed-json", "JSON nested too deeply") from None
    except ValueError as exc:
        raise ProblemError("malformed-json", f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProblemError("malformed-json", "the body must be a JSON object")
    return document


class _Shape:
    """The members an object may hold: ``required`` ones (reported missing in sorted order) and
    ``optional`` ones; built once per kind of object, not per request."""

    __slots__ = ("allowed", "field", "required")

    def __init__(self, field: str, required: set[str], optional: set[str]) -> None:
        self.field = field
        self.required = tuple(sorted(required))
        self.allowed = frozenset(required | optional)


def _object(value: Any, shape: _Shape) -> dict[str, Any]:
    field = shape.field
    if not isinstance(value, dict):
        raise invalid_field(field, "must be an object")
    allowed = shape.allowed
    for key in value:
        if key not in allowed:
            raise invalid_field(f"{field}.{key}" if field else key, "unexpected field")
    for key in shape.required:
        if key not in value:
            raise invalid_field(f"{field}.{key}" if field else key, "is required")
    return value


_PAYLOAD = _Shape("payload", {"type", "data"}, set())
_DISPLAY = _Shape("displayInformation", {"title", "description", "imageURL"}, set())
_TOKEN = _Shape("notificationToken", {"type", "tokenData"}, set())
_CONFIGURATION = _Shape("mailboxConfiguration", set(), {"accessRights", "expiration"})
_CREATE = _Shape(
    "", {"payload", "displayInformation"}, {"notificationToken", "mailboxConfiguration"}
)
_UPDATE = _Shape("", {"payload"}, {"notificationToken"})
_READ = _Shape("", set(), {"notificationToken"})


def _string(value: Any, field: str, max_chars: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise invalid_field(field, "must be a string")
    if len(value) > max_chars:
        raise invalid_field(field, f"is longer than {max_chars} characters")
    if not value and not allow_empty:
        raise invalid_field(field, "must not be empty")
    return value


def _text(value: Any, field: str, max_chars: int) -> str:
    """Display text: NFC-normalised, no control characters (they would garble a preview)."""
    text = _string(value, field, max_chars, allow_empty=True)
    if text.isascii():  # the common case: already NFC, and the only controls are C0 and DEL
        bad = _ASCII_CONTROL_RE.search(text)
        if bad is not None:
            raise invalid_field(field, f"contains the control character U+{ord(bad.group()):04X}")
        return text
    text = unicodedata.normalize("NFC", text)
    if len(text) > max_chars:
        raise invalid_field(field, f"is longer than {max_chars} characters")
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs", "Co") and char not in "\n\t":
            raise invalid_field(field, f"contains the control character U+{ord(char):04X}")
    return text


def _payload(value: Any, config: RelayConfig) -> Payload:
    fields = _object(value, _PAYLOAD)
    kind = _string(fields["type"], "payload.type", 64)
    if TYPE_RE.fullmatch(kind) is None:
        raise invalid_field("payload.type", "must match [A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
    data = _string(fields["data"], "payload.data", config.payload_max_bytes)
    if not data.isascii() or data.encode("ascii").translate(None, _DATA_ALPHABET):
        raise invalid_field("payload.data", "must be base64 or base64url text")
    return Payload(kind, data)


def _image_url(value: Any, config: RelayConfig) -> str:
    url = _string(value, "displayInformation.imageURL", config.image_url_max)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise invalid_field("displayInformation.imageURL", "is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise invalid_field("displayInformation.imageURL", "must be an absolute https:// URL")
    if _URL_FORBIDDEN_RE.search(url) is not None:
        raise invalid_field(
            "displayInformation.imageURL", "contains whitespace, quotes or control characters"
        )
    return url


def _display(value: Any, config: RelayConfig) -> DisplayInformation:
    fields = _object(value, _DISPLAY)
    return DisplayInformation(
        title=_text(fields["title"], "displayInformation.title", config.title_max),
        description=_text(
            fields["description"], "displayInformation.description", config.description_max
        ),
        image_url=_image_url(fields["imageURL"], config),
    )


def _token(value: Any, config: RelayConfig) -> NotificationToken:
    fields = _object(value, _TOKEN)
    kind = _string(fields["type"], "notificationToken.type", 64)
    if TYPE_RE.fullmatch(kind) is None:
        raise invalid_field("notificationToken.type", "must match [A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
    data = _string(fields["tokenData"], "notificationToken.tokenData", config.token_data_max)
    return NotificationToken(kind, data)


def parse_expiration(value: Any, now: int, config: RelayConfig) -> int:
    field = "mailboxConfiguration.expiration"
    text = _string(value, field, 20)
    match = _RFC3339_UTC_RE.fullmatch(text)
    if match is None:
        raise invalid_field(field, "must be RFC 3339 UTC: YYYY-MM-DDThh:mm:ssZ")
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise invalid_field(field, "is not a valid date and time") from None
    expires_at = int(moment.timestamp())
    if expires_at < now + config.expiration_min_seconds:
        raise invalid_field(
            field, f"must be at least {config.expiration_min_seconds} seconds in the future"
        )
    if expires_at > now + config.expiration_max_seconds:
        raise invalid_field(
            field, f"must be at most {config.expiration_max_seconds} seconds in the future"
        )
    return expires_at


def _access_rights(value: Any) -> str:
    field = "mailboxConfiguration.accessRights"
    rights = _string(value, field, 3, allow_empty=True)
    if not set(rights) <= _RIGHTS or len(set(rights)) != len(rights):
        raise invalid_field(field, "must be a combination of R, W and D, each at most once")
    return "".join(r for r in "RWD" if r in rights)


_RFC3339_CACHE: dict[int, str] = {}
_RFC3339_CACHE_MAX = 4096


def format_rfc3339(timestamp: int) -> str:
    """``YYYY-MM-DDThh:mm:ssZ``; every read formats its mailbox's expiry, and many mailboxes
    share one (created in the same second), so recent results are cached."""
    text = _RFC3339_CACHE.get(timestamp)
    if text is None:
        if len(_RFC3339_CACHE) >= _RFC3339_CACHE_MAX:
            _RFC3339_CACHE.clear()
        text = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _RFC3339_CACHE[timestamp] = text
    return text


def parse_create(body: dict[str, Any], now: int, config: RelayConfig) -> CreateMailboxRequest:
    _object(body, _CREATE)
    token = None
    if body.get("notificationToken") is not None:
        token = _token(body["notificationToken"], config)
    rights = "RD"
    expires_at = now + config.expiration_default_seconds
    configuration = body.get("mailboxConfiguration")
    if configuration is not None:
        fields = _object(configuration, _CONFIGURATION)
        if "accessRights" in fields:
            rights = _access_rights(fields["accessRights"])
        if "expiration" in fields:
            expires_at = parse_expiration(fields["expiration"], now, config)
    return CreateMailboxRequest(
        payload=_payload(body["payload"], config),
        display=_display(body["displayInformation"], config),
        token=token,
        access_rights=rights,
        expires_at=expires_at,
    )


def parse_update(body: dict[str, Any], config: RelayConfig) -> UpdateMailboxRequest:
    _object(body, _UPDATE)
    token = None
    if body.get("notificationToken") is not None:
        token = _token(body["notificationToken"], config)
    return UpdateMailboxRequest(_payload(body["payload"], config), token)


def parse_read(body: dict[str, Any], config: RelayConfig) -> NotificationToken | None:
    _object(body, _READ)
    if body.get("notificationToken") is None:
        return None
    return _token(body["notificationToken"], config)


def parse_cursor(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 15:
        raise ProblemError("invalid-query", f"{name} must be a non-negative integer", field=name)
    return int(value)


def parse_wait(value: str | None, maximum: int) -> float:
    if value is None:
        return 0.0
    if not value.isascii() or not value.isdigit() or len(value) > 4 or int(value) > maximum:
        raise ProblemError(
            "invalid-query", f"wait must be an integer between 0 and {maximum}", field="wait"
        )
    return float(int(value))
