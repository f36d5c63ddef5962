"""What the relay can see: no plaintext, no secret, and nothing that links two transfers.

Req-Opaque and Req-NonCorrelation, end to end: real wallets, a real relay process, and a recording
proxy that keeps every request the devices send.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.client.conftest import RunnerFactory, add_echo_credential
from tests.client.support import RelayProcess, TamperingProxy

from tigress.protocol.frames import HEADER_SIZE, payload_to_frame
from tigress.protocol.invitation import RelayInvitation
from tigress.wallet import TransferStatus, Wallet

pytestmark = pytest.mark.timeout(120)

CANARY = "plaintext-canary-7f3a9c1e-the-door-code-is-4711"


@dataclass
class RecordingProxy(TamperingProxy):
    """Forwards unchanged and keeps (method, path, headers, body) of every request."""

    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        chunks: list[dict[str, Any]] = []
        while True:
            message = await receive()
            chunks.append(message)
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = b"".join(m.get("body", b"") for m in chunks)
        self.seen.append((scope["method"], scope["path"], headers, body))

        async def replay() -> dict[str, Any]:
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}

        await super().__call__(scope, replay, send)


@pytest.fixture
def recorded_relay(tmp_path: Path) -> Iterator[tuple[RecordingProxy, RelayProcess]]:
    proxy = RecordingProxy().start()
    relay = RelayProcess(tmp_path / "relay", public_url=proxy.base_url)
    relay.directory.mkdir()
    relay.start()
    proxy.target = relay.base_url
    yield proxy, relay
    proxy.stop()
    relay.stop()


def run_transfer(make_runner: RunnerFactory, alice: Path, bob: Path, relay_url: str) -> str:
    result = make_runner(alice).share("c-home-1", "echo", relay_url=relay_url)
    received = make_runner(bob).receive(result.invitation_url)
    for _ in range(10):
        sender = make_runner(alice).advance(result.record.id)
        received = make_runner(bob).advance(received.id)
        if sender.status.is_terminal and received.status.is_terminal:
            break
    assert received.status == TransferStatus.FINISHED, received.detail
    return result.invitation_url


def identifiers(requests: list[tuple[str, str, dict[str, str], bytes]]) -> dict[str, set[str]]:
    """Everything in a set of requests that could name a device or a transfer."""
    found: dict[str, set[str]] = {"claims": set(), "request ids": set(), "mailboxes": set()}
    found["ephemeral keys"] = set()
    for _method, path, headers, body in requests:
        for name, key in (
            ("mailbox-device-claim", "claims"),
            ("mailbox-request-id", "request ids"),
        ):
            if name in headers:
                found[key].add(headers[name])
        if path.startswith("/v1/m/"):
            found["mailboxes"].add(path.split("/")[3])
        if body.startswith(b"{") and b'"tigress-noise-v1"' in body:
            frame = payload_to_frame(json.loads(body)["payload"])
            if frame[1] in (1, 2):  # handshake frames carry an ephemeral public key
                found["ephemeral keys"].add(frame[HEADER_SIZE : HEADER_SIZE + 32].hex())
    return found


def test_two_transfers_by_the_same_devices_share_no_identifier(
    recorded_relay: tuple[RecordingProxy, RelayProcess],
    wallet_dirs: tuple[Path, Path],
    make_runner: RunnerFactory,
) -> None:
    proxy, _ = recorded_relay
    alice, bob = wallet_dirs
    run_transfer(make_runner, alice, bob, proxy.base_url)
    first = identifiers(proxy.seen)
    boundary = len(proxy.seen)
    run_transfer(make_runner, alice, bob, proxy.base_url)
    second = identifiers(proxy.seen[boundary:])
    for kind in first:
        assert first[kind], f"the first transfer produced no {kind}"
        assert second[kind], f"the second transfer produced no {kind}"
        assert not first[kind] & second[kind], f"{kind} repeat across transfers"
    # Within one transfer the two devices use different claims too.
    assert len(first["claims"]) == 2


def test_plaintext_and_secret_never_reach_the_relay(
    recorded_relay: tuple[RecordingProxy, RelayProcess], tmp_path: Path, make_runner: RunnerFactory
) -> None:
    proxy, relay = recorded_relay
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    with Wallet.create(alice) as wallet:
        add_echo_credential(wallet, secret=CANARY)
    Wallet.create(bob).close()
    url = run_transfer(make_runner, alice, bob, proxy.base_url)
    secret = RelayInvitation.parse(url).secret
    assert secret is not None
    needles = {
        "plaintext": CANARY.encode(),
        "secret (raw)": secret,
        "secret (base64url)": base64.urlsafe_b64encode(secret).rstrip(b"=").strip(),
        "secret (base64)": base64.b64encode(secret).rstrip(b"="),
        "secret (hex)": secret.hex().encode(),
    }
    relay.stop()
    stored = b"".join(
        p.read_bytes()
        for p in relay.directory.iterdir()
        if p.is_file() and p.name != "relay.secret"
    )
    wire = b"".join(
        method.encode() + path.encode() + repr(h).encode() + body
        for method, path, h, body in proxy.seen
    )
    assert stored, "the relay wrote nothing to inspect"
    for name, needle in needles.items():
        assert needle not in stored, f"{name} found in the relay's files (database, WAL or log)"
        assert needle not in wire, f"{name} sent to the relay"
    with Wallet.open(bob) as wallet:  # and yet the receiver got it
        assert any(c.data.get("secret") == CANARY for c in wallet.credentials.list())
