"""Credentials and transfers as JSON objects (for ``--json``) and as rich tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from tigress.cli.output import plain
from tigress.verticals.base import VerticalError
from tigress.verticals.car import CarKey
from tigress.verticals.home import HomeKey
from tigress.verticals.hotel import HotelKey
from tigress.wallet import Credential, TransferRecord, TransferStatus

STATUS_STYLE = {
    TransferStatus.PENDING: "yellow",
    TransferStatus.WAITING_FOR_PIN: "magenta",
    TransferStatus.FINISHED: "green",
    TransferStatus.FAILED: "red",
    TransferStatus.CANCELLED: "red",
}


def _time(value: datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def credential_json(credential: Credential) -> dict[str, Any]:
    """What a credential is, never its secret (the home key's symmetric key stays out)."""
    return {
        "id": credential.id,
        "label": credential.label,
        "vertical": credential.vertical,
        "format": credential.format,
        "origin": str(credential.origin),
        "revoked": credential.revoked,
        "created_at": _time(credential.created_at),
    }


def credential_details(credential: Credential) -> dict[str, Any]:
    """Vertical-specific, non-secret facts: lock id, room and rights, chain and issued keys."""
    try:
        if credential.vertical == "home":
            home = HomeKey.parse(credential.data)
            return {"lock_id": home.lock_id, "lock_label": home.label}
        if credential.vertical == "hotel":
            hotel = HotelKey.parse(credential.data)
            body = hotel.room_key.body
            return {
                "hotel": hotel.hotel_name,
                "entity": hotel.entity,
                "room": body.room,
                "serial": body.serial,
                "rights": sorted(body.rights),
                "parent": body.parent,
                "not_before": _time(body.not_before),
                "not_after": _time(body.not_after),
            }
        if credential.vertical == "car":
            car = CarKey.parse(credential.data)
            leaf = car.leaf
            return {
                "vehicle_id": car.vehicle_id,
                "vehicle": car.vehicle_label,
                "role": leaf.role,
                "serial": leaf.serial,
                "entitlements": sorted(leaf.entitlements),
                "not_before": _time(leaf.not_before),
                "not_after": _time(leaf.not_after),
                "issued": [
                    {
                        "serial": item.serial,
                        "label": item.label,
                        "entitlements": sorted(item.entitlements),
                        "not_after": _time(item.not_after),
                        "revoked": item.revoked,
                    }
                    for item in car.issued
                ],
            }
    except VerticalError as exc:
        return {"error": str(exc)}
    return {}


def credentials_table(credentials: list[Credential]) -> Table:
    table = Table(title="Credentials", title_justify="left")
    for column in ("id", "label", "type", "origin", "state"):
        table.add_column(column)
    for credential in credentials:
        table.add_row(
            plain(credential.id),
            plain(credential.label),
            plain(credential.vertical),
            plain(credential.origin),
            "[red]revoked[/]" if credential.revoked else "[green]usable[/]",
        )
    return table


def transfer_json(record: TransferRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "role": record.role,
        "transport": record.transport,
        "status": str(record.status),
        "vertical": record.vertical,
        "credential_id": record.credential_id,
        "result_credential_id": record.result_credential_id,
        "relay": record.relay_origin,
        "detail": record.detail,
        "peer_code": record.peer_code,
        "expires_at": _time(record.expires_at),
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
    }


def status_text(record: TransferRecord) -> str:
    style = STATUS_STYLE.get(record.status, "white")
    return f"[{style}]{plain(record.status)}[/]"


def transfers_table(records: list[TransferRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "role", "type", "status", "via", "detail"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            plain(record.id),
            plain(record.role),
            plain(record.vertical or "?"),
            status_text(record),
            plain(record.relay_origin or f"direct {record.direct_host}:{record.direct_port}"),
            plain(record.detail),
        )
    return table
