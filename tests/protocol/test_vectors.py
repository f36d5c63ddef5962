"""The project's own known-answer vectors (tests/vectors/tigress-channel-v1.json) still hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scripts.make_vectors import OUTPUT, run_case

DOCUMENT: dict[str, Any] = json.loads(Path(OUTPUT).read_text())


@pytest.mark.parametrize("case", DOCUMENT["cases"], ids=lambda c: c["name"])
def test_channel_vector_replays_byte_exact(case: dict[str, Any]) -> None:
    assert run_case(case) == case["frames"]


def test_vectors_cover_every_frame_kind() -> None:
    kinds = {bytes.fromhex(f["frame"])[1] for case in DOCUMENT["cases"] for f in case["frames"]}
    assert kinds == {1, 2, 3, 4}
