"""The CLI in-process (click's CliRunner) against a real relay process and hotel entity."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import HOTEL_ADMIN, Tigress
from tests.client.support import RelayProcess, free_port

from tigress.cli.exit_codes import ExitCode

pytestmark = pytest.mark.timeout(120)


def init(tigress: Tigress, *names: str) -> None:
    for name in names:
        run = tigress(name, "wallet", "init")
        assert run.code == 0, run.err


def home_share(
    tigress: Tigress, tmp_path: Path, relay: RelayProcess, *extra: str
) -> dict[str, Any]:
    init(tigress, "anita", "jared")
    lock = tmp_path / "door.json"
    assert tigress("anita", "home", "setup", "--lock", str(lock), "--label", "Front door").code == 0
    run = tigress("anita", "--json", "share", "Front door", "--relay", relay.base_url, *extra)
    assert run.code == 0, run.err
    return dict(run.json())


# --- wallet ---------------------------------------------------------------------------------


def test_wallet_init_list_show_json(tigress: Tigress, tmp_path: Path) -> None:
    run = tigress("w", "--json", "wallet", "init")
    assert run.code == 0
    assert run.json() == {"ok": True, "wallet": str(tmp_path / "w"), "passphrase_protected": False}
    assert tigress("w", "--json", "wallet", "list").json() == {"ok": True, "credentials": []}
    lock = tmp_path / "lock.json"
    run = tigress("w", "--json", "home", "setup", "--lock", str(lock), "--label", "Front door")
    assert run.code == 0
    created = run.json()["credential"]
    assert created["label"] == "Front door" and created["vertical"] == "home"
    listed = tigress("w", "--json", "wallet", "list").json()["credentials"]
    assert [c["id"] for c in listed] == [created["id"]]
    shown = tigress("w", "--json", "wallet", "show", "Front door").json()["credential"]
    assert shown["details"]["lock_label"] == "Front door"
    assert "key" not in shown["details"]  # the symmetric key is never printed
    human = tigress("w", "wallet", "show", created["id"][:5])
    assert human.code == 0 and "Front door" in human.out


def test_wallet_init_twice_and_missing_wallet(tigress: Tigress) -> None:
    init(tigress, "w")
    again = tigress("w", "wallet", "init")
    assert again.code == ExitCode.WALLET_ERROR
    assert "already exists" in again.err
    missing = tigress("nowhere", "--json", "wallet", "list")
    assert missing.code == ExitCode.NOT_FOUND
    error = missing.json()
    assert error["ok"] is False and error["error"]["code"] == "not-found"
    assert "tigress wallet init" in error["error"]["message"]
    assert "Traceback" not in missing.err


def test_unknown_credential(tigress: Tigress) -> None:
    init(tigress, "w")
    run = tigress("w", "wallet", "show", "no-such-key")
    assert run.code == ExitCode.NOT_FOUND
    assert "No credential matches 'no-such-key'" in run.err


def test_passphrase_locked_wrong_and_right(tigress: Tigress) -> None:
    env = {"TIGRESS_PASSPHRASE": "correct horse battery"}
    assert tigress("w", "wallet", "init", "--passphrase", env=env).code == 0
    locked = tigress("w", "wallet", "list")
    assert locked.code == ExitCode.WALLET_LOCKED
    assert "protected by a passphrase" in locked.err
    wrong = tigress("w", "wallet", "list", env={"TIGRESS_PASSPHRASE": "wrong"})
    assert wrong.code == ExitCode.WALLET_LOCKED
    assert "does not unlock" in wrong.err
    assert tigress("w", "wallet", "list", env=env).code == 0
    named = tigress(
        "w",
        "--passphrase-env",
        "MY_PASS",
        "wallet",
        "list",
        env={"MY_PASS": "correct horse battery"},
    )
    assert named.code == 0
    unset = tigress("w", "--passphrase-env", "NOT_SET_VAR", "wallet", "list")
    assert unset.code == ExitCode.USAGE


def test_init_passphrase_needs_one_when_not_interactive(tigress: Tigress) -> None:
    run = tigress("w", "wallet", "init", "--passphrase")
    assert run.code == ExitCode.USAGE
    assert "TIGRESS_PASSPHRASE" in run.err


# --- home: share, receive, unlock, revoke ---------------------------------------------------


def test_home_share_receive_unlock(tigress: Tigress, tmp_path: Path, relay: RelayProcess) -> None:
    shared = home_share(tigress, tmp_path, relay)
    url = shared["invitation"]
    assert "#" in url and "?v=h" in url and shared["pin"] is None
    assert shared["transfer"]["status"] == "pending" and shared["transfer"]["role"] == "sender"
    received = tigress("jared", "--json", "receive", url)
    assert received.code == 0, received.err
    document = received.json()
    assert document["transfer"]["status"] == "finished"
    assert document["credential"]["label"] == "Front door"
    lock = str(tmp_path / "door.json")
    opened = tigress("jared", "--json", "unlock", "Front door", "--at", lock)
    assert opened.code == 0 and opened.json()["opened"] is True
    done = tigress("anita", "--json", "continue")
    assert done.code == 0
    assert [t["status"] for t in done.json()["transfers"]] == ["finished"]
    listing = tigress("anita", "--json", "transfers", "--all").json()["transfers"]
    assert listing[0]["status"] == "finished"
    assert tigress("anita", "--json", "transfers").json()["transfers"] == []
    # Revoking a home key rotates the lock: the copy stops working, the owner's works.
    revoked = tigress("anita", "revoke", "Front door", "--at", lock)
    assert revoked.code == 0 and "Rotated" in revoked.out
    refused = tigress("jared", "unlock", "Front door", "--at", lock)
    assert refused.code == ExitCode.REFUSED and "Refused" in refused.out
    assert tigress("anita", "unlock", "Front door", "--at", lock).code == 0


def test_human_share_prints_link_and_qr(
    tigress: Tigress, tmp_path: Path, relay: RelayProcess
) -> None:
    init(tigress, "a")
    tigress("a", "home", "setup", "--lock", str(tmp_path / "l.json"), "--label", "Door")
    run = tigress("a", "share", "Door", "--relay", relay.base_url, "--pin")
    assert run.code == 0, run.err
    assert re.search(r"http://127\.0\.0\.1:\d+/v1/m/[0-9a-f-]+\?v=h#\S+", run.out)
    assert "█" in run.out or "▀" in run.out  # the terminal QR code
    assert re.search(r"PIN: \d{6} ", run.out)
    assert "another channel" in run.out


def test_qr_png_written(tigress: Tigress, tmp_path: Path, relay: RelayProcess) -> None:
    init(tigress, "a")
    tigress("a", "home", "setup", "--lock", str(tmp_path / "l.json"), "--label", "Door")
    target = tmp_path / "invite.png"
    run = tigress(
        "a",
        "--json",
        "share",
        "Door",
        "--relay",
        relay.base_url,
        "--qr",
        "png",
        "--qr-out",
        str(target),
    )
    assert run.code == 0, run.err
    assert run.json()["qr_file"] == str(target)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert target.stat().st_mode & 0o077 == 0
    missing = tigress("a", "share", "Door", "--relay", relay.base_url, "--qr", "svg")
    assert missing.code == ExitCode.USAGE


def test_pin_required_then_given(tigress: Tigress, tmp_path: Path, relay: RelayProcess) -> None:
    shared = home_share(tigress, tmp_path, relay, "--pin", "4711")
    assert shared["pin"] == "4711"
    run = tigress("jared", "--json", "receive", shared["invitation"])
    assert run.code == ExitCode.PIN_NEEDED
    transfer = run.json()["transfer"]
    assert transfer["status"] == "waiting-for-pin"
    run = tigress("jared", "--json", "continue", transfer["id"], "--pin", "4711")
    assert run.code == 0 and run.json()["transfer"]["status"] == "pending"
    for _ in range(4):
        tigress("anita", "continue")
        run = tigress("jared", "--json", "continue", transfer["id"])
        if run.json()["transfer"]["status"] == "finished":
            break
    assert run.json()["transfer"]["status"] == "finished", run.out
    assert tigress("anita", "--json", "continue").json()["transfers"][0]["status"] == "finished"


def test_cancel_seen_by_the_other_side(
    tigress: Tigress, tmp_path: Path, relay: RelayProcess
) -> None:
    shared = home_share(tigress, tmp_path, relay, "--pin", "4711")
    received = tigress("jared", "--json", "receive", shared["invitation"]).json()["transfer"]
    cancelled = tigress("jared", "--json", "cancel", received["id"][:6], "--reason", "declined")
    assert cancelled.code == 0 and cancelled.json()["transfer"]["status"] == "cancelled"
    seen = tigress("anita", "--json", "continue")
    assert seen.code == ExitCode.TRANSFER_FAILED
    transfer = seen.json()["transfers"][0]
    assert transfer["status"] == "cancelled"
    again = tigress("jared", "cancel", received["id"])
    assert again.code == ExitCode.TRANSFER_FAILED and "already ended" in again.err
    unknown = tigress("jared", "cancel", "t-doesnotexist")
    assert unknown.code == ExitCode.NOT_FOUND


def test_bad_invitations(tigress: Tigress) -> None:
    init(tigress, "w")
    for bad in ("not a link", "https://relay.example/v1/m/123?v=h", "http://127.0.0.1:1/v1/m/x#y"):
        run = tigress("w", "--json", "receive", bad)
        assert run.code == ExitCode.USAGE, (bad, run.out)
        assert run.json()["error"]["code"] == "usage"
        assert "Traceback" not in run.err


def test_relay_down(tigress: Tigress, tmp_path: Path) -> None:
    init(tigress, "a")
    tigress("a", "home", "setup", "--lock", str(tmp_path / "l.json"), "--label", "Door")
    down = f"http://127.0.0.1:{free_port()}"
    run = tigress("a", "--json", "share", "Door", "--relay", down)
    assert run.code == ExitCode.UNREACHABLE
    assert run.json()["error"]["code"] == "unreachable"
    assert "could not be reached" in run.err


def test_second_receiver_refused(tigress: Tigress, tmp_path: Path, relay: RelayProcess) -> None:
    shared = home_share(tigress, tmp_path, relay, "--pin", "4711")
    assert tigress("jared", "receive", shared["invitation"]).code == ExitCode.PIN_NEEDED
    init(tigress, "eve")
    run = tigress("eve", "receive", shared["invitation"])
    assert run.code == ExitCode.TRANSFER_FAILED
    assert "Another device has already accepted this share" in run.out


def test_untrusted_relay(tigress: Tigress, tmp_path: Path, relay: RelayProcess) -> None:
    shared = home_share(tigress, tmp_path, relay)
    run = tigress(
        "jared",
        "receive",
        shared["invitation"],
        env={"TIGRESS_TRUSTED_RELAYS": "https://relay.example"},
    )
    assert run.code == ExitCode.REFUSED
    assert "not on this device's list of trusted relays" in run.err


def test_usage_errors(tigress: Tigress, tmp_path: Path, relay: RelayProcess) -> None:
    init(tigress, "a")
    tigress("a", "home", "setup", "--lock", str(tmp_path / "l.json"), "--label", "Door")
    assert tigress("a", "share", "Door").code == ExitCode.USAGE  # neither --relay nor --direct
    both = tigress("a", "share", "Door", "--relay", relay.base_url, "--direct")
    assert both.code == ExitCode.USAGE
    assert tigress("a", "share", "Door", "--relay", relay.base_url, "--expires", "soon").code == 2
    car_only = tigress("a", "share", "Door", "--relay", relay.base_url, "--entitlements", "unlock")
    assert car_only.code == ExitCode.USAGE and "does not apply" in car_only.err
    bad_ent = tigress("a", "share", "Door", "--relay", relay.base_url, "--entitlements", "fly")
    assert bad_ent.code == ExitCode.USAGE
    again = tigress("a", "home", "setup", "--lock", str(tmp_path / "l.json"), "--label", "X")
    assert again.code == ExitCode.USAGE and "already exists" in again.err
    no_at = tigress("a", "unlock", "Door")
    assert no_at.code == ExitCode.USAGE
    wrong_at = tigress("a", "unlock", "Door", "--at", str(tmp_path / "missing.json"))
    assert wrong_at.code == ExitCode.NOT_FOUND


# --- car ------------------------------------------------------------------------------------


def test_car_share_with_rounds_unlock_and_revoke(
    tigress: Tigress, tmp_path: Path, relay: RelayProcess
) -> None:
    init(tigress, "ben", "amit")
    vehicle = str(tmp_path / "volvo.json")
    assert tigress("ben", "car", "pair", "--vehicle", vehicle, "--label", "Blue Volvo").code == 0
    shared = tigress(
        "ben",
        "--json",
        "share",
        "Blue Volvo",
        "--relay",
        relay.base_url,
        "--entitlements",
        "unlock",
        "--valid-for",
        "2h",
        "--key-label",
        "Amit",
    ).json()
    assert "?v=c" in shared["invitation"]
    run = tigress("amit", "--json", "receive", shared["invitation"])
    assert run.code == 0 and run.json()["transfer"]["status"] == "pending"
    for _ in range(4):
        tigress("ben", "continue")
        run = tigress("amit", "--json", "continue")
        if run.json()["transfers"][0]["status"] == "finished":
            break
    assert run.json()["transfers"][0]["status"] == "finished"
    friend = tigress("amit", "--json", "wallet", "list").json()["credentials"][0]
    assert tigress("amit", "unlock", friend["id"], "--at", vehicle).code == 0
    start = tigress("amit", "unlock", friend["id"], "--at", vehicle, "--start")
    assert start.code == ExitCode.REFUSED  # unlock-only key
    owner = tigress("ben", "--json", "wallet", "show", "Blue Volvo").json()["credential"]
    issued = owner["details"]["issued"]
    assert len(issued) == 1 and issued[0]["entitlements"] == ["unlock"]
    serial = issued[0]["serial"]
    assert tigress("ben", "revoke", "Blue Volvo", "--key", serial).code == ExitCode.USAGE  # no --at
    revoked = tigress("ben", "--json", "revoke", "Blue Volvo", "--key", serial, "--at", vehicle)
    assert revoked.code == 0 and revoked.json()["revoked"] == [serial]
    refused = tigress("amit", "--json", "unlock", friend["id"], "--at", vehicle)
    assert refused.code == ExitCode.REFUSED and refused.json()["opened"] is False
    not_owner = tigress("amit", "revoke", friend["id"], "--key", serial, "--at", vehicle)
    assert not_owner.code == ExitCode.REFUSED


# --- hotel ----------------------------------------------------------------------------------


def test_hotel_booking_check_in_share_and_door(
    tigress: Tigress, relay: RelayProcess, hotel: str
) -> None:
    init(tigress, "bob", "alice")
    booking = tigress(
        None,
        "--json",
        "pe",
        "hotel",
        "booking",
        "--entity",
        hotel,
        "--room",
        "101",
        "--admin-token",
        HOTEL_ADMIN,
    )
    assert booking.code == 0, booking.err
    code = booking.json()["booking_code"]
    bad = tigress(
        None, "pe", "hotel", "booking", "--entity", hotel, "--room", "1", "--admin-token", "x"
    )
    assert bad.code == ExitCode.REFUSED
    checked = tigress("bob", "--json", "hotel", "check-in", "--entity", hotel, "--booking", code)
    assert checked.code == 0, checked.err
    room = checked.json()["credential"]
    assert checked.json()["credential"]["details"]["room"] == "101"
    again = tigress("alice", "hotel", "check-in", "--entity", hotel, "--booking", code)
    assert again.code == ExitCode.REFUSED
    shared = tigress("bob", "--json", "share", room["id"], "--relay", relay.base_url).json()
    received = tigress("alice", "--json", "receive", shared["invitation"])
    assert received.code == 0, received.out
    key = received.json()["credential"]
    door = f"{hotel}/doors/101"
    opened = tigress("alice", "--json", "unlock", key["id"], "--at", door)
    assert opened.code == 0 and opened.json()["opened"] is True
    assert tigress("alice", "unlock", key["id"]).code == 0  # default: the hotel it came from
    # Bob revokes the key he shared (by its serial); Alice's door stays shut, Bob's opens.
    serial = tigress("alice", "--json", "wallet", "show", key["id"]).json()["credential"][
        "details"
    ]["serial"]
    assert tigress("bob", "revoke", room["id"], "--key", serial).code == 0
    assert tigress("alice", "unlock", key["id"], "--at", door).code == ExitCode.REFUSED
    assert tigress("bob", "unlock", room["id"], "--at", door).code == 0


def test_hotel_unreachable(tigress: Tigress) -> None:
    init(tigress, "bob")
    down = f"http://127.0.0.1:{free_port()}"
    run = tigress("bob", "hotel", "check-in", "--entity", down, "--booking", "x" * 20)
    assert run.code == ExitCode.UNREACHABLE
    assert "cannot be reached" in run.err
