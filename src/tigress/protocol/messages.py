"""Messages carried inside the end-to-end channel.

Every channel message is one canonical JSON object (see ``codec``) with a type field ``t``.
Rule for unknown content, version 1: unknown ``t`` values and unknown fields are *rejected*
(a peer speaking a newer dialect must negotiate it, not be half-understood), except inside a
Provisioning Information ``content`` object, which belongs to the vertical that defines the
``format`` and is passed through untouched.

Types:
- ``offer``     sender -> receiver, only in the first handshake message: whether a PIN is
                required and, optionally, the first Provisioning Information.
- ``provision`` either way, any number of times: Provisioning Information ``{format, content}``
                as in draft-vinokurov-tigress-http-00.
- ``pin``       the CPace steps ``start`` (receiver), ``reply`` (sender), ``confirm`` (receiver).
- ``done``      the sender of it has finished successfully.
- ``cancel``    the sender of it stops the transfer, with a reason code.
- ``error``     the sender of it stops the transfer because something went wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tigress.protocol import codec
from tigress.protocol.errors import ProtocolError


class MessageError(ProtocolError):
    """A channel message that decrypted correctly but is not a valid message."""


# Dotted names such as ``digitalwallet.generic.authorizationToken`` (the draft uses camelCase).
FORMAT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+$")
MAX_FORMAT_LENGTH = 128
MAX_TEXT_LENGTH = 512
REASON_PATTERN = re.compile(r"^[a-z0-9-]{1,64}$")
MAX_PIN_ATTEMPTS = 10

# Formats registered by the draft; verticals add their own ``tigress.*`` formats.
FORMAT_CCC_CAR_KEY = "digitalwallet.carkey.ccc"
FORMAT_AUTHORIZATION_TOKEN = "digitalwallet.generic.authorizationToken"  # noqa: S105


class CancelReason(StrEnum):
    """Why a side stopped.  Peers must accept unknown codes (shown as ``other``)."""

    USER_CANCELLED = "user-cancelled"
    DECLINED = "declined"
    EXPIRED = "expired"
    PIN_ATTEMPTS_EXCEEDED = "pin-attempts-exceeded"
    REVOKED = "revoked"


@dataclass(frozen=True)
class ProvisioningInfo:
    """The draft's Provisioning Information: a ``format`` name and its ``content`` object."""

    format: str
    content: Mapping[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        _check_format(self.format)
        if not isinstance(self.content, Mapping):
            raise MessageError("provisioning content must be a JSON object")


@dataclass(frozen=True)
class Offer:
    pin_attempts: int | None  # None: no PIN; otherwise how many guesses the sender allows
    provision: ProvisioningInfo | None


@dataclass(frozen=True)
class Provision:
    info: ProvisioningInfo


@dataclass(frozen=True)
class PinStart:
    element: bytes  # the receiver's CPace message (Ya with its associated data)


@dataclass(frozen=True)
class PinReply:
    element: bytes  # the sender's CPace message (Yb with its associated data)
    confirmation: bytes  # the sender's key-confirmation tag


@dataclass(frozen=True)
class PinConfirm:
    confirmation: bytes  # the receiver's key-confirmation tag


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Cancel:
    reason: str
    message: str | None = None


@dataclass(frozen=True)
class Error:
    code: str
    message: str | None = None


Message = Offer | Provision | PinStart | PinReply | PinConfirm | Done | Cancel | Error


def encode_message(message: Message) -> bytes:
    """Canonical bytes of ``message``."""
    return codec.encode(_to_json(message))


def decode_message(data: bytes) -> Message:
    """Parse and strictly validate one channel message."""
    try:
        obj = codec.decode(data)
    except codec.CodecError as exc:
        raise MessageError(f"channel message is not canonical JSON: {exc}") from exc
    return _from_json(obj)


def _to_json(message: Message) -> dict[str, Any]:
    match message:
        case Offer(pin_attempts=attempts, provision=info):
            return {
                "t": "offer",
                "pin": None if attempts is None else {"attempts": attempts},
                "provision": None if info is None else _info_json(info),
            }
        case Provision(info=info):
            return {"t": "provision", **_info_json(info)}
        case PinStart(element=element):
            return {"t": "pin", "step": "start", "y": _b64(element)}
        case PinReply(element=element, confirmation=tag):
            return {"t": "pin", "step": "reply", "y": _b64(element), "tag": _b64(tag)}
        case PinConfirm(confirmation=tag):
            return {"t": "pin", "step": "confirm", "tag": _b64(tag)}
        case Done():
            return {"t": "done"}
        case Cancel(reason=reason, message=text):
            _check_reason(reason)
            return _with_text({"t": "cancel", "reason": reason}, text)
        case Error(code=code, message=text):
            _check_reason(code)
            return _with_text({"t": "error", "code": code}, text)
    raise MessageError(f"not a channel message: {type(message).__name__}")


def _from_json(obj: Mapping[str, Any]) -> Message:
    kind = obj.get("t")
    if kind == "offer":
        _exact_fields(obj, {"t", "pin", "provision"})
        pin = obj["pin"]
        attempts: int | None = None
        if pin is not None:
            pin_obj = _object(pin, "offer.pin")
            _exact_fields(pin_obj, {"attempts"}, "offer.pin")
            attempts = _int(pin_obj["attempts"], "offer.pin.attempts", 1, MAX_PIN_ATTEMPTS)
        provision = obj["provision"]
        info = None if provision is None else _info(_object(provision, "offer.provision"))
        if attempts is not None and info is not None:
            raise MessageError("an offer that requires a PIN must not carry provisioning data")
        return Offer(pin_attempts=attempts, provision=info)
    if kind == "provision":
        _exact_fields(obj, {"t", "format", "content"})
        return Provision(info=_info(obj))
    if kind == "pin":
        step = obj.get("step")
        if step == "start":
            _exact_fields(obj, {"t", "step", "y"})
            return PinStart(element=_unb64(obj["y"], "pin.y"))
        if step == "reply":
            _exact_fields(obj, {"t", "step", "y", "tag"})
            return PinReply(
                element=_unb64(obj["y"], "pin.y"), confirmation=_unb64(obj["tag"], "pin.tag")
            )
        if step == "confirm":
            _exact_fields(obj, {"t", "step", "tag"})
            return PinConfirm(confirmation=_unb64(obj["tag"], "pin.tag"))
        raise MessageError(f"unknown pin step {step!r}")
    if kind == "done":
        _exact_fields(obj, {"t"})
        return Done()
    if kind in ("cancel", "error"):
        key = "reason" if kind == "cancel" else "code"
        _exact_fields(obj, {"t", key, "message"}, required={"t", key})
        code = obj[key]
        if not isinstance(code, str):
            raise MessageError(f"{kind}.{key} must be a string")
        _check_reason(code)
        text = obj.get("message")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH):
            raise MessageError(
                f"{kind}.message must be a string of at most {MAX_TEXT_LENGTH} characters"
            )
        return (
            Cancel(reason=code, message=text)
            if kind == "cancel"
            else Error(code=code, message=text)
        )
    raise MessageError(f"unknown message type {kind!r}")


