"""Cost of the channel's cryptography.

A full handshake, sealing/opening 1 KiB and 64 KiB, a transfer with and without a PIN.

Writes benchmarks/results/crypto.json and prints a table.  Each figure is the median of several
repeats of a timed loop.  As an in-run reference, the raw AES-256-GCM cost of the same bytes is
measured too, so the ratio shows the overhead of Noise framing and padding whatever the machine.
Run: ``./dev bench crypto``.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tigress.crypto.draft_aead import open_draft_payload, seal_draft_payload
from tigress.crypto.noise import HandshakeState
from tigress.protocol.events import SendFrame
from tigress.protocol.messages import ProvisioningInfo
from tigress.protocol.session import Receiver, Sender

RESULTS = Path(__file__).resolve().parent / "results" / "crypto.json"
CHANNEL = b"tigress-relay:https://relay.example/v1/m/2bba630e-519b-4bec-bf63-0242ac130002"


def timed(fn: Callable[[], object], *, loops: int, repeats: int = 5) -> float:
    """Median seconds per call."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def noise_pair() -> tuple[HandshakeState, HandshakeState]:
    psk = secrets.token_bytes(32)
    name = "Noise_NNpsk0_25519_AESGCM_SHA256"
    return (
        HandshakeState(name, initiator=True, prologue=b"p", psks=[psk]),
        HandshakeState(name, initiator=False, prologue=b"p", psks=[psk]),
    )


def handshake() -> None:
    i, r = noise_pair()
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    i.split()
    r.split()


def session_transfer() -> None:
    key = secrets.token_bytes(32)
    sender, receiver = (
        Sender(secret=key, channel_id=CHANNEL),
        Receiver(secret=key, channel_id=CHANNEL),
    )
    (hello,) = [a.frame for a in sender.start() if isinstance(a, SendFrame)]
    receiver.receive(hello)
    (done,) = [a.frame for a in receiver.finish() if isinstance(a, SendFrame)]
    sender.receive(done)


def pin_transfer() -> None:
    key = secrets.token_bytes(32)
    sender = Sender(secret=key, channel_id=CHANNEL, pin="482913")
    receiver = Receiver(secret=key, channel_id=CHANNEL)

    def frame(actions: Sequence[object]) -> bytes:
        return next(a.frame for a in actions if isinstance(a, SendFrame))

    receiver.receive(frame(sender.start()))
    reply = frame(sender.receive(frame(receiver.submit_pin("482913"))))
    sender.receive(frame(receiver.receive(reply)))


def transport(size: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """Noise transport seal and open of ``size`` bytes."""
    i, r = noise_pair()
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    send, _ = i.split()
    _, recv = r.split()
    data = os.urandom(size)
    box = send.encrypt_with_ad(b"h", data)

    def open_() -> object:
        recv.set_nonce(0)
        return recv.decrypt_with_ad(b"h", box)

    return (lambda: send.encrypt_with_ad(b"h", data)), open_


def draft(size: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """The draft's AEAD_AES_256_GCM payload (base64 included) seal and open."""
    key, data = os.urandom(32), os.urandom(size)
    sealed = seal_draft_payload("AEAD_AES_256_GCM", key, data)
    return (
        lambda: seal_draft_payload("AEAD_AES_256_GCM", key, data),
        lambda: open_draft_payload("AEAD_AES_256_GCM", key, sealed),
    )


def raw_aes(size: int) -> Callable[[], object]:
    """Reference: one AES-256-GCM decryption of the same size, no framing at all."""
    aes, nonce, data = AESGCM(os.urandom(32)), os.urandom(12), os.urandom(size)
    box = aes.encrypt(nonce, data, b"h")
    return lambda: aes.decrypt(nonce, box, b"h")


def channel_message(size: int) -> Callable[[], object]:
    """A provisioning message of ``size`` content bytes: encode, pad, seal, then open and parse."""
    key = secrets.token_bytes(32)
    sender, receiver = (
        Sender(secret=key, channel_id=CHANNEL),
        Receiver(secret=key, channel_id=CHANNEL),
    )
    receiver.receive(next(a.frame for a in sender.start() if isinstance(a, SendFrame)))
    info = ProvisioningInfo("tigress.bench.v1", {"d": "x" * size})
    sender.receive(next(a.frame for a in receiver.send(info) if isinstance(a, SendFrame)))

    def roundtrip() -> object:
        frame = next(a.frame for a in sender.send(info) if isinstance(a, SendFrame))
        return receiver.receive(frame)

    return roundtrip


def main() -> None:
    rows: list[tuple[str, float, str]] = []
    rows.append(("Noise NNpsk0 handshake (both sides)", timed(handshake, loops=300), ""))
    rows.append(
        ("transfer: offer + done frames (both sides)", timed(session_transfer, loops=200), "")
    )
    rows.append(("transfer with PIN (CPace, both sides)", timed(pin_transfer, loops=50), ""))
    sizes = ((1024, "1 KiB"), (32 * 1024 - 64, "32 KiB"), (64 * 1024, "64 KiB"))
    for size, label in sizes:
        loops = 2000 if size <= 1024 else 200
        ref = timed(raw_aes(size), loops=loops)
        rows.append((f"raw AES-256-GCM open {label} (reference)", ref, "1.00x"))
        if size < 65000:  # a Noise message is at most 65535 bytes; our largest bucket is 32 KiB
            seal, open_ = transport(size)
            for name, fn in (("seal", seal), ("open", open_)):
                t = timed(fn, loops=loops)
                rows.append((f"Noise transport {name} {label}", t, f"{t / ref:.2f}x reference"))
        seal, open_ = draft(size)
        for name, fn in (("seal", seal), ("open", open_)):
            t = timed(fn, loops=loops)
            rows.append((f"draft AEAD_AES_256_GCM {name} {label}", t, f"{t / ref:.2f}x reference"))
    for size, label in ((1024, "1 KiB"), (30 * 1024, "30 KiB")):
        t = timed(channel_message(size), loops=2000 if size <= 1024 else 200)
        rows.append(
            (f"channel message {label}: send + receive", t, "encode, pad, seal, open, parse")
        )
    result = {
        "benchmark": "crypto",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": [
            {"name": n, "microseconds": round(t * 1e6, 2), "note": note} for n, t, note in rows
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(n) for n, _, _ in rows)
    print(f"{'operation':<{width}}  {'µs':>10}  note")
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds * 1e6:>10.1f}  {note}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
