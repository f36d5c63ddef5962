"""QR rendering: the PNG decodes back to the exact invitation URL; SVG and terminal are sane."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET

import pytest
import segno
import zxingcpp
from PIL import Image

from tigress.protocol.invitation import DirectInvitation, RelayInvitation, Vertical
from tigress.protocol.qr import ERROR_CORRECTION, qr_png, qr_svg, qr_terminal

SECRET = bytes(range(32))
RELAY_URL = RelayInvitation.create(
    "https://relay.example:8443", "2bba630e-519b-41ec-bf63-0242ac130002", Vertical.CAR, SECRET
).to_url()
DIRECT_URL = DirectInvitation.create(
    "fe80::1", 9443, "7d444840-9dc0-41c3-a8d7-0b8e1ab2ce52", Vertical.HOME, SECRET
).to_url()


def _decode_png(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png))
    image.load()
    return [result.text for result in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize("url", [RELAY_URL, DIRECT_URL], ids=["relay", "direct"])
def test_png_decodes_to_the_identical_url(url: str) -> None:
    png = qr_png(url)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert _decode_png(png) == [url]


def test_png_scale_sets_pixels_per_module() -> None:
    symbol = segno.make_qr(RELAY_URL, error=ERROR_CORRECTION, boost_error=False)
    width, height = symbol.symbol_size(scale=1)  # includes the quiet zone
    image = Image.open(io.BytesIO(qr_png(RELAY_URL, scale=3)))
    assert image.size == (width * 3, height * 3)
    assert _decode_png(qr_png(RELAY_URL, scale=3)) == [RELAY_URL]


def test_error_correction_is_m_and_quiet_zone_is_kept() -> None:
    symbol = segno.make_qr(RELAY_URL, error=ERROR_CORRECTION, boost_error=False)
    assert symbol.error == "M"
    # The symbol's corners are light: the 4-module quiet zone is present in the PNG.
    image = Image.open(io.BytesIO(qr_png(RELAY_URL, scale=1))).convert("L")
    for x in range(4):
        for y in range(image.size[1]):
            assert image.getpixel((x, y)) == 255
            assert image.getpixel((image.size[0] - 1 - x, y)) == 255


def test_svg_is_well_formed_xml() -> None:
    svg = qr_svg(DIRECT_URL, scale=4)
    assert "<svg" in svg
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    width, _ = segno.make_qr(DIRECT_URL, error="M", boost_error=False).symbol_size(scale=4)
    assert root.get("width") == str(width)


def test_terminal_has_one_line_per_two_module_rows() -> None:
    symbol = segno.make_qr(RELAY_URL, error=ERROR_CORRECTION, boost_error=False)
    _, height = symbol.symbol_size(scale=1)
    lines = qr_terminal(RELAY_URL).splitlines()
    assert len(lines) == math.ceil(height / 2)
    assert all(len(line) == height for line in lines)
    assert set("".join(lines)) <= {" ", "\u2580", "\u2584", "\u2588"}


def test_terminal_output_differs_between_urls() -> None:
    assert qr_terminal(RELAY_URL) != qr_terminal(DIRECT_URL)


@pytest.mark.parametrize("scale", [0, -1, 65, True, 2.0])
def test_bad_scale_is_rejected(scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        qr_png(RELAY_URL, scale=scale)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale"):
        qr_svg(RELAY_URL, scale=scale)  # type: ignore[arg-type]


def test_empty_text_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        qr_terminal("")


def test_longest_valid_invitation_fits_and_decodes() -> None:
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters, the maximum
    url = RelayInvitation.create(
        f"https://{host}:65535", "2bba630e-519b-41ec-bf63-0242ac130002", Vertical.GENERAL, SECRET
    ).to_url()
    assert _decode_png(qr_png(url, scale=4)) == [url]


def test_text_beyond_qr_capacity_raises_value_error() -> None:
    with pytest.raises(ValueError):
        qr_png("x" * 3000)
