"""The transfer runner over a real relay process: every step from a freshly opened wallet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.client.conftest import RunnerFactory
from tests.client.support import EchoSpec, RelayProcess

from tigress.wallet import TransferRecord, TransferStatus, Wallet

pytestmark = pytest.mark.timeout(120)


def share(
    make_runner: RunnerFactory, sender_dir: Path, relay: RelayProcess, **kwargs: object
) -> tuple[str, str]:
    result = make_runner(sender_dir).share(
        "c-home-1",
        "echo",
        relay_url=relay.base_url,
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.record.status == TransferStatus.PENDING
    assert "#" in result.invitation_url
    assert "#" not in (result.record.invitation_url or "")
    return result.record.id, result.invitation_url


def alternate(
    make_runner: RunnerFactory, alice: Path, sent_id: str, bob: Path, received_id: str
) -> tuple[TransferRecord, TransferRecord]:
    """Sender and receiver take turns, each in a fresh runner, until both stop progressing."""
    sender = make_runner(alice).advance(sent_id)
    received = make_runner(bob).advance(received_id)
    for _ in range(12):
        if sender.status.is_terminal and received.status != TransferStatus.PENDING:
            break
        sender = make_runner(alice).advance(sent_id)
        received = make_runner(bob).advance(received_id)
    return sender, received


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


def test_pin_right_after_being_asked(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay, pin="4711", options={"rounds": 1})
    received = make_runner(bob).receive(url)
    assert received.status == TransferStatus.WAITING_FOR_PIN
    assert "PIN" in received.detail
    received = make_runner(bob).advance(received.id, pin="4711")  # pin start in handshake 2
    assert received.status == TransferStatus.PENDING
    assert make_runner(alice).advance(sent_id).status == TransferStatus.PENDING  # pin reply
    received = make_runner(bob).advance(received.id)  # confirm
    assert make_runner(alice).advance(sent_id).status == TransferStatus.PENDING  # opening
    received = make_runner(bob).advance(received.id)  # ping 1
    assert make_runner(alice).advance(sent_id).status == TransferStatus.PENDING  # final
    received = make_runner(bob).advance(received.id)
    assert received.status == TransferStatus.FINISHED, received.detail
    assert make_runner(alice).advance(sent_id).status == TransferStatus.FINISHED


def test_wrong_pin_then_right_pin(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay, pin="4711", pin_attempts=3)
    received = make_runner(bob).receive(url, pin="0000")
    assert make_runner(alice).advance(sent_id).status == TransferStatus.PENDING
    received = make_runner(bob).advance(received.id)
    assert received.status == TransferStatus.WAITING_FOR_PIN
    assert "wrong" in received.detail and "2 attempt" in received.detail
    received = make_runner(bob).advance(received.id, pin="4711")
    sender, received = alternate(make_runner, alice, sent_id, bob, received.id)
    assert received.status == TransferStatus.FINISHED, received.detail
    assert sender.status == TransferStatus.FINISHED, sender.detail


def test_pin_attempts_exhausted_voids_the_share(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay, pin="4711", pin_attempts=2)
    received = make_runner(bob).receive(url, pin="1111")
    for guess in ("2222", None):
        make_runner(alice).advance(sent_id)
        received = make_runner(bob).advance(received.id)
        if guess is not None:
            assert received.status == TransferStatus.WAITING_FOR_PIN
            received = make_runner(bob).advance(received.id, pin=guess)
    assert received.status == TransferStatus.FAILED
    assert "too many times" in received.detail
    sender = make_runner(alice).advance(sent_id)
    assert sender.status == TransferStatus.CANCELLED
    assert sender.peer_code == "pin-attempts-exceeded"
    assert "PIN" in sender.detail
    assert sender.session_state is None and received.session_state is None


def test_second_receiver_is_refused_with_a_sentence(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory, tmp_path: Path
) -> None:
    alice, bob = wallet_dirs
    _, url = share(make_runner, alice, relay, options={"rounds": 1})
    first = make_runner(bob).receive(url)
    assert first.status == TransferStatus.PENDING
    eve = tmp_path / "eve"
    Wallet.create(eve).close()
    second = make_runner(eve).receive(url)
    assert second.status == TransferStatus.FAILED
    assert second.detail == (
        "Another device has already accepted this share; ask the sender for a new invitation."
    )


@pytest.mark.parametrize("canceller", ["sender", "receiver"])
@pytest.mark.parametrize("step", [0, 1, 2, 3])
def test_cancel_from_either_side_at_every_step(
    relay: RelayProcess,
    wallet_dirs: tuple[Path, Path],
    make_runner: RunnerFactory,
    canceller: str,
    step: int,
) -> None:
    """Steps: 0 before the receiver opened the link; 1 after its first reply; 2, 3 later."""
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay, options={"rounds": 2})
    received_id = None
    for index in range(step):
        if index == 0:
            received_id = make_runner(bob).receive(url).id
        elif index % 2 == 1:
            make_runner(alice).advance(sent_id)
        else:
            assert received_id is not None
            make_runner(bob).advance(received_id)
    if canceller == "sender":
        cancelled = make_runner(alice).cancel(sent_id)
    else:
        if received_id is None:
            received_id = make_runner(bob).receive(url).id
        cancelled = make_runner(bob).cancel(received_id)
    assert cancelled.status == TransferStatus.CANCELLED
    assert cancelled.detail == "You cancelled the transfer."
    assert cancelled.session_state is None
    # The other side learns it, whichever step it is at.
    if canceller == "sender":
        other = (
            make_runner(bob).receive(url)
            if received_id is None
            else make_runner(bob).advance(received_id)
        )
    else:
        other = make_runner(alice).advance(sent_id)
    assert other.status in (TransferStatus.CANCELLED, TransferStatus.FAILED), other.detail
    assert "cancel" in other.detail or "no longer exists" in other.detail
    assert other.session_state is None


def test_receiver_refusal_reaches_the_sender(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay)
    received = make_runner(bob, spec=EchoSpec(refuse=True)).receive(url)
    assert received.status == TransferStatus.CANCELLED
    assert received.detail == "This test receiver refuses every credential."
    sender = make_runner(alice).advance(sent_id)
    assert sender.status == TransferStatus.CANCELLED
    assert sender.peer_code == "declined"


def test_local_expiry_ends_the_transfer(
    relay: RelayProcess, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    sent_id, url = share(make_runner, alice, relay, expires=timedelta(minutes=2))
    runner = make_runner(alice)
    future = runner._clock() + timedelta(minutes=3)
    runner._clock = lambda: future
    expired = runner.advance(sent_id)
    assert expired.status == TransferStatus.FAILED
    assert expired.detail == "The share expired before the transfer completed."
    # The sender deleted the mailbox: a receiver arriving late is told plainly.
    late = make_runner(bob).receive(url)
    assert late.status == TransferStatus.FAILED
    assert "expired" in late.detail or "no longer exists" in late.detail
