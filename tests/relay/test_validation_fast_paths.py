"""The parsers' fast paths (ASCII display text, translate-based base64 check, regex URL check,
C-level duplicate detection) accept and refuse exactly what the general rules do."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tigress.relay.config import RelayConfig
from tigress.relay.problems import ProblemError
from tigress.relay.validation import parse_create, parse_json_object

CONFIG = RelayConfig()
NOW = 1_700_000_000
_BASE64_RE = re.compile(r"[A-Za-z0-9+/_=-]+")


def _create(
    title: str = "t", image_url: str = "https://img.example/a.png", data: str = "QQ"
) -> Any:
    return {
        "payload": {"type": "AEAD_AES_128_GCM", "data": data},
        "displayInformation": {"title": title, "description": "", "imageURL": image_url},
    }


def _detail(body: dict[str, Any]) -> str | None:
    try:
        parse_create(body, NOW, CONFIG)
    except ProblemError as problem:
        return problem.detail
    return None


def _text_rule(text: str) -> str | None:
    """The general display-text rule: NFC, then no Cc/Cs/Co character but tab and newline."""
    normalised = unicodedata.normalize("NFC", text)
    for char in normalised:
        if unicodedata.category(char) in ("Cc", "Cs", "Co") and char not in "\n\t":
            return f"U+{ord(char):04X}"
    return None


@given(st.text(max_size=40))
def test_display_text_matches_the_general_rule(title: str) -> None:
    expected = _text_rule(title)
    detail = _detail(_create(title=title))
    if expected is None:
        assert detail is None
        parsed = parse_create(_create(title=title), NOW, CONFIG)
        assert parsed.display.title == unicodedata.normalize("NFC", title)
    else:
        assert detail is not None and expected in detail


@pytest.mark.parametrize("char", [chr(c) for c in [*range(0x20), 0x7F, 0x80, 0x9F]])
def test_every_control_character_is_refused_but_tab_and_newline(char: str) -> None:
    detail = _detail(_create(title=f"a{char}b"))
    if char in "\n\t":
        assert detail is None
    else:
        assert detail is not None and f"U+{ord(char):04X}" in detail


@given(st.text(alphabet=st.characters(max_codepoint=0x3000), min_size=1, max_size=30))
def test_image_url_check_matches_the_character_rule(tail: str) -> None:
    url = "https://img.example/" + tail
    forbidden = any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c in "\"'<>\\`" for c in url)
    detail = _detail(_create(image_url=url))
    if forbidden:
        assert detail is not None
    elif detail is not None:  # refused for another reason: the URL does not parse as https
        assert "whitespace" not in detail


@given(st.text(min_size=1, max_size=60))
def test_payload_data_check_matches_the_base64_alphabet(data: str) -> None:
    detail = _detail(_create(data=data))
    if _BASE64_RE.fullmatch(data) is None:
        assert detail is not None and "base64" in detail
    else:
        assert detail is None


@given(st.lists(st.sampled_from("abc"), max_size=6))
def test_duplicate_members_are_named_in_order(keys: list[str]) -> None:
    raw = ("{" + ",".join(f'"{k}": {n}' for n, k in enumerate(keys)) + "}").encode()
    seen: set[str] = set()
    first_duplicate = None
    for key in keys:
        if key in seen:
            first_duplicate = key
            break
        seen.add(key)
    if first_duplicate is None:
        assert parse_json_object(raw) == json.loads(raw)
    else:
        with pytest.raises(ProblemError, match=f"duplicate member '{first_duplicate}'"):
            parse_json_object(raw)
