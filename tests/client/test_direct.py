"""Direct transfer on loopback: the sender listens, the receiver connects; no relay."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest
from tests.client.conftest import RunnerFactory

from tigress.client.direct import (
    MAX_MESSAGE_SIZE,
    DirectConnection,
    DirectError,
    DirectListener,
    connect,
)
from tigress.client.runner import DirectOptions
from tigress.wallet import TransferRecord, TransferStatus, Wallet

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("pin", [None, "2468"])
def test_direct_transfer_on_loopback(
    wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory, pin: str | None
) -> None:
    alice, bob = wallet_dirs
    sender_runner = make_runner(alice)
    result = sender_runner.share(
        "c-home-1", "echo", direct=DirectOptions(), pin=pin, options={"rounds": 2}
    )
    assert result.invitation_url.startswith("tigress+direct://127.0.0.1:")
    outcome: list[TransferRecord] = []
    thread = threading.Thread(
        target=lambda: outcome.append(sender_runner.complete(result.record.id, timeout=20))
    )
    thread.start()
    # A stray connection without the hello must not consume the share.
    with socket.create_connection(("127.0.0.1", result.record.direct_port or 0)) as stray:
        stray.sendall(struct.pack(">I", 4) + b"nope")
    receiver_runner = make_runner(bob)
    received = receiver_runner.receive(result.invitation_url, pin=pin, wait=5)
    received = receiver_runner.complete(received.id, timeout=20)
    thread.join(timeout=30)
    assert received.status == TransferStatus.FINISHED, received.detail
    assert outcome and outcome[0].status == TransferStatus.FINISHED, outcome[0].detail
    with Wallet.open(bob) as wallet:
        assert wallet.credentials.get(received.result_credential_id or "").data == {
            "secret": "door-secret-0123456789"
        }


def test_direct_transfer_lost_with_the_process(
    wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, _ = wallet_dirs
    result = make_runner(alice).share("c-home-1", "echo", direct=DirectOptions())
    later = make_runner(alice).advance(result.record.id)  # a new process: no listener
    assert later.status == TransferStatus.FAILED
    assert "direct connection" in later.detail


def test_framing_rejects_oversized_and_truncated_frames() -> None:
    channel = b"tigress-direct:test"
    listener = DirectListener("127.0.0.1", 0, channel_id=channel)
    accepted: list[DirectConnection] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept(timeout=5)))
    thread.start()
    client = connect("127.0.0.1", listener.port, channel_id=channel)
    thread.join()
    server = accepted[0]
    with pytest.raises(DirectError):
        client.send(b"x" * (MAX_MESSAGE_SIZE + 1))
    client._sock.sendall(struct.pack(">I", MAX_MESSAGE_SIZE + 1))
    with pytest.raises(DirectError, match="limit"):
        server.receive(timeout=2)
    client.close()
    server.close()
    listener.close()
