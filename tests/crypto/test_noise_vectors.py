"""Known-answer tests: the Noise engine against the cacophony test vectors (byte-exact).

Source: ``../shared/vectors/noise-cacophony.json`` (cacophony project, public domain; see its
README). Each vector gives both parties' prologue, PSKs, static keys, remote static keys known
in advance (``init_remote_static`` / ``resp_remote_static``) and ephemeral keys, then six
messages. The first ``len(pattern.messages)`` are handshake messages; the rest are transport
messages through the cipher states from ``split()``. Transport direction continues to alternate
after the handshake (message i goes initiator -> responder when i is even); in one-way patterns
every message goes initiator -> responder.

All 944 vectors are parametrised. Every one whose pattern and suite this engine supports runs;
anything unsupported is skipped with an explicit reason (never silently dropped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tigress.crypto.errors import HandshakeError
from tigress.crypto.noise import CipherState, HandshakeState, parse_protocol_name

VECTOR_FILE = "noise-cacophony.json"
# Resolved at collection time so each vector becomes its own test id; when the folder is
# missing, a single placeholder test reports it through the shared_vectors_dir fixture.
_LOCAL_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / VECTOR_FILE


def _load_vectors() -> list[dict[str, Any]]:
    if not _LOCAL_VECTORS.is_file():
        return []
    vectors: list[dict[str, Any]] = json.loads(_LOCAL_VECTORS.read_text())["vectors"]
    return vectors


VECTORS = _load_vectors()


def _vector_id(vector: dict[str, Any]) -> str:
    return str(vector["protocol_name"])


def _unsupported_reason(protocol_name: str) -> str | None:
    try:
        parse_protocol_name(protocol_name)
    except HandshakeError as exc:
        return f"unsupported by tigress.crypto.noise: {exc}"
    return None


def _party(vector: dict[str, Any], prefix: str, *, initiator: bool) -> HandshakeState:
    def optional(name: str) -> bytes | None:
        value = vector.get(f"{prefix}_{name}")
        return None if value is None else bytes.fromhex(value)

    return HandshakeState(
        vector["protocol_name"],
        initiator=initiator,
        prologue=bytes.fromhex(vector[f"{prefix}_prologue"]),
        psks=[bytes.fromhex(psk) for psk in vector.get(f"{prefix}_psks", [])],
        s=optional("static"),
        e=optional("ephemeral"),
        rs=optional("remote_static"),
    )


def run_vector(vector: dict[str, Any]) -> None:
    """Replay one vector through both parties, checking every byte both ways."""
    initiator = _party(vector, "init", initiator=True)
    responder = _party(vector, "resp", initiator=False)
    pattern = parse_protocol_name(vector["protocol_name"]).pattern
    handshake_len = len(pattern.messages)
    transports: tuple[tuple[CipherState, CipherState], tuple[CipherState, CipherState]] | None
    transports = None
    for index, message in enumerate(vector["messages"]):
        payload = bytes.fromhex(message["payload"])
        expected = bytes.fromhex(message["ciphertext"])
        from_initiator = pattern.one_way or index % 2 == 0
        if index < handshake_len:
            sender, receiver = (initiator, responder) if from_initiator else (responder, initiator)
            assert sender.write_message(payload) == expected, f"message {index} (write)"
            assert receiver.read_message(expected) == payload, f"message {index} (read)"
            if index == handshake_len - 1:
                assert initiator.complete
                assert responder.complete
                expected_hash = bytes.fromhex(vector["handshake_hash"])
                assert initiator.handshake_hash == expected_hash
                assert responder.handshake_hash == expected_hash
                transports = (initiator.split(), responder.split())
            continue
        assert transports is not None
        (init_send, init_recv), (resp_send, resp_recv) = transports
        send, recv = (init_send, resp_recv) if from_initiator else (resp_send, init_recv)
        assert send.encrypt_with_ad(b"", payload) == expected, f"message {index} (encrypt)"
        assert recv.decrypt_with_ad(b"", expected) == payload, f"message {index} (decrypt)"


# The README counts 16 NNpsk0 vectors: 8 with DH 25519 (2 ciphers x 4 hashes) and 8 with
# DH 448. The product runs 25519; the engine supports 448 too, so all 16 are pinned here.
NNPSK0 = [v for v in VECTORS if v["protocol_name"].startswith("Noise_NNpsk0_")]


def test_vector_file_present(shared_vectors_dir: Path) -> None:
    """Fails in CI (skips locally) when the shared vectors are missing."""
    assert (shared_vectors_dir / VECTOR_FILE).is_file()
    assert len(VECTORS) == 944


def test_all_nnpsk0_vectors_are_present(shared_vectors_dir: Path) -> None:
    suites = {v["protocol_name"].removeprefix("Noise_NNpsk0_") for v in NNPSK0}
    assert suites == {
        f"{dh}_{cipher}_{hash_name}"
        for dh in ("25519", "448")
        for cipher in ("AESGCM", "ChaChaPoly")
        for hash_name in ("SHA256", "SHA512", "BLAKE2s", "BLAKE2b")
    }
    assert len(NNPSK0) == 16


@pytest.mark.parametrize("vector", NNPSK0, ids=_vector_id)
def test_nnpsk0_vector(vector: dict[str, Any]) -> None:
    """The product's own pattern: every DH x cipher x hash combination, byte-exact."""
    run_vector(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_cacophony_vector(vector: dict[str, Any]) -> None:
    reason = _unsupported_reason(vector["protocol_name"])
    if reason is not None:
        pytest.skip(reason)
    run_vector(vector)
