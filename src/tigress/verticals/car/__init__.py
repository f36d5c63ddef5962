"""Scenario 3, the car key: the owner's device signs a key the friend's device generated."""

from tigress.verticals.car.certificates import CertBody, Certificate, ChainError, verify_chain
from tigress.verticals.car.messages import (
    KEY_CREATION_REQUEST_FORMAT,
    KEY_IMPORT_FORMAT,
    KEY_SIGNING_REQUEST_FORMAT,
    KeyCreationRequest,
    KeyImport,
    KeySigningRequest,
)
from tigress.verticals.car.spec import (
    CAR_KEY_FORMAT,
    CarKey,
    CarReceiverFlow,
    CarSenderFlow,
    CarSpec,
    IssuedKey,
    revoke_car_key,
    setup_car,
    unlock_car,
)
from tigress.verticals.car.vehicle import AuthAttempt, Vehicle, auth_message

__all__ = [
    "CAR_KEY_FORMAT",
    "KEY_CREATION_REQUEST_FORMAT",
    "KEY_IMPORT_FORMAT",
    "KEY_SIGNING_REQUEST_FORMAT",
    "AuthAttempt",
    "CarKey",
    "CarReceiverFlow",
    "CarSenderFlow",
    "CarSpec",
    "CertBody",
    "Certificate",
    "ChainError",
    "IssuedKey",
    "KeyCreationRequest",
    "KeyImport",
    "KeySigningRequest",
    "Vehicle",
    "auth_message",
    "revoke_car_key",
    "setup_car",
    "unlock_car",
    "verify_chain",
]
