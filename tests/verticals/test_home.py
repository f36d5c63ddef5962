from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.verticals.memory_wallet import MemoryWallet
from tests.verticals.transfer import run_transfer

from tigress.protocol.messages import ProvisioningInfo
from tigress.verticals.base import VerticalError
from tigress.verticals.common import ContentError
from tigress.verticals.home import (
    HOME_KEY_FORMAT,
    HomeKey,
    HomeLock,
    HomeSpec,
    home_response,
    rekey_home,
    setup_home,
    unlock_home,
)
from tigress.wallet.api import CredentialOrigin


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "front-door.json"


def test_copy_transfer_then_both_copies_open(lock_path: Path) -> None:
    owner, friend = MemoryWallet(), MemoryWallet()
    original = setup_home(owner, lock_path, "Front door")
    assert original.origin is CredentialOrigin.OWNED

    outcome = run_transfer(HomeSpec(), owner, friend, original.id)

    assert outcome.receiver_done and outcome.sender_done
    assert outcome.messages == [HOME_KEY_FORMAT]
    assert outcome.credential_id is not None
    copy = friend.credentials.get(outcome.credential_id)
    assert copy.origin is CredentialOrigin.RECEIVED
    assert copy.format == HOME_KEY_FORMAT and copy.label == "Front door"
    # Indistinguishable: the same key material, the same lock.
    assert dict(copy.data) == dict(owner.credentials.get(original.id).data)
    assert unlock_home(friend, copy, lock_path).opened
    assert unlock_home(owner, original, lock_path).opened


def test_rotation_revokes_every_copy(lock_path: Path) -> None:
    owner, friend = MemoryWallet(), MemoryWallet()
    original = setup_home(owner, lock_path, "Front door")
    outcome = run_transfer(HomeSpec(), owner, friend, original.id)
    assert outcome.credential_id is not None
    copy = friend.credentials.get(outcome.credential_id)

    renewed = rekey_home(owner, original, lock_path)

    refused = unlock_home(friend, copy, lock_path)
    assert not refused.opened and "changed" in refused.reason
    assert not unlock_home(owner, original, lock_path).opened  # the stale object
    assert unlock_home(owner, renewed, lock_path).opened
    assert HomeLock.load(lock_path).generation == 2


def test_lock_refuses_replayed_nonce_and_wrong_key(lock_path: Path) -> None:
    lock = HomeLock.create(lock_path, "Shed")
    key = lock.key_for_owner()
    nonce = lock.challenge()
    answer = home_response(key, lock.lock_id, nonce)
    assert lock.verify(nonce, answer)
    assert not lock.verify(nonce, answer), "a nonce is single-use"
    nonce2 = lock.challenge()
    assert not lock.verify(nonce2, home_response(bytes(32), lock.lock_id, nonce2))
    assert not lock.verify(nonce2, home_response(key, lock.lock_id, nonce2)), "spent by failure"
    assert not lock.verify(b"\x00" * 32, home_response(key, lock.lock_id, b"\x00" * 32))
    assert not lock.verify(b"short", b"")
    nonce3 = lock.challenge()
    assert not lock.verify(nonce3, home_response(key, "other-lock", nonce3))


def test_expired_challenge_refused(lock_path: Path) -> None:
    now = [1_000_000]
    lock = HomeLock.create(lock_path, "Gate", clock=lambda: now[0])
    nonce = lock.challenge()
    now[0] += 121
    assert not lock.verify(nonce, home_response(lock.key_for_owner(), lock.lock_id, nonce))


def test_pending_nonces_are_bounded(lock_path: Path) -> None:
    lock = HomeLock.create(lock_path, "Gate")
    nonces = [lock.challenge() for _ in range(40)]
    state = json.loads(lock_path.read_text())
    assert len(state["pending"]) == 32
    key = lock.key_for_owner()
    assert not lock.verify(nonces[0], home_response(key, lock.lock_id, nonces[0]))
    assert lock.verify(nonces[-1], home_response(key, lock.lock_id, nonces[-1]))


def test_lock_state_file_is_private_and_not_overwritten(lock_path: Path) -> None:
    HomeLock.create(lock_path, "Gate")
    assert lock_path.stat().st_mode & 0o077 == 0
    with pytest.raises(ContentError) as info:
        HomeLock.create(lock_path, "Gate")
    assert info.value.code == "already-exists"


