"""The hand-written OpenAPI 3.1 document is valid, and the live relay conforms to it
(schemathesis: no 5xx, no undocumented status, no schema or content-type violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.relay.conftest import LiveRelay

from tigress.relay.config import RelayConfig

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
schema = schemathesis.openapi.from_path(DOCUMENT)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_document_is_openapi_3_1_and_covers_every_route() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/v1/m",
        "/v1/m/{mailboxId}",
        "/v1/m/{mailboxId}/events",
        "/.well-known/tigress",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    # schemathesis resolves every reference and builds every operation, or raises.
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11


@pytest.fixture(scope="module")
def live_relay(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("openapi")
    relay = LiveRelay(
        RelayConfig(
            store=f"sqlite:///{directory / 'relay.db'}",
            public_url="https://relay.test",
            rate_limit_per_second=0,
            long_poll_max_seconds=60,
        )
    ).start()
    yield relay
    relay.stop()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_live_relay_conforms(case: Any, live_relay: LiveRelay) -> None:
    case.call_and_validate(base_url=live_relay.base_url, checks=CHECKS, timeout=30)
