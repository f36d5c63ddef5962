"""The transfer runner over a real relay process: every step from a freshly opened wallet."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.client.conftest import RunnerFactory
from tests.client.support import EchoSpec, RelayProcess

from tigress.wallet import TransferStatus, Wallet

pytestmark = pytest.mark.timeout(120)


def share(make_runner: RunnerFactory, sender_dir: Path, relay: RelayProcess, **kwargs: object) -> tuple[str, str]:
    result = make_runner(sender_dir).share(
        "c-home-1", "echo", relay_url=relay.base_url, **kwargs  # type: ignore[arg-type]
    )
    assert result.record.status == TransferStatus.PENDING
    assert "#" in result.invitation_url
    assert "#" not in (result.record.invitation_url or "")
    return result.record.id, result.invitation_url


@pytest.mark.parametrize("rounds", [0, 2])
def test_transfer_alternating_processes(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory, rounds: int
) -> None:
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay, options={"rounds": rounds})
    received = make_runner(bob).receive(url)
    for _ in range(rounds):
        # Each side runs in a "new process" and handles exactly what the other left.
        sender = make_runner(alice).advance(sent_id)
        assert sender.status == TransferStatus.PENDING
        received = make_runner(bob).advance(received.id)
    assert received.status == TransferStatus.FINISHED, received.detail
    assert received.session_state is None
    assert received.vertical == "echo"
    sender = make_runner(alice).advance(sent_id)
    assert sender.status == TransferStatus.FINISHED, sender.detail
    assert sender.session_state is None
    with Wallet.open(bob) as wallet:
        credential = wallet.credentials.get(received.result_credential_id or "")
        assert credential.data == {"secret": "door-secret-0123456789"}
    # The sender deleted the mailbox after the receiver's done.
    again = make_runner(bob)
    assert again.advance(received.id).status == TransferStatus.FINISHED
