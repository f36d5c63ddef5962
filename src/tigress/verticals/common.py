"""Helpers every vertical shares: strict field parsing, base64url, signatures, state files.

Parsers here raise :class:`ContentError` (a :class:`VerticalError` with code ``malformed``) and
nothing else, so a hostile peer or file can only ever produce a precise, typed refusal.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tigress.protocol import codec
from tigress.verticals.base import VerticalError
from tigress.wallet.api import Credential, CredentialOrigin, KeyAlgorithm, WalletView

MAX_LABEL_LENGTH = 128
MAX_STATE_FILE_BYTES = 1 << 20
MAX_TIME = 2**40  # bound on Unix-seconds fields: far future, still exact in every JSON reader
MAX_SIGNATURE_SIZE = 80  # Ed25519: 64; DER ECDSA P-256: at most 72
FLOW_STATE_VERSION = 1
Clock = Callable[[], int]  # Unix seconds; tests pass their own
PUBLIC_KEY_SIZES: Mapping[str, int] = {"ed25519": 32, "p256": 65}
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def system_clock() -> int:
    return int(time.time())


class ContentError(VerticalError):
    """Input (a peer's message, a credential, a state file) that is not what its format says."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(code, message)


# --- base64url ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(value: Any, where: str, *, size: int | None = None, max_size: int = 4096) -> bytes:
    """Decode unpadded canonical base64url, optionally of an exact decoded size."""
    limit = (max_size * 4 + 2) // 3
    if not isinstance(value, str) or len(value) > limit or "=" in value:
        raise ContentError(f"{where} must be unpadded base64url of at most {max_size} bytes")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ContentError(f"{where} is not valid base64url") from None
    if b64url(raw) != value:
        raise ContentError(f"{where} is not canonical base64url")
    if size is not None and len(raw) != size:
        raise ContentError(f"{where} must decode to {size} bytes, got {len(raw)}")
    return raw


# --- strict field access -----------------------------------------------------------------------


def expect_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContentError(f"{where} must be a JSON object")
    return value


def exact_fields(
    obj: Mapping[str, Any],
    where: str,
    required: set[str],
    optional: frozenset[str] | set[str] = frozenset(),
) -> None:
    keys = set(obj)
    missing = required - keys
    if missing:
        raise ContentError(f"{where} lacks field(s): {', '.join(sorted(missing))}")
    extra = keys - required - optional
    if extra:
        shown = ", ".join(sorted(str(key)[:40] for key in extra)[:5])
        raise ContentError(f"{where} has unknown field(s): {shown}")


def text_field(
    obj: Mapping[str, Any], name: str, where: str, *, max_length: int = MAX_LABEL_LENGTH
) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ContentError(f"{where}.{name} must be a string of 1 to {max_length} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ContentError(f"{where}.{name} must not contain control characters")
    return value


def id_field(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise ContentError(f"{where}.{name} must be an identifier of 1 to 64 [A-Za-z0-9_-]")
    return value


def int_field(obj: Mapping[str, Any], name: str, where: str, low: int, high: int) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ContentError(f"{where}.{name} must be an integer from {low} to {high}")
    return value


def validity_fields(obj: Mapping[str, Any], where: str) -> tuple[int, int]:
    """``not_before`` and ``not_after`` (Unix seconds), the window being non-empty."""
    not_before = int_field(obj, "not_before", where, 0, MAX_TIME)
    not_after = int_field(obj, "not_after", where, 0, MAX_TIME)
    if not_after <= not_before:
        raise ContentError(f"{where}: not_after must be later than not_before")
    return not_before, not_after


def bool_field(obj: Mapping[str, Any], name: str, where: str) -> bool:
    value = obj.get(name)
    if not isinstance(value, bool):
        raise ContentError(f"{where}.{name} must be true or false")
    return value


def string_set_field(
    obj: Mapping[str, Any], name: str, where: str, allowed: frozenset[str]
) -> tuple[str, ...]:
    """A non-empty, sorted, duplicate-free list drawn from ``allowed`` (canonical form)."""
    value = obj.get(name)
    if not isinstance(value, list) or not value or len(value) > len(allowed):
        raise ContentError(f"{where}.{name} must be a non-empty list")
    if not all(isinstance(item, str) and item in allowed for item in value):
        raise ContentError(f"{where}.{name} may only contain {', '.join(sorted(allowed))}")
    if value != sorted(set(value)):
        raise ContentError(f"{where}.{name} must be sorted and without duplicates")
    return tuple(value)


def algorithm_field(obj: Mapping[str, Any], name: str, where: str) -> KeyAlgorithm:
    value = obj.get(name)
    if value == "ed25519":
        return "ed25519"
    if value == "p256":
        return "p256"
    raise ContentError(f"{where}.{name} must be 'ed25519' or 'p256'")


def public_key_field(
    obj: Mapping[str, Any], name: str, where: str, algorithm: KeyAlgorithm
) -> bytes:
    raw = unb64url(obj.get(name), f"{where}.{name}", size=PUBLIC_KEY_SIZES[algorithm])
    check_public_key(algorithm, raw, f"{where}.{name}")
    return raw


# --- signatures --------------------------------------------------------------------------------


def signing_input(purpose: str, body: Mapping[str, Any]) -> bytes:
    """Domain-separated bytes to sign: ``tigress/v1 <purpose> NUL canonical-json(body)``."""
    try:
        encoded = codec.encode(body)
    except codec.CodecError as exc:
        raise ContentError(f"cannot encode the signed {purpose} data: {exc}") from None
    return b"tigress/v1 " + purpose.encode("ascii") + b"\x00" + encoded


BodyT = TypeVar("BodyT")


def parse_signed_object(
    value: Any, where: str, parse_body: Callable[[Any, str], BodyT]
) -> tuple[BodyT, bytes]:
    """Parse ``{"body": {...}, "sig": b64url}`` into the parsed body and the signature bytes."""
    obj = expect_object(value, where)
    exact_fields(obj, where, {"body", "sig"})
    body = parse_body(obj["body"], f"{where}.body")
    return body, unb64url(obj["sig"], f"{where}.sig", max_size=MAX_SIGNATURE_SIZE)


def check_public_key(algorithm: KeyAlgorithm, raw: bytes, where: str) -> None:
    try:
        _load_public_key(algorithm, raw)
    except ValueError:
        raise ContentError(f"{where} is not a valid {algorithm} public key") from None


def _load_public_key(
    algorithm: KeyAlgorithm, raw: bytes
) -> Ed25519PublicKey | ec.EllipticCurvePublicKey:
    if algorithm == "ed25519":
        if len(raw) != 32:
            raise ValueError("Ed25519 public keys are 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    if len(raw) != 65 or raw[0] != 0x04:
        raise ValueError("P-256 public keys are 65-byte uncompressed points")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def verify_signature(
    algorithm: KeyAlgorithm, public_key: bytes, signature: bytes, data: bytes
) -> bool:
    """True only for a valid signature; malformed keys or signatures are simply invalid."""
    try:
        key = _load_public_key(algorithm, public_key)
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- JSON state files (locks and vehicles) -----------------------------------------------------


@contextlib.contextmanager
def locked_state(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one state file across threads and processes."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_state_file(path: Path, what: str) -> Mapping[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_STATE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ContentError(f"no {what} at {path}", code="not-found") from None
    except OSError as exc:
        raise ContentError(
            f"cannot read the {what} at {path}: {exc.strerror}", code="io-error"
        ) from None
    if len(raw) > MAX_STATE_FILE_BYTES:
        raise ContentError(f"the {what} file {path} is larger than {MAX_STATE_FILE_BYTES} bytes")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise ContentError(f"the {what} file {path} is not valid JSON") from None
    return expect_object(value, what)


def write_state_file(path: Path, state: Mapping[str, Any]) -> None:
    """Write atomically (temp file + rename) with owner-only permissions: it holds keys."""
    data = json.dumps(state, sort_keys=True, indent=2).encode("utf-8") + b"\n"
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


# --- credentials in the wallet -----------------------------------------------------------------


def new_credential_id() -> str:
    return uuid.uuid4().hex


def store_credential(
    wallet: WalletView,
    *,
    vertical: str,
    credential_format: str,
    label: str,
    origin: CredentialOrigin,
    data: Mapping[str, Any],
    key_id: str | None = None,
) -> Credential:
    """Add a new credential, with a fresh id and created now, to ``wallet``."""
    credential = Credential(
        id=new_credential_id(),
        vertical=vertical,
        format=credential_format,
        label=label,
        origin=origin,
        data=data,
        key_id=key_id,
        created_at=datetime.now(UTC),
    )
    wallet.credentials.add(credential)
    return credential


def credential_data(
    credential: Credential, vertical: str, credential_format: str, what: str
) -> Mapping[str, Any]:
    """A stored credential's ``data``, once it is known to be of this vertical and format."""
    if credential.vertical != vertical or credential.format != credential_format:
        raise VerticalError("wrong-credential", f"credential {credential.id[:12]} is not a {what}")
    return credential.data


# --- flows -------------------------------------------------------------------------------------


def flow_state_dict(vertical: str, role: str, **fields: Any) -> dict[str, Any]:
    """A flow's persisted state: the envelope :func:`flow_state` checks, then its own fields."""
    return {"v": FLOW_STATE_VERSION, "vertical": vertical, "role": role, **fields}


def flow_state(
    state: Mapping[str, Any], vertical: str, role: str, fields: set[str]
) -> Mapping[str, Any]:
    """Check a persisted flow state's envelope: the right vertical, role and fields."""
    where = f"{vertical} {role} flow state"
    obj = expect_object(state, where)
    exact_fields(obj, where, {"v", "vertical", "role", *fields})
    if obj["v"] != FLOW_STATE_VERSION or obj["vertical"] != vertical or obj["role"] != role:
        raise ContentError(f"not a version-1 {where}", code="bad-state")
    return obj


def unexpected(vertical: str, info_format: str) -> VerticalError:
    return VerticalError(
        "unexpected-message",
        f"the {vertical} transfer did not expect a {info_format[:60]} message now",
    )
