"""First credentials: ``tigress home setup``, ``tigress car pair``, ``tigress hotel check-in``."""

from __future__ import annotations

from pathlib import Path

import click

from tigress.cli.context import AppContext, pass_app
from tigress.cli.errors import CliFailure
from tigress.cli.exit_codes import ExitCode
from tigress.cli.output import plain
from tigress.cli.render import credential_details, credential_json
from tigress.verticals.car import setup_car
from tigress.verticals.home import setup_home
from tigress.verticals.hotel import check_in_hotel
from tigress.wallet import Credential


def _report(app: AppContext, credential: Credential, what: str) -> None:
    app.output.say(
        f"[green]{what}[/]: [bold]{plain(credential.label)}[/] is in your wallet as "
        f"{plain(credential.id)}."
    )
    document = credential_json(credential)
    document["details"] = credential_details(credential)
    app.output.emit({"ok": True, "credential": document})


def _new_file(path: Path, what: str) -> None:
    if path.exists():
        raise CliFailure(
            f"{path} already exists; choose a new file for the {what}.", ExitCode.USAGE
        )


@click.group("home")
def home_group() -> None:
    """Home key (scenario 1: the key is copied)."""


@home_group.command("setup")
@click.option(
    "--lock", "lock_path", required=True, type=click.Path(path_type=Path), help="New lock file."
)
@click.option("--label", required=True, help="A name for the lock, e.g. 'Front door'.")
@pass_app
def home_setup(app: AppContext, lock_path: Path, label: str) -> None:
    """Install a (simulated) lock in a file and put its owner's key in the wallet."""
    _new_file(lock_path, "lock")
    with app.wallet() as wallet:
        credential = setup_home(wallet, lock_path, label)
    _report(app, credential, f"Lock installed at {lock_path}")


@click.group("car")
def car_group() -> None:
    """Car key (scenario 3: the owner's device signs the friend's key)."""


@car_group.command("pair")
@click.option(
    "--vehicle",
    "vehicle_path",
    required=True,
    type=click.Path(path_type=Path),
    help="New vehicle file.",
)
@click.option("--label", required=True, help="A name for the car, e.g. 'Blue Volvo'.")
@pass_app
def car_pair(app: AppContext, vehicle_path: Path, label: str) -> None:
    """Create a (simulated) vehicle in a file and pair it with a new owner key."""
    _new_file(vehicle_path, "vehicle")
    with app.wallet() as wallet:
        credential = setup_car(wallet, vehicle_path, label)
    _report(app, credential, f"Vehicle paired ({vehicle_path})")


@click.group("hotel")
def hotel_group() -> None:
    """Hotel key (scenario 2: a single-use token redeemed at the hotel)."""


@hotel_group.command("check-in")
@click.option("--entity", required=True, help="The hotel's service, e.g. http://127.0.0.1:9000.")
@click.option("--booking", required=True, help="The booking code the front desk gave you.")
@pass_app
def hotel_check_in(app: AppContext, entity: str, booking: str) -> None:
    """Redeem a booking code for your room key (bound to a new key in this wallet)."""
    with app.wallet() as wallet, app.output.waiting("Checking in at the hotel…"):
        credential = check_in_hotel(wallet, entity, booking)
    _report(app, credential, "Checked in")
