"""The three scenarios across real processes: relay, hotel entity, sender CLI, receiver CLI.

Every CLI call is a separate process that exits, with its own wallet directory, so sender and
receiver are never online at the same time unless a test says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.client.support import RelayProcess
from tests.e2e.support import Device, alternate, hotel_process, kill_group

from tigress.cli.exit_codes import ExitCode

pytestmark = pytest.mark.timeout(240)

Phones = Callable[[str], Device]


def all_transfers(phone: Device) -> list[dict[str, Any]]:
    transfers: list[dict[str, Any]] = phone.ok("--json", "transfers", "--all").json()["transfers"]
    return transfers


def only_credential(phone: Device) -> dict[str, Any]:
    credentials = phone.ok("--json", "wallet", "list").json()["credentials"]
    assert len(credentials) == 1, credentials
    return dict(credentials[0])


def test_home_scenario_and_second_receiver(
    relay: RelayProcess, device: Phones, tmp_path: Path
) -> None:
    anita, jared, eve = device("anita"), device("jared"), device("eve")
    lock = str(tmp_path / "front-door.json")
    anita.ok("home", "setup", "--lock", lock, "--label", "Front door")
    shared = anita.ok("--json", "share", "Front door", "--relay", relay.base_url).json()
    received = jared.ok("--json", "receive", shared["invitation"]).json()
    assert received["transfer"]["status"] == "finished"
    # A second receiver is refused with a clear sentence (the mailbox is bound to Jared).
    refused = eve.run("receive", shared["invitation"])
    assert refused.code == ExitCode.TRANSFER_FAILED
    assert "Another device has already accepted this share" in refused.out
    opened = jared.ok("--json", "unlock", "Front door", "--at", lock).json()
    assert opened["opened"] is True
    anita.ok("continue")
    assert [t["status"] for t in all_transfers(anita)] == ["finished"]
    assert anita.ok("--json", "unlock", "Front door", "--at", lock).json()["opened"] is True


def test_hotel_scenario(relay: RelayProcess, device: Phones, tmp_path: Path) -> None:
    token = "e2e-front-desk-token"
    with hotel_process(tmp_path, token) as hotel:
        bob, alice = device("bob"), device("alice")
        booking = bob.ok(
            "--json",
            "pe",
            "hotel",
            "booking",
            "--entity",
            hotel,
            "--room",
            "101",
            "--admin-token",
            token,
        ).json()["booking_code"]
        room = bob.ok(
            "--json", "hotel", "check-in", "--entity", hotel, "--booking", booking
        ).json()["credential"]
        shared = bob.ok("--json", "share", room["id"], "--relay", relay.base_url).json()
        got = alice.ok("--json", "receive", shared["invitation"]).json()
        key = got["credential"]
        assert key["id"] != room["id"]
        door = alice.ok("--json", "unlock", key["id"], "--at", f"{hotel}/doors/101").json()
        assert door["opened"] is True
        bob.ok("continue")
        assert [t["status"] for t in all_transfers(bob)] == ["finished"]


def test_car_scenario_never_online_together_with_pin(
    relay: RelayProcess, device: Phones, tmp_path: Path
) -> None:
    ben, amit = device("ben"), device("amit")
    vehicle = str(tmp_path / "volvo.json")
    ben.ok("car", "pair", "--vehicle", vehicle, "--label", "Blue Volvo")
    shared = ben.ok(
        "--json",
        "share",
        "Blue Volvo",
        "--relay",
        relay.base_url,
        "--pin",
        "--entitlements",
        "unlock,drive",
    ).json()
    pin = shared["pin"]
    assert len(pin) == 6 and pin.isdigit()
    first = amit.ok("--json", "receive", shared["invitation"], "--pin", pin).json()
    assert first["transfer"]["status"] == "pending"
    alternate(ben, amit)
    assert [t["status"] for t in all_transfers(ben)] == ["finished"]
    assert [t["status"] for t in all_transfers(amit)] == ["finished"]
    key = only_credential(amit)
    assert amit.ok("--json", "unlock", key["id"], "--at", vehicle).json()["opened"] is True
    assert amit.ok("unlock", key["id"], "--at", vehicle, "--start").code == 0
    issued = ben.ok("--json", "wallet", "show", "Blue Volvo").json()["credential"]["details"]
    serial = issued["issued"][0]["serial"]
    ben.ok("revoke", "Blue Volvo", "--key", serial, "--at", vehicle)
    refused = amit.run("--json", "unlock", key["id"], "--at", vehicle)
    assert refused.code == ExitCode.REFUSED
    assert "revoked" in refused.json()["reason"]


@pytest.mark.parametrize("canceller", ["sender", "receiver"])
def test_cancel_seen_by_the_other_side_with_its_reason(
    relay: RelayProcess, device: Phones, tmp_path: Path, canceller: str
) -> None:
    ben, amit = device("ben"), device("amit")
    ben.ok("car", "pair", "--vehicle", str(tmp_path / "car.json"), "--label", "Car")
    shared = ben.ok("--json", "share", "Car", "--relay", relay.base_url, "--pin", "4711").json()
    got = amit.ok("--json", "receive", shared["invitation"], "--pin", "4711").json()["transfer"]
    # The PIN exchange completes (Ben answers, Amit confirms, Ben sends the key creation
    # request): the channel is up on both sides, so the cancel travels encrypted with its reason.
    ben.ok("continue")
    amit.ok("continue")
    ben.ok("continue")
    if canceller == "sender":
        ben.ok("cancel", shared["transfer"]["id"], "--reason", "declined")
        other, other_id = amit, got["id"]
    else:
        amit.ok("cancel", got["id"], "--reason", "declined")
        other, other_id = ben, shared["transfer"]["id"]
    seen = other.run("--json", "continue", other_id)
    assert seen.code == ExitCode.TRANSFER_FAILED, seen.out
    transfer = seen.json()["transfer"]
    assert transfer["status"] == "cancelled"
    assert transfer["peer_code"] == "declined"
    assert (
        "The other device cancelled the transfer (it was declined)"
        in seen.json()["transfer"]["detail"]
    )


def test_wrong_pin_until_the_share_dies(
    relay: RelayProcess, device: Phones, tmp_path: Path
) -> None:
    anita, jared = device("anita"), device("jared")
    anita.ok("home", "setup", "--lock", str(tmp_path / "door.json"), "--label", "Door")
    shared = anita.ok(
        "--json", "share", "Door", "--relay", relay.base_url, "--pin", "4711", "--pin-attempts", "2"
    ).json()
    done = jared.run("--json", "receive", shared["invitation"], "--pin", "0000")
    transfer_id = done.json()["transfer"]["id"]
    results = []
    for guess in ("1111", "2222", "3333"):
        anita.run("continue")
        done = jared.run("--json", "continue", transfer_id, "--pin", guess)
        results.append(done.code)
        if done.code == ExitCode.TRANSFER_FAILED:
            break
    assert results[0] == ExitCode.PIN_NEEDED or results[0] == 0
    assert done.code == ExitCode.TRANSFER_FAILED
    assert "too many times" in done.json()["transfer"]["detail"]
    seen = anita.run("--json", "continue")
    assert seen.code == ExitCode.TRANSFER_FAILED
    assert seen.json()["transfers"][0]["peer_code"] == "pin-attempts-exceeded"


def test_relay_restarted_mid_transfer(relay: RelayProcess, device: Phones, tmp_path: Path) -> None:
    ben, amit = device("ben"), device("amit")
    vehicle = str(tmp_path / "car.json")
    ben.ok("car", "pair", "--vehicle", vehicle, "--label", "Car")
    shared = ben.ok("--json", "share", "Car", "--relay", relay.base_url).json()
    amit.ok("receive", shared["invitation"])
    relay.stop()
    offline = ben.run("--json", "continue")
    assert offline.code == 0
    transfer = offline.json()["transfers"][0]
    assert transfer["status"] == "pending"
    assert "could not be reached" in transfer["detail"]
    relay.start()  # same port, same database
    alternate(ben, amit)
    assert [t["status"] for t in all_transfers(amit)] == ["finished"]
    key = only_credential(amit)
    assert amit.ok("--json", "unlock", key["id"], "--at", vehicle).json()["opened"] is True


def test_cli_killed_mid_transfer_then_resumed(
    relay: RelayProcess, device: Phones, tmp_path: Path
) -> None:
    ben, amit = device("ben"), device("amit")
    vehicle = str(tmp_path / "car.json")
    ben.ok("car", "pair", "--vehicle", vehicle, "--label", "Car")
    shared = ben.ok("--json", "share", "Car", "--relay", relay.base_url).json()
    amit.ok("receive", shared["invitation"])
    # Ben's device waits for Amit's answer and is killed (kill -9) while it waits.
    waiting = ben.start("continue", "--wait", "60")
    time.sleep(2.5)
    assert waiting.poll() is None
    kill_group(waiting)
    assert waiting.returncode == -9
    # Amit's continue is killed too, right after starting; then everything resumes.
    flaky = amit.start("continue", "--wait", "60")
    time.sleep(1.0)
    kill_group(flaky)
    alternate(ben, amit)
    assert [t["status"] for t in all_transfers(ben)] == ["finished"]
    assert [t["status"] for t in all_transfers(amit)] == ["finished"]
    key = only_credential(amit)
    assert amit.ok("--json", "unlock", key["id"], "--at", vehicle).json()["opened"] is True


def test_direct_transfer_without_relay(device: Phones, tmp_path: Path) -> None:
    anita, jared = device("anita"), device("jared")
    lock = str(tmp_path / "door.json")
    anita.ok("home", "setup", "--lock", lock, "--label", "Door")
    sharing = anita.start(
        "--json", "share", "Door", "--direct", "--listen", "127.0.0.1:0", "--wait", "60"
    )
    try:
        assert sharing.stdout is not None
        import json  # noqa: PLC0415

        event = json.loads(sharing.stdout.readline())
        assert event["event"] == "shared"
        assert event["invitation"].startswith("tigress://") or "#" in event["invitation"]
        got = jared.ok("--json", "receive", event["invitation"]).json()
        assert got["transfer"]["status"] == "finished"
        out, err = sharing.communicate(timeout=60)
        assert sharing.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["transfer"]["status"] == "finished"
    finally:
        kill_group(sharing)
    assert jared.ok("--json", "unlock", "Door", "--at", lock).json()["opened"] is True


def test_demo_exits_zero_and_leaves_nothing(tmp_path: Path) -> None:
    phone = Device(tmp_path, "demo")
    started = time.monotonic()
    done = phone.run("--json", "demo", timeout=120)
    assert done.code == 0, done.err
    assert done.json()["ok"] is True
    assert time.monotonic() - started < 60
    assert not [p for p in phone.home.iterdir() if p.name.startswith("tigress-demo-")]
