"""At the access point: ``tigress unlock`` and ``tigress revoke``."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tigress.cli.context import AppContext, pass_app
from tigress.cli.errors import CliFailure
from tigress.cli.exit_codes import ExitCode
from tigress.cli.output import plain
from tigress.verticals.base import UnlockResult
from tigress.verticals.car import revoke_car_key, unlock_car
from tigress.verticals.home import rekey_home
from tigress.verticals.hotel import revoke_hotel_key
from tigress.verticals.registry import unlock as unlock_at
from tigress.wallet import Credential

# A door URL as people write it: the entity's base URL, optionally with /[v1/]doors/<room>.
_DOOR_PATH = re.compile(r"^(?P<base>.+?)(?:/v1)?/doors/[^/?#]+/?$")


def hotel_entity_from_door(url: str) -> str:
    """``http://h:9000/doors/101`` or ``…/v1/doors/101`` -> ``http://h:9000`` (its service)."""
    match = _DOOR_PATH.match(url.strip())
    return match.group("base") if match else url.strip().rstrip("/")


def _access_path(credential: Credential, at: str | None, what: str) -> Path:
    if at is None:
        raise CliFailure(
            f"Say which {what} with --at (its state file) for {credential.label!r}.",
            ExitCode.USAGE,
        )
    path = Path(at)
    if not path.is_file():
        raise CliFailure(f"No {what} file at {path}; check the --at path.", ExitCode.NOT_FOUND)
    return path


@click.command("unlock")
@click.argument("credential")
@click.option(
    "--at",
    "access_point",
    help="The lock or vehicle file, or the hotel door's URL (default for hotel: its service).",
)
@click.option("--start", is_flag=True, help="Car: start the engine (needs the drive entitlement).")
@pass_app
def unlock(app: AppContext, credential: str, access_point: str | None, start: bool) -> None:
    """Present CREDENTIAL at an access point; it opens or refuses."""
    with app.wallet() as wallet:
        found = wallet.credentials.find(credential)
        if start and found.vertical != "car":
            raise CliFailure("--start is for car keys only.", ExitCode.USAGE)
        result: UnlockResult
        with app.output.waiting("Presenting the key…"):
            if found.vertical in ("home", "car"):
                what = "lock" if found.vertical == "home" else "vehicle"
                path = _access_path(found, access_point, what)
                if start:
                    result = unlock_car(wallet, found, path, action="start")
                else:
                    result = unlock_at(wallet, found, path)
            else:
                door = None if access_point is None else hotel_entity_from_door(access_point)
                result = unlock_at(wallet, found, door)
    action = "started" if start else "opened"
    if result.opened:
        app.output.say(f"[bold green]{action.capitalize()}[/]: {plain(found.label)}.")
    else:
        app.output.say(f"[bold red]Refused[/]: {plain(found.label)} — {plain(result.reason)}.")
    app.output.emit(
        {
            "ok": result.opened,
            "opened": result.opened,
            "reason": result.reason,
            "credential": found.id,
            "exit_code": int(ExitCode.OK if result.opened else ExitCode.REFUSED),
        }
    )
    if not result.opened:
        raise click.exceptions.Exit(int(ExitCode.REFUSED))


@click.command("revoke")
@click.argument("credential")
@click.option("--key", "serial", help="Serial of the key to revoke (see 'tigress wallet show').")
@click.option("--at", "access_point", help="Car: the vehicle file; home: the lock file.")
@pass_app
def revoke(app: AppContext, credential: str, serial: str | None, access_point: str | None) -> None:
    """Revoke a key: car — a key the owner issued; hotel — a key you shared, or your own;
    home — rotate the lock's key (every copy stops working, the owner keeps a new one)."""
    out = app.output
    with app.wallet() as wallet:
        found = wallet.credentials.find(credential)
        revoked: list[str]
        if found.vertical == "car":
            if serial is None:
                raise CliFailure(
                    "Say which key with --key SERIAL ('tigress wallet show' lists the keys "
                    "this owner issued).",
                    ExitCode.USAGE,
                )
            path = _access_path(found, access_point, "vehicle")
            revoke_car_key(wallet, found, serial, path)
            revoked = [serial]
            out.say(f"[green]Revoked[/] key {plain(serial)}: the car no longer accepts it.")
        elif found.vertical == "hotel":
            with out.waiting("Asking the hotel to revoke…"):
                revoked = revoke_hotel_key(wallet, found, serial)
            out.say(
                f"[green]Revoked[/] at the hotel: {plain(', '.join(revoked))} "
                "(and any key shared from it)."
            )
        elif found.vertical == "home":
            if serial is not None:
                raise CliFailure(
                    "A home key has no per-copy serials: copies are identical. Revoking rotates "
                    "the lock's key; leave out --key.",
                    ExitCode.USAGE,
                )
            path = _access_path(found, access_point, "lock")
            rekey_home(wallet, found, path)
            revoked = []
            out.say(
                "[green]Rotated[/] the lock's key: every copy shared so far stops working; "
                "your credential holds the new key. Share it again with whoever should keep access."
            )
        else:
            raise CliFailure(
                f"This program cannot revoke {found.vertical!r} credentials.", ExitCode.USAGE
            )
    out.emit({"ok": True, "exit_code": 0, "credential": found.id, "revoked": revoked})
