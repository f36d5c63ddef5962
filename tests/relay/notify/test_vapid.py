"""The relay's VAPID key: generated once, persisted privately, shared, and signing valid JWTs."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from relay.notify.webpush_receiver import verify_vapid
from tigress.relay.notify import PushConfig, PushConfigError, VapidKey, VapidKeyError
from tigress.relay.notify.vapid import TOKEN_LIFETIME_SECONDS


def test_key_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "state" / "vapid.pem"
    created = VapidKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert VapidKey.load_or_create(path).public_key_b64url == created.public_key_b64url
    assert list(path.parent.iterdir()) == [path], "no temporary files are left behind"
    assert len(created.public_key_raw) == 65
    assert created.public_key_raw[0] == 4
    assert "PRIVATE" not in repr(created)


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "vapid.pem"
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(VapidKey.load_or_create(path).public_key_b64url)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(keys) == 8
    assert len(set(keys)) == 1


def test_configured_pem_is_used() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    loaded = VapidKey.from_pem(pem)
    assert loaded.public_key_raw == key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@pytest.mark.parametrize(
    "pem",
    [
        b"not a pem",
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ],
)
def test_unusable_pem_is_refused(pem: bytes) -> None:
    with pytest.raises(VapidKeyError):
        VapidKey.from_pem(pem)


def test_jwt_claims_and_signature() -> None:
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    header = key.authorization("https://push.example.net", "mailto:ops@example.org", now=1000)
    claims, public = verify_vapid(header)
    assert claims == {
        "aud": "https://push.example.net",
        "exp": 1000 + TOKEN_LIFETIME_SECONDS,
        "sub": "mailto:ops@example.org",
    }
    assert TOKEN_LIFETIME_SECONDS <= 24 * 3600
    assert public == key.public_key_b64url


def test_tokens_are_reused_per_audience_then_renewed() -> None:
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    first = key.authorization("https://a.example", "mailto:x@example.org", now=1000)
    assert key.authorization("https://a.example", "mailto:x@example.org", now=1060) == first
    assert key.authorization("https://b.example", "mailto:x@example.org", now=1060) != first
    renewed = key.authorization("https://a.example", "mailto:x@example.org", now=1000 + 7 * 3600)
    assert renewed != first
    token = renewed.split("t=", 1)[1].split(",", 1)[0]
    assert (
        json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
        == 1000 + 7 * 3600 + TOKEN_LIFETIME_SECONDS
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vapid_subject": "ops@example.org"}, "mailto"),
        ({"vapid_key_path": None}, "vapid_key_path"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"queue_size": 0}, "queue_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"webpush_urgency": "urgent"}, "urgency"),
        ({"webpush_ttl": -1}, "webpush_ttl"),
        ({"backoff_base": 100.0}, "backoff_base"),
        ({"token_data_max_bytes": 10}, "token_data_max_bytes"),
    ],
)
def test_config_rejects_bad_settings(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    settings: dict[str, object] = {"vapid_key_path": tmp_path / "k.pem"}
    settings.update(overrides)
    with pytest.raises(PushConfigError, match=message):
        PushConfig(**settings)  # type: ignore[arg-type]
