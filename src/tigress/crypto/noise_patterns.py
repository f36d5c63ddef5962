"""Noise handshake patterns and protocol-name parsing (Noise spec revision 34, §7, §8, §9, §18).

Why this module exists: the protocol name (``Noise_NNpsk0_25519_AESGCM_SHA256``) is hashed into
the handshake, so two peers agree on *exactly* one pattern or fail; a strict parser keeps a
hostile or mistyped name from selecting something unintended (unknown patterns and modifiers
are refused, never approximated).

The product uses ``NNpsk0`` only; the other fundamental, one-way and deferred patterns are here
because the published Noise test vectors exercise them, which proves the engine more thoroughly
than NNpsk0 alone could. The ``fallback`` modifier is deliberately not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from tigress.crypto.errors import HandshakeError
from tigress.crypto.noise_suite import Suite

__all__ = ["HandshakePattern", "ProtocolName", "parse_pattern", "parse_protocol_name"]

Token = str
"""One of ``e``, ``s``, ``ee``, ``es``, ``se``, ``ss``, ``psk``."""

_MAX_PROTOCOL_NAME_LEN: Final = 255


@dataclass(frozen=True)
class HandshakePattern:
    """A handshake pattern: pre-messages plus message patterns.

    ``initiator_pre`` / ``responder_pre`` list the keys each side knows in advance of the
    handshake (``"e"``/``"s"``); ``messages[i]`` is sent by the initiator when ``i`` is even.
    """

    name: str
    initiator_pre: tuple[Token, ...]
    responder_pre: tuple[Token, ...]
    messages: tuple[tuple[Token, ...], ...]

    @property
    def one_way(self) -> bool:
        """One-way patterns (N, K, X) have a single message, initiator to responder."""
        return len(self.messages) == 1

    @property
    def psk_count(self) -> int:
        return sum(message.count("psk") for message in self.messages)

    @property
    def is_psk(self) -> bool:
        return self.psk_count > 0


def _pattern(
    pre_i: str, pre_r: str, *messages: str
) -> tuple[tuple[Token, ...], tuple[Token, ...], tuple[tuple[Token, ...], ...]]:
    def tokens(text: str) -> tuple[Token, ...]:
        return tuple(token.strip() for token in text.split(",") if token.strip())

    return tokens(pre_i), tokens(pre_r), tuple(tokens(message) for message in messages)


# Transcribed from the Noise spec, revision 34: §7.4 (one-way), §7.5 (interactive fundamental)
# and §18 (deferred patterns). Message i is initiator->responder when i is even.
_BASE_PATTERNS: Final = {
    # One-way patterns.
    "N": _pattern("", "s", "e, es"),
    "K": _pattern("s", "s", "e, es, ss"),
    "X": _pattern("", "s", "e, es, s, ss"),
    # Interactive fundamental patterns.
    "NN": _pattern("", "", "e", "e, ee"),
    "NK": _pattern("", "s", "e, es", "e, ee"),
    "NX": _pattern("", "", "e", "e, ee, s, es"),
    "KN": _pattern("s", "", "e", "e, ee, se"),
    "KK": _pattern("s", "s", "e, es, ss", "e, ee, se"),
    "KX": _pattern("s", "", "e", "e, ee, se, s, es"),
    "XN": _pattern("", "", "e", "e, ee", "s, se"),
    "XK": _pattern("", "s", "e, es", "e, ee", "s, se"),
    "XX": _pattern("", "", "e", "e, ee, s, es", "s, se"),
    "IN": _pattern("", "", "e, s", "e, ee, se"),
    "IK": _pattern("", "s", "e, es, s, ss", "e, ee, se"),
    "IX": _pattern("", "", "e, s", "e, ee, se, s, es"),
    # Deferred patterns.
    "NK1": _pattern("", "s", "e", "e, ee, es"),
    "NX1": _pattern("", "", "e", "e, ee, s", "es"),
    "X1N": _pattern("", "", "e", "e, ee", "s", "se"),
    "X1K": _pattern("", "s", "e, es", "e, ee", "s", "se"),
    "XK1": _pattern("", "s", "e", "e, ee, es", "s, se"),
    "X1K1": _pattern("", "s", "e", "e, ee, es", "s", "se"),
    "X1X": _pattern("", "", "e", "e, ee, s, es", "s", "se"),
    "XX1": _pattern("", "", "e", "e, ee, s", "es, s, se"),
    "X1X1": _pattern("", "", "e", "e, ee, s", "es, s", "se"),
    "K1N": _pattern("s", "", "e", "e, ee", "se"),
    "K1K": _pattern("s", "s", "e, es", "e, ee", "se"),
    "KK1": _pattern("s", "s", "e", "e, ee, se, es"),
    "K1K1": _pattern("s", "s", "e", "e, ee, es", "se"),
    "K1X": _pattern("s", "", "e", "e, ee, s, es", "se"),
    "KX1": _pattern("s", "", "e", "e, ee, se, s", "es"),
    "K1X1": _pattern("s", "", "e", "e, ee, s", "se, es"),
    "I1N": _pattern("", "", "e, s", "e, ee", "se"),
    "I1K": _pattern("", "s", "e, es, s", "e, ee", "se"),
    "IK1": _pattern("", "s", "e, s", "e, ee, se, es"),
    "I1K1": _pattern("", "s", "e, s", "e, ee, es", "se"),
    "I1X": _pattern("", "", "e, s", "e, ee, s, es", "se"),
    "IX1": _pattern("", "", "e, s", "e, ee, se, s", "es"),
    "I1X1": _pattern("", "", "e, s", "e, ee, s", "se, es"),
}

_PATTERN_NAME: Final = re.compile(r"([NKXI]1?[NKX]?1?)((?:psk[0-9]+)(?:\+psk[0-9]+)*)?")
_PSK_MODIFIER: Final = re.compile(r"psk([0-9]+)")


def supported_patterns() -> tuple[str, ...]:
    """Names of the base patterns this engine implements (modifiers apply on top)."""
    return tuple(_BASE_PATTERNS)


def parse_pattern(name: str) -> HandshakePattern:
    """Build the pattern named e.g. ``"NN"``, ``"NNpsk0"`` or ``"XXpsk0+psk3"``.

    A ``pskN`` modifier puts a ``psk`` token at the start of the first message (N = 0) or at
    the end of message N (N >= 1), applied in the order written (spec §9.2).
    """
    match = _PATTERN_NAME.fullmatch(name)
    if match is None:
        raise HandshakeError(f"unsupported or malformed Noise pattern name {name!r}")
    base_name, modifiers = match.group(1), match.group(2)
    base = _BASE_PATTERNS.get(base_name)
    if base is None:
        raise HandshakeError(f"unsupported Noise pattern {base_name!r}")
    initiator_pre, responder_pre, base_messages = base
    messages = [list(message) for message in base_messages]
    seen: set[int] = set()
    for modifier in modifiers.split("+") if modifiers else ():
        psk_match = _PSK_MODIFIER.fullmatch(modifier)
        if psk_match is None:  # pragma: no cover - excluded by _PATTERN_NAME already
            raise HandshakeError(f"unsupported Noise modifier {modifier!r}")
        digits = psk_match.group(1)
        if len(digits) > 2 or (len(digits) > 1 and digits.startswith("0")):
            raise HandshakeError(f"malformed psk modifier {modifier!r}")
        position = int(digits)
        if position > len(messages) or position in seen:
            raise HandshakeError(f"psk modifier {modifier!r} does not fit pattern {base_name!r}")
        seen.add(position)
        if position == 0:
            messages[0].insert(0, "psk")
        else:
            messages[position - 1].append("psk")
    return HandshakePattern(
        name=name,
        initiator_pre=initiator_pre,
        responder_pre=responder_pre,
        messages=tuple(tuple(message) for message in messages),
    )


@dataclass(frozen=True)
class ProtocolName:
    """A parsed ``Noise_<pattern>_<dh>_<cipher>_<hash>`` protocol name."""

    text: str
    pattern: HandshakePattern
    suite: Suite


def parse_protocol_name(text: str) -> ProtocolName:
    """Parse a full Noise protocol name; raises :class:`HandshakeError` if it is not supported."""
    if not isinstance(text, str) or len(text) > _MAX_PROTOCOL_NAME_LEN or not text.isascii():
        raise HandshakeError("Noise protocol names are ASCII strings of at most 255 characters")
    parts = text.split("_")
    if len(parts) != 5 or parts[0] != "Noise":
        raise HandshakeError(f"malformed Noise protocol name {text!r}")
    pattern = parse_pattern(parts[1])
    suite = Suite(dh=parts[2], cipher=parts[3], hash=parts[4])
    return ProtocolName(text=text, pattern=pattern, suite=suite)
