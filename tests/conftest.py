"""Shared test configuration.

Tests that need something outside the repository (the shared Noise vectors, a PostgreSQL server)
skip with a clear reason when it is absent.  With ``TIGRESS_REQUIRE_ALL=1`` (set by ``.ci/run``)
such a skip becomes a failure, so CI always exercises them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_VECTORS = PROJECT_ROOT.parent / "shared" / "vectors"


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when CI demands every external resource be present."""
    if os.environ.get("TIGRESS_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (TIGRESS_REQUIRE_ALL=1 turns this skip into a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_vectors_dir() -> Path:
    if not SHARED_VECTORS.is_dir():
        skip_or_fail(f"shared test vectors not found at {SHARED_VECTORS}")
    return SHARED_VECTORS


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of a reachable PostgreSQL server, from TIGRESS_TEST_POSTGRES_DSN."""
    dsn = os.environ.get("TIGRESS_TEST_POSTGRES_DSN")
    if not dsn:
        skip_or_fail("PostgreSQL not configured: set TIGRESS_TEST_POSTGRES_DSN")
    assert dsn is not None
    return dsn
