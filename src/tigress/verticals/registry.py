"""The verticals this build knows, by name, and how to pick one for an incoming opening."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from tigress.protocol.messages import ProvisioningInfo
from tigress.verticals.base import UnlockResult, VerticalError, VerticalSpec
from tigress.verticals.car import CarSpec, unlock_car
from tigress.verticals.home import HomeSpec, unlock_home
from tigress.verticals.hotel import HotelSpec, unlock_hotel
from tigress.wallet.api import Credential, WalletView

VERTICALS: Mapping[str, VerticalSpec] = MappingProxyType(
    {"home": HomeSpec(), "hotel": HotelSpec(), "car": CarSpec()}
)


def spec_for_opening(info: ProvisioningInfo) -> VerticalSpec:
    """The vertical that understands this opening message; VerticalError if none does."""
    for spec in VERTICALS.values():
        if spec.accepts(info):
            return spec
    raise VerticalError(
        "unsupported-format", f"no vertical understands the format {info.format[:60]!r}"
    )


def unlock(
    wallet: WalletView, credential: Credential, access_point: str | Path | None
) -> UnlockResult:
    """Present ``credential`` at ``access_point``: a lock or vehicle state file, or a hotel URL."""
    if credential.vertical == "home":
        if access_point is None:
            raise VerticalError("no-access-point", "say which lock (its state file) to open")
        return unlock_home(wallet, credential, Path(access_point))
    if credential.vertical == "car":
        if access_point is None:
            raise VerticalError("no-access-point", "say which vehicle (its state file) to open")
        return unlock_car(wallet, credential, Path(access_point))
    if credential.vertical == "hotel":
        return unlock_hotel(wallet, credential, None if access_point is None else str(access_point))
    raise VerticalError("unsupported-credential", f"no vertical named {credential.vertical[:20]!r}")
