"""The canonical JSON encoding of messages inside the end-to-end channel.

Both sides must produce identical bytes for the same message (transcripts are hashed and a second
implementation must be able to match us), so every message has exactly one accepted encoding:

* UTF-8, no byte-order mark, no whitespace between tokens (separators ``,`` and ``:``);
* object keys sorted by Unicode code point (equivalently by their UTF-8 bytes; note that this is
  *not* RFC 8785's UTF-16 order, which differs for characters outside the BMP), no duplicates;
* non-ASCII characters written as themselves; in strings only ``"`` and ``\\`` and the control
  characters U+0000..U+001F are escaped: ``\\b \\f \\n \\r \\t`` by their short forms, the others as
  ``\\u00xx`` with lowercase hex; no other escape appears;
* values: objects, arrays, strings (valid Unicode, no lone surrogates), ``true``, ``false``,
  ``null``, and integers in ±(2**53 - 1) written in shortest decimal form (no ``-0``, no
  exponent). Floats, NaN and infinities do not exist in this format;
* the top level is an object; nesting depth at most :data:`MAX_DEPTH` (the top object is depth
  1); at most :data:`MAX_MESSAGE_BYTES` bytes.

:func:`decode` accepts only that encoding: it parses strictly, re-encodes, and rejects the input
unless the bytes are identical.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final, TypeAlias

from tigress.crypto.padding import MAX_PADDED_MESSAGE
from tigress.protocol.errors import CodecError

__all__ = [
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MAX_SAFE_INTEGER",
    "CodecError",
    "JSONValue",
    "decode",
    "encode",
]

# A message that fits the codec must fit one padded channel plaintext (32764 bytes).
MAX_MESSAGE_BYTES: Final = MAX_PADDED_MESSAGE
MAX_DEPTH = 16
MAX_SAFE_INTEGER = 2**53 - 1
# The longest decimal spelling of an integer in the safe range ("-9007199254740991"); longer digit
# runs are rejected before int() so hostile input cannot make us convert huge numbers.
_MAX_INTEGER_CHARS = len(str(-MAX_SAFE_INTEGER))

JSONValue: TypeAlias = bool | int | str | list["JSONValue"] | dict[str, "JSONValue"] | None

# A complete JSON string token; the two alternatives are disjoint, so matching is linear.
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def encode(obj: Mapping[str, JSONValue]) -> bytes:
    """Encode a message canonically; raise :class:`CodecError` if it cannot be."""
    return _encode(obj, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_depth: int = MAX_DEPTH,
) -> dict[str, JSONValue]:
    """Decode a canonically encoded message; reject anything else with :class:`CodecError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("message must be bytes")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_bytes:  # checked before copying or parsing anything
        raise CodecError(f"message is {size} bytes, above the limit of {max_bytes}")
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CodecError(f"invalid UTF-8 at byte {error.start}") from None
    _check_depth(text, max_depth)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_float=_reject_float,
            parse_int=_parse_safe_integer,
            parse_constant=_reject_constant,
        )
        if not isinstance(value, dict):
            raise CodecError(f"top level must be an object, got {_json_type_name(value)}")
        # json.loads produced plain types and the depth pre-scan bounded the nesting, so the
        # value goes straight to the serialiser, which also rejects lone surrogates smuggled in
        # through escapes like \ud800.
        canonical = _dump_plain(value, max_bytes=max_bytes)
    except json.JSONDecodeError as error:
        raise CodecError(_describe_syntax_error(error)) from None
    except RecursionError:
        # Only reachable when a caller raises max_depth far above MAX_DEPTH.
        raise CodecError("nesting too deep") from None
    if canonical != raw:
        raise CodecError(
            f"non-canonical encoding (differs from byte {_first_difference(canonical, raw)})"
        )
    return value


# --- encoding ----------------------------------------------------------------------------------


def _encode(obj: object, *, max_bytes: int, max_depth: int) -> bytes:
    if not isinstance(obj, Mapping):
        raise CodecError(f"top level must be a mapping, got {type(obj).__name__}")
    return _dump_plain(_plain_value(obj, depth=1, max_depth=max_depth), max_bytes=max_bytes)


def _dump_plain(plain: JSONValue, *, max_bytes: int) -> bytes:
    """Serialise a value already known to hold only plain JSON types within the depth limit."""
    try:
        encoded = json.dumps(
            plain, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        raise CodecError("string contains a lone surrogate (not valid Unicode)") from None
    if len(encoded) > max_bytes:
        raise CodecError(f"encoded message is {len(encoded)} bytes, above the limit of {max_bytes}")
    return encoded


def _plain_value(value: object, *, depth: int, max_depth: int) -> JSONValue:
    """Check one value and copy it into plain dict/list form (recursion bounded by max_depth).

    Exact built-in types take the fast path; subclasses are reduced to their plain value with
    int.__int__ / str.__str__ (which ignore overridden __int__/__str__), so what we check is what
    we write. Lone surrogates are caught when the result is encoded to UTF-8.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value  # type: ignore[return-value]
    if kind is int:
        return _checked_integer(value)  # type: ignore[arg-type]
    if isinstance(value, Mapping | list | tuple):
        if depth > max_depth:
            raise CodecError(f"nesting deeper than {max_depth} levels")
        if isinstance(value, Mapping):
            return _plain_object(value, depth=depth, max_depth=max_depth)
        return [_plain_value(item, depth=depth + 1, max_depth=max_depth) for item in value]
    if isinstance(value, int):  # int subclasses such as IntEnum (bool was handled above)
        return _checked_integer(int.__int__(value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, float):
        raise CodecError("floats are not allowed (use integers or strings)")
    raise CodecError(f"cannot encode a value of type {kind.__name__}")


def _plain_object(
    value: Mapping[object, object], *, depth: int, max_depth: int
) -> dict[str, JSONValue]:
    plain: dict[str, JSONValue] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise CodecError(f"object keys must be strings, got {type(key).__name__}")
        key_text = key if type(key) is str else str.__str__(key)
        if key_text in plain:  # only possible with str subclasses that redefine equality
            raise CodecError(f"duplicate object key {_shown_key(key_text)}")
        plain[key_text] = _plain_value(item, depth=depth + 1, max_depth=max_depth)
    return plain


def _checked_integer(number: int) -> int:
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        raise CodecError("integer outside the safe range ±(2**53 - 1)")
    return number


# --- decoding ----------------------------------------------------------------------------------


def _check_depth(text: str, max_depth: int) -> None:
    """Reject deep nesting before json.loads, whose recursion would otherwise overflow.

    String tokens are blanked first so brackets inside strings do not count. Malformed text may
    be miscounted here, but it is rejected either way.
    """
    depth = 0
    for match in _BRACKET.finditer(_STRING_TOKEN.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise CodecError(f"nesting deeper than {max_depth} levels")
        else:
            depth -= 1


def _object_without_duplicates(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    result: dict[str, JSONValue] = {}
    for key, value in pairs:
        if key in result:
            raise CodecError(f"duplicate object key {_shown_key(key)}")
        result[key] = value
    return result


def _shown_key(key: str) -> str:
    shown = key if len(key) <= 40 else key[:40] + "..."
    return ascii(shown)


def _reject_float(_text: str) -> JSONValue:
    raise CodecError("floats are not allowed (fractions and exponents are not canonical)")


def _reject_constant(name: str) -> JSONValue:
    raise CodecError(f"{name} is not allowed")


def _parse_safe_integer(text: str) -> int:
    if len(text) > _MAX_INTEGER_CHARS:
        raise CodecError("integer outside the safe range ±(2**53 - 1)")
    number = int(text)
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        raise CodecError("integer outside the safe range ±(2**53 - 1)")
    return number


def _first_difference(left: bytes, right: bytes) -> int:
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return index
    return min(len(left), len(right))


def _describe_syntax_error(error: json.JSONDecodeError) -> str:
    if error.msg == "Extra data":
        return f"trailing data after the JSON value at character {error.pos}"
    return f"invalid JSON: {error.msg} at character {error.pos}"


def _json_type_name(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number"
    return "null"
