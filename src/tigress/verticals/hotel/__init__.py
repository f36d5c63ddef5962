"""Scenario 2, the hotel key: a share token redeemed at the hotel's provisioning entity."""

from tigress.verticals.hotel.app import (
    HotelConfig,
    create_hotel_app,
    hotel_server_in_thread,
    run_hotel_server,
)
from tigress.verticals.hotel.formats import ROOM_KEY_FORMAT, SHARE_FORMAT, RoomKey, ShareOffer
from tigress.verticals.hotel.service import HotelRefusal, HotelService
from tigress.verticals.hotel.spec import (
    HotelKey,
    HotelReceiverFlow,
    HotelSenderFlow,
    HotelSpec,
    check_in_hotel,
    redeem_share,
    revoke_hotel_key,
    unlock_hotel,
)

__all__ = [
    "ROOM_KEY_FORMAT",
    "SHARE_FORMAT",
    "HotelConfig",
    "HotelKey",
    "HotelReceiverFlow",
    "HotelRefusal",
    "HotelSenderFlow",
    "HotelService",
    "HotelSpec",
    "RoomKey",
    "ShareOffer",
    "check_in_hotel",
    "create_hotel_app",
    "hotel_server_in_thread",
    "redeem_share",
    "revoke_hotel_key",
    "run_hotel_server",
    "unlock_hotel",
]
