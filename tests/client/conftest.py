"""Fixtures: a relay process, two wallets, runners re-created from disk at will."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.client.support import EchoSpec, RelayProcess

from tigress.client.runner import TransferRunner
from tigress.client.trust import RelayTrust
from tigress.wallet import Credential, CredentialOrigin, Wallet, WalletView


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    process = RelayProcess(tmp_path_factory.mktemp("relay")).start()
    yield process
    process.stop()


def add_echo_credential(wallet: WalletView, secret: str = "door-secret-0123456789") -> str:
    wallet.credentials.add(
        Credential(
            id="c-home-1",
            vertical="echo",
            format="tigress.test.echo",
            label="Front door",
            origin=CredentialOrigin.OWNED,
            data={"secret": secret},
        )
    )
    return "c-home-1"


@pytest.fixture
def wallet_dirs(tmp_path: Path) -> tuple[Path, Path]:
    sender, receiver = tmp_path / "alice", tmp_path / "bob"
    with Wallet.create(sender) as wallet:
        add_echo_credential(wallet)
    Wallet.create(receiver).close()
    return sender, receiver


RunnerFactory = Callable[..., TransferRunner]


@pytest.fixture
def make_runner() -> Iterator[RunnerFactory]:
    """A fresh runner on a freshly opened wallet, as a new process would have."""
    opened: list[tuple[Wallet, TransferRunner]] = []

    def make(directory: Path, *, spec: EchoSpec | None = None) -> TransferRunner:
        wallet = Wallet.open(directory)
        runner = TransferRunner(wallet, {"echo": spec or EchoSpec()}, trust=RelayTrust())
        opened.append((wallet, runner))
        return runner

    yield make
    for wallet, runner in opened:
        runner.close()
        wallet.close()
