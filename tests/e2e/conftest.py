"""Fixtures: a relay process per test module (restartable), devices with separate wallets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.client.support import RelayProcess
from tests.e2e.support import Device


@pytest.fixture
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    process = RelayProcess(tmp_path_factory.mktemp("relay")).start()
    yield process
    process.stop()


@pytest.fixture
def device(tmp_path: Path) -> Callable[[str], Device]:
    def make(name: str) -> Device:
        phone = Device(tmp_path, name)
        phone.ok("wallet", "init")
        return phone

    return make
