"""Fixtures for CLI tests: a relay process, a hotel entity, and a ``tigress`` invoker."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.client.support import RelayProcess

from tigress.cli import main
from tigress.verticals.hotel import HotelConfig, hotel_server_in_thread

HOTEL_ADMIN = "front-desk-token-for-tests"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    process = RelayProcess(tmp_path_factory.mktemp("relay")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def hotel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("hotel")
    config = HotelConfig(directory / "hotel.db", name="Test Hotel", admin_token=HOTEL_ADMIN)
    with hotel_server_in_thread(config) as url:
        yield url


@dataclass
class Run:
    result: Result

    @property
    def code(self) -> int:
        return self.result.exit_code

    @property
    def out(self) -> str:
        return self.result.stdout

    @property
    def err(self) -> str:
        return self.result.stderr

    def json(self) -> Any:
        return json.loads(self.result.stdout)


Tigress = Callable[..., Run]


@pytest.fixture
def tigress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tigress:
    """``tigress(wallet_name, *args, env=...)``: the CLI in-process on a wallet under tmp_path."""
    for name in ("TIGRESS_WALLET", "TIGRESS_PASSPHRASE", "TIGRESS_RELAY", "TIGRESS_TRUSTED_RELAYS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(wallet: str | None, *args: str, env: dict[str, str] | None = None) -> Run:
        prefix = ["--wallet", str(tmp_path / wallet)] if wallet else []
        result = runner.invoke(main, [*prefix, *args], env=env, catch_exceptions=False)
        return Run(result)

    return invoke
