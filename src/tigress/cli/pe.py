"""``tigress pe hotel serve|booking``: the hotel's provisioning entity and its front desk."""

from __future__ import annotations

from pathlib import Path

import click

from tigress.cli.context import AppContext, pass_app
from tigress.cli.output import plain
from tigress.verticals.hotel.app import new_admin_token, run_hotel_server
from tigress.verticals.hotel.client import EntityClient
from tigress.verticals.hotel.formats import entity_url

ADMIN_TOKEN_ENV = "TIGRESS_HOTEL_ADMIN_TOKEN"  # noqa: S105 - a variable name


@click.group("pe")
def pe_group() -> None:
    """Provisioning entities (the services that issue credentials)."""


@pe_group.group("hotel")
def hotel_pe() -> None:
    """The hotel's provisioning entity (scenario 2)."""


@hotel_pe.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="SQLite file of the hotel (created if missing).",
)
@click.option("--name", default="Hotel", show_default=True, help="The hotel's name.")
@click.option(
    "--admin-token",
    envvar=ADMIN_TOKEN_ENV,
    help=f"Front-desk token for creating bookings (default: generated and printed; env "
    f"{ADMIN_TOKEN_ENV}).",
)
@pass_app
def serve(  # noqa: PLR0917 - one parameter per option
    app: AppContext, host: str, port: int, db_path: Path, name: str, admin_token: str | None
) -> None:
    """Serve the hotel's API (check-in, share tokens, redemption, doors)."""
    if admin_token is None:
        admin_token = new_admin_token()
        app.output.err.print(
            f"Front-desk admin token (create bookings with 'tigress pe hotel booking'): "
            f"{plain(admin_token)}",
            highlight=False,
        )
    app.output.err.print(f"Hotel {plain(name)} serving on http://{host}:{port}", highlight=False)
    run_hotel_server(host, port, db_path, name=name, admin_token=admin_token)


@hotel_pe.command("booking")
@click.option("--entity", required=True, help="The hotel's service URL.")
@click.option("--room", required=True, help="Room number, e.g. 101.")
@click.option("--guest", default="Guest", show_default=True)
@click.option("--nights", type=click.IntRange(1, 365), default=1, show_default=True)
@click.option("--admin-token", envvar=ADMIN_TOKEN_ENV, required=True, help="The front-desk token.")
@pass_app
def booking(  # noqa: PLR0917 - one parameter per option
    app: AppContext, entity: str, room: str, guest: str, nights: int, admin_token: str
) -> None:
    """Create a booking at the front desk; prints the booking code for 'tigress hotel check-in'."""
    from tigress.verticals.common import ContentError  # noqa: PLC0415

    try:
        base = entity_url(entity, "--entity")
    except ContentError as exc:
        raise click.UsageError(str(exc)) from None
    with app.output.waiting("Creating the booking…"):
        answer = EntityClient(base).post(
            "/v1/admin/bookings",
            {"room": room, "guest": guest, "nights": nights},
            admin_token=admin_token,
        )
    code = answer.get("booking_code")
    if not isinstance(code, str):
        raise click.ClickException("The hotel's answer has no booking code.")
    app.output.say(f"Booking for room {plain(room)}: code [bold]{plain(code)}[/]")
    app.output.emit({"ok": True, "booking_code": code, "room": room})
