"""Scenario 1, the home key: a symmetric key copied from one phone to another."""

from tigress.verticals.home.credential import HOME_KEY_FORMAT, HomeKey
from tigress.verticals.home.lock import HomeLock, home_response
from tigress.verticals.home.spec import (
    HomeReceiverFlow,
    HomeSenderFlow,
    HomeSpec,
    rekey_home,
    setup_home,
    unlock_home,
)

__all__ = [
    "HOME_KEY_FORMAT",
    "HomeKey",
    "HomeLock",
    "HomeReceiverFlow",
    "HomeSenderFlow",
    "HomeSpec",
    "home_response",
    "rekey_home",
    "setup_home",
    "unlock_home",
]
