"""Generate tests/vectors/tigress-channel-v1.json: known-answer vectors of the channel profile.

Every input (secret, channel id, ephemeral keys, CPace scalars) is fixed, so the frames are
deterministic.  A second implementation replays each case and compares frames byte for byte.
Run: ``./dev run python scripts/make_vectors.py`` (``--check`` only compares with the file).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from tigress.protocol.events import Action, SendFrame
from tigress.protocol.messages import ProvisioningInfo
from tigress.protocol.session import Receiver, Sender

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "tigress-channel-v1.json"


def fixed(label: str, size: int = 32) -> bytes:
    """Deterministic test input: SHA-256 of a label, truncated (not a secret, obviously)."""
    return hashlib.sha256(b"tigress test vector " + label.encode()).digest()[:size]


CHANNEL = b"tigress-relay:https://relay.example/v1/m/2bba630e-519b-4bec-bf63-0242ac130002"


def _frames(actions: list[Action]) -> list[bytes]:
    return [a.frame for a in actions if isinstance(a, SendFrame)]


def _info(obj: dict[str, Any]) -> ProvisioningInfo:
    return ProvisioningInfo(obj["format"], obj["content"])


def run_case(case: dict[str, Any]) -> list[dict[str, str]]:
    """Replay one case; returns the frames in order with their writer."""
    inputs = case["inputs"]
    secret = bytes.fromhex(inputs["secret"])
    channel = bytes.fromhex(inputs["channel_id"])
    sender = Sender(
        secret=secret,
        channel_id=channel,
        suite=inputs["suite"],
        pin=inputs.get("pin"),
        ephemeral=bytes.fromhex(inputs["sender_ephemeral"]),
        pin_scalars=[bytes.fromhex(s) for s in inputs.get("sender_cpace_scalars", [])],
    )
    receiver = Receiver(
        secret=secret,
        channel_id=channel,
        ephemeral=bytes.fromhex(inputs["receiver_ephemeral"]),
        pin_scalars=[bytes.fromhex(s) for s in inputs.get("receiver_cpace_scalars", [])],
    )
    sides = {"sender": sender, "receiver": receiver}
    out: list[dict[str, str]] = []
    for step in case["steps"]:
        actor = sides[step["by"]]
        match step["do"]:
            case "start":
                provision = step.get("provision")
                actions = sender.start(_info(provision) if provision else None)
            case "send":
                actions = actor.send(_info(step["provision"]))
            case "pin":
                actions = receiver.submit_pin(step["pin"])
            case "finish":
                actions = actor.finish()
            case other:
                raise ValueError(f"unknown step {other}")
        pending = [(step["by"], frame) for frame in _frames(actions)]
        while pending:  # deliver, including automatic answers (PIN reply and confirm)
            by, frame = pending.pop(0)
            out.append({"by": by, "frame": frame.hex()})
            target = receiver if by == "sender" else sender
            answer_by = "receiver" if by == "sender" else "sender"
            pending += [(answer_by, reply) for reply in _frames(target.receive(frame))]
    return out


def cases() -> list[dict[str, Any]]:
    base = {
        "secret": fixed("secret").hex(),
        "channel_id": CHANNEL.hex(),
        "sender_ephemeral": fixed("sender ephemeral").hex(),
        "receiver_ephemeral": fixed("receiver ephemeral").hex(),
    }
    home = {"format": "tigress.home.key.v1", "content": {"lock": "front door", "key": "q0Hj1Q"}}
    request = {
        "format": "tigress.car.key-creation-request.v1",
        "content": {"entitlements": ["unlock"]},
    }
    signing = {"format": "tigress.car.key-signing-request.v1", "content": {"public_key": "MCow"}}
    signed = {"format": "tigress.car.key-import.v1", "content": {"certificate": "MIIB"}}
    result: list[dict[str, Any]] = [
        {
            "name": f"copy, one round trip, {suite}",
            "inputs": {**base, "suite": suite},
            "steps": [
                {"by": "sender", "do": "start", "provision": home},
                {"by": "receiver", "do": "finish"},
            ],
        }
        for suite in ("25519_AESGCM_SHA256", "25519_ChaChaPoly_SHA256")
    ]
    result.append(
        {
            "name": "owner signs, several round trips",
            "inputs": {**base, "suite": "25519_AESGCM_SHA256"},
            "steps": [
                {"by": "sender", "do": "start", "provision": request},
                {"by": "receiver", "do": "send", "provision": signing},
                {"by": "sender", "do": "send", "provision": signed},
                {"by": "receiver", "do": "finish"},
            ],
        }
    )
    result.append(
        {
            "name": "PIN: one wrong guess, then the right one, then data",
            "inputs": {
                **base,
                "suite": "25519_AESGCM_SHA256",
                "pin": "482913",
                "sender_cpace_scalars": [
                    fixed("sender cpace 1").hex(),
                    fixed("sender cpace 2").hex(),
                ],
                "receiver_cpace_scalars": [
                    fixed("receiver cpace 1").hex(),
                    fixed("receiver cpace 2").hex(),
                ],
            },
            "steps": [
                {"by": "sender", "do": "start"},
                {"by": "receiver", "do": "pin", "pin": "000000"},
                {"by": "receiver", "do": "pin", "pin": "482913"},
                {"by": "sender", "do": "send", "provision": home},
                {"by": "receiver", "do": "finish"},
            ],
        }
    )
    for case in result:
        case["frames"] = run_case(case)
    return result


def document() -> dict[str, Any]:
    return {
        "description": "tigress channel profile v1 known-answer vectors (docs/protocol.md). "
        "Replay each case's steps with the given inputs; every frame must match byte for byte. "
        "Frames the peer writes automatically (PIN reply and confirm) "
        "appear after the frame they answer.",
        "generator": "scripts/make_vectors.py",
        "cases": cases(),
    }


def main() -> int:
    text = json.dumps(document(), indent=1, sort_keys=True) + "\n"
    if "--check" in sys.argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run scripts/make_vectors.py")
            return 1
        print(f"{OUTPUT} is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
