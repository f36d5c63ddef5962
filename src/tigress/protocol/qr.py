"""QR codes for invitations (terminal text, PNG, SVG), drawn with segno.

Error correction is fixed at level M (about 15% of the symbol may be damaged): a typical share
URL (about 110 characters with a 43-character secret) fits a version-7 symbol, easy for a phone
camera at arm's length. The quiet zone (four modules) is kept, as scanners need it to find the
symbol. Text too long for any QR version raises ``segno.DataOverflowError`` (a ``ValueError``);
the longest valid invitation (a 253-character host, about 370 characters in all) fits easily.
"""

from __future__ import annotations

import io

import segno

__all__ = ["ERROR_CORRECTION", "qr_png", "qr_svg", "qr_terminal"]

ERROR_CORRECTION = "M"
_MAX_SCALE = 64


def _make(text: str) -> segno.QRCode:
    if not isinstance(text, str) or not text:
        raise ValueError("QR content must be a non-empty string")
    # boost_error=False keeps the level at exactly M so output does not vary with the length.
    return segno.make_qr(text, error=ERROR_CORRECTION, boost_error=False)


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= _MAX_SCALE:
        raise ValueError(f"scale must be an integer from 1 to {_MAX_SCALE}")
    return scale


def qr_terminal(text: str) -> str:
    """The QR code as text for a terminal: two module rows per line with half-block characters."""
    out = io.StringIO()
    _make(text).terminal(out=out, compact=True)
    return out.getvalue()


def qr_png(text: str, *, scale: int = 8) -> bytes:
    """The QR code as a PNG image, ``scale`` pixels per module."""
    out = io.BytesIO()
    _make(text).save(out, kind="png", scale=_check_scale(scale))
    return out.getvalue()


def qr_svg(text: str, *, scale: int = 8) -> str:
    """The QR code as a standalone SVG document, ``scale`` user units per module."""
    out = io.BytesIO()
    _make(text).save(out, kind="svg", scale=_check_scale(scale), xmldecl=True, encoding="utf-8")
    return out.getvalue().decode("utf-8")