def test_unlock_with_credential_for_another_lock(tmp_path: Path) -> None:
    wallet = MemoryWallet()
    credential = setup_home(wallet, tmp_path / "a.json", "A")
    HomeLock.create(tmp_path / "b.json", "B")
    result = unlock_home(wallet, credential, tmp_path / "b.json")
    assert not result.opened and "different lock" in result.reason


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({}, "lacks field"),
        ({"lock_id": "a", "label": "x", "key": "A" * 43, "extra": 1}, "unknown field"),
        ({"lock_id": "a b", "label": "x", "key": "A" * 43}, "lock_id"),
        ({"lock_id": "a", "label": "", "key": "A" * 43}, "label"),
        ({"lock_id": "a", "label": "x" * 129, "key": "A" * 43}, "label"),
        ({"lock_id": "a", "label": "x\n", "key": "A" * 43}, "control"),
        ({"lock_id": "a", "label": "x", "key": "A" * 42}, "key"),
        ({"lock_id": "a", "label": "x", "key": "A" * 44}, "32 bytes"),
        ({"lock_id": "a", "label": "x", "key": "A" * 42 + "B"}, "canonical"),
        ({"lock_id": "a", "label": "x", "key": "A" * 42 + "A="}, "base64url"),
        ({"lock_id": "a", "label": "x", "key": 7}, "base64url"),
        ({"lock_id": "a", "label": "x", "key": "A" * 100_000}, "at most"),
        ({"lock_id": ["a"], "label": "x", "key": "A" * 43}, "lock_id"),
    ],
)
def test_home_key_parser_rejects(content: dict[str, object], message: str) -> None:
    with pytest.raises(ContentError, match=message) as info:
        HomeKey.parse(content)
    assert info.value.code == "malformed"


def test_receiver_rejects_malformed_opening_and_stores_nothing() -> None:
    wallet = MemoryWallet()
    flow = HomeSpec().receiver_flow(wallet)
    with pytest.raises(VerticalError):
        flow.on_message(ProvisioningInfo(HOME_KEY_FORMAT, {"lock_id": "x"}))
    with pytest.raises(VerticalError) as info:
        flow.on_message(ProvisioningInfo("tigress.car.key-request.v1", {}))
    assert info.value.code == "unexpected-message"
    assert wallet.credentials.list() == []


def test_receiver_refuses_second_opening(lock_path: Path) -> None:
    owner, friend = MemoryWallet(), MemoryWallet()
    credential = setup_home(owner, lock_path, "Door")
    opening = HomeSpec().sender_flow(owner, credential.id, {}).opening()
    flow = HomeSpec().receiver_flow(friend)
    assert flow.on_message(opening).finished
    with pytest.raises(VerticalError, match="did not expect"):
        flow.on_message(opening)
    assert len(friend.credentials.list()) == 1


def test_restore_rejects_foreign_state() -> None:
    spec = HomeSpec()
    with pytest.raises(ContentError):
        spec.restore_receiver_flow(
            MemoryWallet(), {"v": 1, "vertical": "car", "role": "receiver", "credential_id": None}
        )
    with pytest.raises(ContentError):
        spec.restore_sender_flow(MemoryWallet(), {"v": 1, "vertical": "home", "role": "sender"})


@pytest.mark.parametrize(
    "state",
    [
        "[]",
        "{",
        '{"v": 2}',
        "NaN",
        '{"v": 1, "lock_id": "a", "label": "l", "key": "' + "A" * 43 + '", "created": 1, '
        '"generation": 1, "pending": [["x", 1]]}',
        '{"v": 1, "lock_id": "a", "label": "l", "key": "' + "A" * 43 + '", "created": -1, '
        '"generation": 1, "pending": []}',
    ],
)
def test_lock_state_parser_rejects(tmp_path: Path, state: str) -> None:
    path = tmp_path / "lock.json"
    path.write_text(state)
    with pytest.raises(ContentError):
        HomeLock.load(path)


def test_missing_lock_file(tmp_path: Path) -> None:
    with pytest.raises(ContentError) as info:
        HomeLock.load(tmp_path / "none.json")
    assert info.value.code == "not-found"


@given(
    st.dictionaries(
        st.text(max_size=10), st.one_of(st.text(max_size=60), st.integers(), st.none()), max_size=5
    )
)
def test_home_key_parser_never_raises_anything_else(content: dict[str, object]) -> None:
    try:
        key = HomeKey.parse(content)
    except ContentError:
        return
    assert HomeKey.parse(key.to_content()) == key


@given(
    st.binary(min_size=32, max_size=32),
    st.text(min_size=1, max_size=128).filter(
        lambda s: all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s)
    ),
)
def test_home_key_round_trip(key: bytes, label: str) -> None:
    original = HomeKey("lock-1", label, key)
    assert HomeKey.parse(original.to_content()) == original
