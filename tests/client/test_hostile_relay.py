"""A relay that tampers, replays, reorders or drops; a relay restarted; retries reuse ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.client.conftest import RunnerFactory
from tests.client.support import (
    RelayProcess,
    TamperingProxy,
    frame_kind,
    frame_of,
    with_frame,
)

from tigress.wallet import TransferStatus, Wallet

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TamperingProxy]:
    proxy = TamperingProxy().start()
    relay = RelayProcess(tmp_path_factory.mktemp("relay"), public_url=proxy.base_url).start()
    proxy.target = relay.base_url
    yield proxy
    proxy.stop()
    relay.stop()


@pytest.fixture
def proxy(proxied: TamperingProxy) -> Iterator[TamperingProxy]:
    yield proxied
    proxied.transform = None
    proxied.drop_responses = 0
    proxied.request_ids.clear()


def flip_last_byte(messages: list[dict[str, Any]], kinds: set[int]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        if frame_kind(message) in kinds:
            frame = bytearray(frame_of(message))
            frame[-1] ^= 0x01
            out.append(with_frame(message, bytes(frame)))
        else:
            out.append(message)
    return out


def run_until_stuck(
    make_runner: RunnerFactory, alice: Path, sent_id: str, bob: Path, received_id: str
) -> tuple[Any, Any]:
    sender = make_runner(alice).advance(sent_id)
    received = make_runner(bob).advance(received_id)
    for _ in range(8):
        if sender.status.is_terminal and received.status.is_terminal:
            break
        sender = make_runner(alice).advance(sent_id)
        received = make_runner(bob).advance(received_id)
    return sender, received


def assert_never_delivered(bob: Path) -> None:
    with Wallet.open(bob) as wallet:
        assert wallet.credentials.list() == []


def test_altered_first_frame_is_detected(
    proxy: TamperingProxy, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    proxy.transform = lambda messages: flip_last_byte(messages, {1})
    result = make_runner(alice).share("c-home-1", "echo", relay_url=proxy.base_url)
    received = make_runner(bob).receive(result.invitation_url)
    assert received.status == TransferStatus.FAILED
    assert "does not match" in received.detail
    assert_never_delivered(bob)


@pytest.mark.parametrize("kind", [3, 4])
def test_altered_data_frame_is_detected(
    proxy: TamperingProxy, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory, kind: int
) -> None:
    alice, bob = wallet_dirs
    proxy.transform = lambda messages: flip_last_byte(messages, {kind})
    result = make_runner(alice).share(
        "c-home-1", "echo", relay_url=proxy.base_url, options={"rounds": 2}
    )
    received = make_runner(bob).receive(result.invitation_url)
    sender, received = run_until_stuck(make_runner, alice, result.record.id, bob, received.id)
    victim = received if kind == 3 else sender
    assert victim.status == TransferStatus.FAILED
    assert "altered, replayed or dropped" in victim.detail
    assert sender.status != TransferStatus.FINISHED
    assert_never_delivered(bob)


def test_replayed_frame_is_detected(
    proxy: TamperingProxy, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    seen: list[dict[str, Any]] = []

    def replay(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for message in messages:
            if frame_kind(message) == 4:
                if seen:
                    # hand the sender the receiver's earlier frame again under a new seq
                    return [with_frame(message, frame_of(seen[0]))]
                seen.append(message)
        return messages

    proxy.transform = replay
    result = make_runner(alice).share(
        "c-home-1", "echo", relay_url=proxy.base_url, options={"rounds": 3}
    )
    received = make_runner(bob).receive(result.invitation_url)
    sender, received = run_until_stuck(make_runner, alice, result.record.id, bob, received.id)
    assert sender.status == TransferStatus.FAILED
    assert "altered, replayed or dropped" in sender.detail
    assert_never_delivered(bob)


@pytest.mark.parametrize("mode", ["drop", "reorder"])
def test_dropped_or_reordered_frames_are_detected(
    proxy: TamperingProxy, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory, mode: str
) -> None:
    """The relay withholds the sender's data frame #1; when #2 (a cancel) arrives, it hands over
    #2 alone (drop) or #2 before #1 (reorder).  The receiver must stop, never deliver."""
    alice, bob = wallet_dirs
    held: list[dict[str, Any]] = []

    def withhold(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for message in messages:
            if frame_kind(message) == 3 and frame_of(message)[11:15] == b"\0\0\0\1":
                held.append(message)
                continue
            out.append(message)
        if mode == "reorder" and held and out:
            first, later = held[0], out[-1]
            out = [
                with_frame(first, frame_of(later)),
                with_frame(later, frame_of(first)),
            ]
        return out

    proxy.transform = withhold
    result = make_runner(alice).share(
        "c-home-1", "echo", relay_url=proxy.base_url, options={"rounds": 2}
    )
    received = make_runner(bob).receive(result.invitation_url)
    make_runner(alice).advance(result.record.id)  # writes pong #1, which the relay withholds
    assert make_runner(bob).advance(received.id).status == TransferStatus.PENDING
    make_runner(alice).cancel(result.record.id)  # writes cancel as data frame #2
    received = make_runner(bob).advance(received.id)
    assert received.status == TransferStatus.FAILED
    assert "altered, replayed or dropped" in received.detail
    assert_never_delivered(bob)


def test_lost_answers_are_retried_with_the_same_request_id(
    proxy: TamperingProxy, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    proxy.drop_responses = 2  # the create and the first frame: acted on, answers lost
    result = make_runner(alice).share("c-home-1", "echo", relay_url=proxy.base_url)
    ids = [request_id for _, request_id in proxy.request_ids]
    assert ids[0] == ids[1] and ids[2] == ids[3] and len(ids) == 4
    received = make_runner(bob).receive(result.invitation_url)
    assert received.status == TransferStatus.FINISHED, received.detail
    assert make_runner(alice).advance(result.record.id).status == TransferStatus.FINISHED


def test_transfer_survives_a_relay_restart(
    tmp_path: Path, wallet_dirs: tuple[Path, Path], make_runner: RunnerFactory
) -> None:
    alice, bob = wallet_dirs
    relay = RelayProcess(tmp_path).start()
    try:
        result = make_runner(alice).share(
            "c-home-1", "echo", relay_url=relay.base_url, options={"rounds": 1}
        )
        received = make_runner(bob).receive(result.invitation_url)
        relay.kill()
        # Offline: the sender keeps its state and says why it waits.
        offline = make_runner(alice).advance(result.record.id)
        assert offline.status == TransferStatus.PENDING
        assert "could not be reached" in offline.detail
        relay.start()
        sender, received = run_until_stuck(make_runner, alice, result.record.id, bob, received.id)
        assert received.status == TransferStatus.FINISHED, received.detail
        assert sender.status == TransferStatus.FINISHED, sender.detail
    finally:
        relay.stop()
