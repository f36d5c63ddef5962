"""The canonical message codec: one encoding per message, every other byte string rejected."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.protocol.codec import (
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    MAX_SAFE_INTEGER,
    JSONValue,
    decode,
    encode,
)
from tigress.protocol.errors import CodecError, ProtocolError


def _nested(depth: int) -> dict[str, JSONValue]:
    """An object whose nesting depth (top object = 1) is exactly ``depth``."""
    inner: JSONValue = {}
    for _ in range(depth - 2):
        inner = [inner]
    return {"a": inner} if depth > 1 else {}


# --- the canonical form ------------------------------------------------------------------------


def test_canonical_form_is_compact_sorted_utf8() -> None:
    message: dict[str, JSONValue] = {"z": 1, "a": [True, False, None], "m": {"y": "é", "b": -5}}
    assert encode(message) == '{"a":[true,false,null],"m":{"b":-5,"y":"é"},"z":1}'.encode()


def test_keys_sort_by_code_point_not_utf16() -> None:
    # U+FF61 sorts before U+1F600 by code point, after it in UTF-16 code units (RFC 8785).
    message = {"\U0001f600": 1, "\uff61": 2, "B": 3, "a": 4}
    assert encode(message) == '{"B":3,"a":4,"\uff61":2,"\U0001f600":1}'.encode()


def test_string_escapes_are_minimal() -> None:
    text = '"\\/\b\f\n\r\t\x00\x1f\x7f\u2028é\U0001f600'
    encoded = encode({"s": text})
    assert encoded == (
        b'{"s":"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f' + "\u2028é\U0001f600".encode() + b'"}'
    )
    assert decode(encoded) == {"s": text}


def test_tuples_and_mappings_encode_as_arrays_and_objects() -> None:
    message = OrderedDict([("b", (1, 2)), ("a", OrderedDict(x=[]))])
    assert encode(message) == b'{"a":{"x":[]},"b":[1,2]}'  # type: ignore[arg-type]


def test_int_and_str_subclasses_encode_as_their_plain_values() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Kind(enum.StrEnum):
        CAR = "car"

    class Sneaky(str):
        def __str__(self) -> str:
            return "other"

    encoded = encode({"level": Level.HIGH, "kind": Kind.CAR, Sneaky("k"): Sneaky("v")})
    assert encoded == b'{"k":"v","kind":"car","level":3}'


def test_safe_integer_bounds() -> None:
    edge = {"max": MAX_SAFE_INTEGER, "min": -MAX_SAFE_INTEGER}
    assert decode(encode(edge)) == edge
    assert MAX_SAFE_INTEGER == 2**53 - 1


def test_max_depth_is_allowed() -> None:
    message = _nested(MAX_DEPTH)
    assert decode(encode(message)) == message


def test_max_size_is_allowed() -> None:
    overhead = len(encode({"k": ""}))
    message = {"k": "x" * (MAX_MESSAGE_BYTES - overhead)}
    encoded = encode(message)
    assert len(encoded) == MAX_MESSAGE_BYTES
    assert decode(encoded) == message


def test_max_message_bytes_matches_padding_capacity() -> None:
    padding = pytest.importorskip("tigress.crypto.padding")
    assert padding.MAX_PADDED_MESSAGE == MAX_MESSAGE_BYTES == 32764
    # The largest canonical message pads into the largest bucket.
    largest = encode({"k": "x" * (MAX_MESSAGE_BYTES - len(b'{"k":""}'))})
    assert len(padding.pad(largest)) == padding.PAD_BUCKETS[-1]


# --- encode rejects what has no canonical form -------------------------------------------------


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"f": 1.0}, "floats are not allowed"),
        ({"f": float("nan")}, "floats are not allowed"),
        ({"f": float("inf")}, "floats are not allowed"),
        ({"n": MAX_SAFE_INTEGER + 1}, "safe range"),
        ({"n": -MAX_SAFE_INTEGER - 1}, "safe range"),
        ({"n": 10**400}, "safe range"),
        ({"s": "\ud800"}, "lone surrogate"),
        ({"\udfff": 1}, "lone surrogate"),
        ({1: "x"}, "keys must be strings"),
        ({None: "x"}, "keys must be strings"),
        ({"b": b"bytes"}, "cannot encode a value of type bytes"),
        ({"s": {1, 2}}, "cannot encode a value of type set"),
        ({"o": object()}, "cannot encode"),
        ({"k": "x" * MAX_MESSAGE_BYTES}, "above the limit of 32764"),
        (_nested(MAX_DEPTH + 1), "nesting deeper than 16"),
    ],
)
def test_encode_rejects(message: Any, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        encode(message)


@pytest.mark.parametrize("top", [[], "text", 1, None, True])
def test_encode_needs_a_mapping_at_top_level(top: object) -> None:
    with pytest.raises(CodecError, match="top level must be a mapping"):
        encode(top)  # type: ignore[arg-type]


def test_encode_rejects_self_reference_without_recursion_error() -> None:
    loop: dict[str, JSONValue] = {}
    loop["self"] = loop
    with pytest.raises(CodecError, match="nesting deeper"):
        encode(loop)


def test_encode_rejects_colliding_key_subclasses() -> None:
    class Alias(str):
        def __hash__(self) -> int:
            return id(self)

        def __eq__(self, other: object) -> bool:
            return other is self

    with pytest.raises(CodecError, match="duplicate object key 'k'"):
        encode({Alias("k"): 1, Alias("k"): 2})


# --- decode is strict --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "invalid JSON: Expecting value"),
        (b"{", "invalid JSON"),
        (b'{"a":}', "invalid JSON"),
        (b"{'a':1}", "invalid JSON"),
        (b'{"a":1,}', "invalid JSON"),
        (b'{"a":01}', "invalid JSON|non-canonical"),
        (b'{"a":"\x01"}', "invalid JSON: Invalid control character"),
        (b'{"a":1}{"b":2}', "trailing data after the JSON value at character 7"),
        (b'{"a":1}x', "trailing data"),
        (b"[]", "top level must be an object, got array"),
        (b'"s"', "top level must be an object, got string"),
        (b"1", "top level must be an object, got number"),
        (b"true", "top level must be an object, got boolean"),
        (b"null", "top level must be an object, got null"),
        (b'{"a":1,"a":1}', "duplicate object key 'a'"),
        (b'{"a":{"x":1,"x":2}}', "duplicate object key 'x'"),
        (b'{"a":1.5}', "floats are not allowed"),
        (b'{"a":1.0}', "floats are not allowed"),
        (b'{"a":1e3}', "floats are not allowed"),
        (b'{"a":-0.0}', "floats are not allowed"),
        (b'{"a":1E400}', "floats are not allowed"),
        (b'{"a":NaN}', "NaN is not allowed"),
        (b'{"a":Infinity}', "Infinity is not allowed"),
        (b'{"a":-Infinity}', "-Infinity is not allowed"),
        (b'{"a":9007199254740992}', "safe range"),
        (b'{"a":-9007199254740992}', "safe range"),
        (b'{"a":' + b"9" * 5000 + b"}", "safe range"),
        (b'{"a":"\\ud800"}', "lone surrogate"),
        (b'{"\\udc00":1}', "lone surrogate"),
        (b'{"a":"\xff"}', "invalid UTF-8 at byte 6"),
        (b'{"a":"\xc3"}', "invalid UTF-8 at byte 6"),
        (b'{"a":"\xed\xa0\x80"}', "invalid UTF-8"),  # an encoded surrogate
        (b'{"a":"\xc0\xaf"}', "invalid UTF-8"),  # an overlong '/'
        (b'\xef\xbb\xbf{"a":1}', "invalid JSON: Unexpected UTF-8 BOM"),
        (b"\x00{}", "invalid JSON"),
        # Valid JSON, but not the canonical spelling of its value.
        (b'{"b":1,"a":2}', "non-canonical encoding"),
        (b'{"a":1} ', "non-canonical encoding"),
        (b' {"a":1}', "non-canonical encoding"),
        (b'{"a": 1}', "non-canonical encoding \\(differs from byte 5\\)"),
        (b'{"a":-0}', "non-canonical encoding"),
        (b'{"a":"\\u00e9"}', "non-canonical encoding"),
        (b'{"a":"\\/"}', "non-canonical encoding"),
        (b'{"a":"\\u000a"}', "non-canonical encoding"),
        (b'{"a":"\\u001F"}', "non-canonical encoding"),
        (b'{"a":"\\ud83d\\ude00"}', "non-canonical encoding"),
        (b'{"a":[1 ,2]}', "non-canonical encoding"),
    ],
)
def test_decode_rejects(data: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        decode(data)


def test_decode_rejects_oversized_input_before_parsing() -> None:
    data = b'{"k":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    with pytest.raises(CodecError, match=f"above the limit of {MAX_MESSAGE_BYTES}"):
        decode(data)
    with pytest.raises(CodecError, match="above the limit of 10"):
        decode(b'{"k":"xxxxx"}', max_bytes=10)
    assert decode(data, max_bytes=2 * MAX_MESSAGE_BYTES) == {"k": "x" * MAX_MESSAGE_BYTES}


def test_decode_depth_limit_counts_the_top_object() -> None:
    deepest_allowed = encode(_nested(MAX_DEPTH))
    assert decode(deepest_allowed) == _nested(MAX_DEPTH)
    too_deep = b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    with pytest.raises(CodecError, match="nesting deeper than 16 levels"):
        decode(too_deep)
    with pytest.raises(CodecError, match="nesting deeper than 2 levels"):
        decode(b'{"a":{"b":{}}}', max_depth=2)


def test_brackets_inside_strings_do_not_count_towards_depth() -> None:
    message = {"s": "[[[[{{{{" * 10 + '\\"[[[' + "]]]]" * 20}
    assert decode(encode(message)) == message


@pytest.mark.parametrize("opener", [b"[", b"{", b'{"a":'])
def test_very_deep_input_gives_codec_error_not_recursion_error(opener: bytes) -> None:
    data = opener * 100_000
    with pytest.raises(CodecError, match="nesting deeper"):
        decode(data, max_bytes=len(data))
    with pytest.raises(CodecError):
        decode(data)


def test_huge_max_depth_still_fails_cleanly() -> None:
    # A caller that lifts the depth limit far beyond MAX_DEPTH gets a CodecError, not a crash.
    data = b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with pytest.raises(CodecError, match="nesting too deep"):
        decode(data, max_bytes=len(data), max_depth=10**6)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    encoded = encode({"a": 1})
    assert decode(bytearray(encoded)) == {"a": 1}
    assert decode(memoryview(encoded)) == {"a": 1}
    wide = memoryview(bytearray(MAX_MESSAGE_BYTES + 4)).cast("I")
    with pytest.raises(CodecError, match=f"{MAX_MESSAGE_BYTES + 4} bytes"):
        decode(wide)


@pytest.mark.parametrize("data", ['{"a":1}', None, 5])
def test_decode_rejects_non_bytes(data: object) -> None:
    with pytest.raises(CodecError, match="must be bytes"):
        decode(data)  # type: ignore[arg-type]


def test_codec_errors_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[]")


# --- property-based ----------------------------------------------------------------------------

_keys = st.text(max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=30,
)
_messages = st.dictionaries(_keys, _values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_round_trip(message: dict[str, JSONValue]) -> None:
    encoded = encode(message)
    assert decode(encoded) == message
    assert encode(decode(encoded)) == encoded


@settings(max_examples=150, deadline=None)
@given(_messages)
def test_encoding_matches_an_independent_serialisation(message: dict[str, JSONValue]) -> None:
    # The same rules written with the standard library alone: a second implementation's view.
    expected = json.dumps(message, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert encode(message) == expected.encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(_messages, st.sampled_from([" ", "\n", "\t"]), st.data())
def test_inserted_whitespace_is_non_canonical(
    message: dict[str, JSONValue], space: str, data: st.DataObject
) -> None:
    text = encode(message).decode("utf-8")
    # Insert the whitespace right after a structural character outside any string.
    structural = [i for i, ch in enumerate(text) if ch in "{[:," and not _inside_string(text, i)]
    position = data.draw(st.sampled_from(structural)) + 1
    with pytest.raises(CodecError, match="non-canonical"):
        decode((text[:position] + space + text[position:]).encode("utf-8"))


def _inside_string(text: str, index: int) -> bool:
    inside = escaped = False
    for ch in text[:index]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = inside
        elif ch == '"':
            inside = not inside
    return inside


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_codec_error(data: bytes) -> None:
    try:
        result = decode(data)
    except CodecError:
        return
    assert encode(result) == data


_json_alphabet = st.sampled_from(
    [*'{}[]:,"\\ 0123456789-+.eEtrufalsn', "true", "false", "null", '"a"', "\\u", "\\ud800"]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_json_alphabet, max_size=80).map("".join))
def test_json_like_text_raises_only_codec_error(text: str) -> None:
    try:
        result = decode(text.encode("utf-8", "surrogatepass"))
    except CodecError:
        return
    assert encode(result) == text.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(_messages, st.data())
def test_mutated_messages_raise_only_codec_error(
    message: dict[str, JSONValue], data: st.DataObject
) -> None:
    encoded = bytearray(encode(message))
    position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[position] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        result = decode(bytes(encoded))
    except CodecError:
        return
    assert encode(result) == bytes(encoded)