def _info_json(info: ProvisioningInfo) -> dict[str, Any]:
    return {"format": info.format, "content": dict(info.content)}


def _info(obj: Mapping[str, Any]) -> ProvisioningInfo:
    fmt = obj.get("format")
    if not isinstance(fmt, str):
        raise MessageError("provisioning format must be a string")
    if "content" not in obj:
        raise MessageError("provisioning information lacks 'content'")
    extra = set(obj) - {"t", "format", "content"}
    if extra:
        raise MessageError(f"unknown provisioning field(s): {', '.join(sorted(extra))}")
    return ProvisioningInfo(format=fmt, content=_object(obj["content"], "content"))


def _check_format(fmt: str) -> None:
    if len(fmt) > MAX_FORMAT_LENGTH or not FORMAT_PATTERN.fullmatch(fmt):
        raise MessageError(
            f"invalid provisioning format {fmt[:40]!r}: expected a dotted name "
            f"of at most {MAX_FORMAT_LENGTH} characters"
        )


def _check_reason(code: str) -> None:
    if len(code) > 64 or not REASON_PATTERN.fullmatch(code):
        raise MessageError(
            f"invalid reason code {code[:40]!r}: expected lowercase-hyphenated words"
        )


def _with_text(obj: dict[str, Any], text: str | None) -> dict[str, Any]:
    if text is not None:
        if len(text) > MAX_TEXT_LENGTH:
            raise MessageError(f"message text longer than {MAX_TEXT_LENGTH} characters")
        obj["message"] = text
    return obj


def _exact_fields(
    obj: Mapping[str, Any],
    allowed: set[str],
    where: str | None = None,
    *,
    required: set[str] | None = None,
) -> None:
    name = where or str(obj.get("t"))
    missing = (allowed if required is None else required) - set(obj)
    if missing:
        raise MessageError(f"{name} message lacks field(s): {', '.join(sorted(missing))}")
    extra = set(obj) - allowed
    if extra:
        raise MessageError(f"{name} message has unknown field(s): {', '.join(sorted(extra))}")


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MessageError(f"{where} must be a JSON object")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MessageError(f"{where} must be an integer from {low} to {high}")
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or len(value) > 1024 or "=" in value:
        raise MessageError(f"{where} must be unpadded base64url of at most 1024 characters")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MessageError(f"{where} is not valid base64url") from exc
    if _b64(raw) != value:
        raise MessageError(f"{where} is not canonical base64url")
    return raw
