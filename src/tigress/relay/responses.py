"""The JSON bodies of the transfer endpoints, formatted directly.

These documents have a fixed shape, so building a dict and walking it with the generic encoder
(type dispatch per value, a generator per container) is most of their cost.  Here each string
goes through the same C escaper ``json.dumps(..., ensure_ascii=False)`` uses and the rest is
literal text, so the bytes are exactly those of
``COMPACT_JSON.encode(document).encode()`` (a property test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring as _string

from tigress.relay.stores.base import DisplayInformation, StoredMessage

__all__ = ["EMPTY_OBJECT", "create_body", "read_body", "update_body"]

EMPTY_OBJECT = b"{}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


#: Payload data is base64 text (validated on the way in): nothing in it needs escaping, and
#: checking that with a byte table is ~3x cheaper than running the escaper over ~1.4 KB.
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-"


def _data(data: str) -> str:
    if data.isascii() and not data.encode("ascii").translate(None, _BASE64_ALPHABET):
        return f'"{data}"'
    return _string(data)


def _payload(message: StoredMessage) -> str:
    payload = message.payload
    return f'{{"type":{_string(payload.type)},"data":{_data(payload.data)}}}'


def create_body(url_link: str, push_supported: bool) -> bytes:
    """``{"urlLink": …, "isPushNotificationSupported": …}``"""
    return (
        f'{{"urlLink":{_string(url_link)},"isPushNotificationSupported":{_bool(push_supported)}}}'
    ).encode()


def update_body(push_supported: bool, seq: int | None) -> bytes:
    """``{"isPushNotificationSupported": …, "seq": …}`` (no ``seq`` for a duplicate)."""
    if seq is None:
        return f'{{"isPushNotificationSupported":{_bool(push_supported)}}}'.encode()
    return f'{{"isPushNotificationSupported":{_bool(push_supported)},"seq":{int(seq)}}}'.encode()


def read_body(
    display: DisplayInformation,
    latest: StoredMessage | None,
    expiration: str,
    messages: Sequence[StoredMessage] | None,
) -> bytes:
    """The draft's ReadSecureContent answer (``displayInformation``, ``payload``,
    ``expiration``, ``seq``) and, with a cursor, the ``messages`` extension."""
    parts = [
        '{"displayInformation":{"title":',
        _string(display.title),
        ',"description":',
        _string(display.description),
        ',"imageURL":',
        _string(display.image_url),
        '},"payload":',
        "null" if latest is None else _payload(latest),
        ',"expiration":',
        _string(expiration),
        ',"seq":',
        "0" if latest is None else str(int(latest.seq)),
    ]
    if messages is not None:
        parts.append(',"messages":[')
        parts.append(",".join(f'{{"seq":{int(m.seq)},"payload":{_payload(m)}}}' for m in messages))
        parts.append("]")
    parts.append("}")
    return "".join(parts).encode()
