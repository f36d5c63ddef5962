"""Web Push end to end on loopback: a local push endpoint receives the POST, and the test, as the
browser would, decrypts it with the subscription's private key and checks the VAPID token."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from relay.notify.receiver import Receiver, wait_until
from relay.notify.webpush_receiver import b64url, decrypt_push, verify_vapid
from tigress.relay.notify import BackgroundPushDispatcher, PushConfig

pytestmark = pytest.mark.anyio


@dataclass
class Subscription:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    token_data: str


def subscribe(endpoint: str) -> Subscription:
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    auth = bytes(range(16))
    token = {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
    }
    return Subscription(private_key, auth, json.dumps(token))


@pytest.fixture
async def dispatcher(
    make_config: Callable[..., PushConfig],
) -> AsyncIterator[BackgroundPushDispatcher]:
    instance = BackgroundPushDispatcher(make_config(webpush_urgency="high", webpush_ttl=600))
    await instance.start()
    try:
        yield instance
    finally:
        await instance.aclose()


async def test_push_message_decrypts_and_vapid_verifies(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    receiver.default_status = 201
    subscription = subscribe(receiver.url("/wpush/v2/abc"))
    assert dispatcher.validate("webpush", subscription.token_data)
    mailbox = str(uuid.uuid4())
    dispatcher.notify("webpush", subscription.token_data, mailbox_id=mailbox, seq=12)
    await receiver.wait_for(1)
    await wait_until(lambda: dispatcher.stats()["delivered"] == 1)

    request = receiver.requests[0]
    assert request.method == "POST"
    assert request.target == "/wpush/v2/abc"
    assert request.header("content-encoding") == "aes128gcm"
    assert request.header("ttl") == "600"
    assert request.header("urgency") == "high"
    topic = request.header("topic")
    assert len(topic) == 32
    assert mailbox not in topic

    plaintext = decrypt_push(request.body, subscription.private_key, subscription.auth)
    assert json.loads(plaintext) == {"type": "mailbox.changed", "mailbox": mailbox, "seq": 12}
    assert mailbox.encode() not in request.body

    claims, key = verify_vapid(request.header("authorization"))
    assert key == dispatcher.vapid_public_key
    assert claims["aud"] == f"http://127.0.0.1:{receiver.port}"
    assert claims["sub"] == "mailto:ops@relay.test"
    now = time.time()
    assert now < claims["exp"] <= now + 24 * 3600


async def test_ciphertext_size_does_not_reveal_the_sequence_number(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    subscription = subscribe(receiver.url())
    dispatcher.notify("webpush", subscription.token_data, mailbox_id="m-a", seq=1)
    await receiver.wait_for(1)
    dispatcher.notify("webpush", subscription.token_data, mailbox_id="m-a", seq=123456789)
    await receiver.wait_for(2)
    assert len(receiver.requests[0].body) == len(receiver.requests[1].body)
    # Same mailbox, same topic: the push service may replace an undelivered older wake-up.
    assert receiver.requests[0].header("topic") == receiver.requests[1].header("topic")


@pytest.mark.parametrize("status", [404, 410])
async def test_subscription_gone(
    make_config: Callable[..., PushConfig], receiver: Receiver, status: int
) -> None:
    gone: list[str] = []
    receiver.script = [status]
    dispatcher = BackgroundPushDispatcher(
        make_config(), on_gone=lambda token_type, data: gone.append(data)
    )
    await dispatcher.start()
    try:
        subscription = subscribe(receiver.url())
        dispatcher.notify("webpush", subscription.token_data, mailbox_id="m-1", seq=1)
        await wait_until(lambda: dispatcher.stats()["gone"] == 1)
        assert gone == [subscription.token_data]
        assert dispatcher.is_gone("webpush", subscription.token_data)
        assert dispatcher.stats()["retried"] == 0
        dispatcher.notify("webpush", subscription.token_data, mailbox_id="m-1", seq=2)
        assert dispatcher.stats()["gone_skipped"] == 1
    finally:
        await dispatcher.aclose()


async def test_push_service_errors_are_retried(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    receiver.script = [503, 500]
    receiver.default_status = 201
    subscription = subscribe(receiver.url())
    dispatcher.notify("webpush", subscription.token_data, mailbox_id="m-1", seq=1)
    await wait_until(lambda: dispatcher.stats()["delivered"] == 1)
    assert len(receiver.requests) == 3
    # Every attempt is a freshly encrypted, independently decryptable message.
    bodies = [request.body for request in receiver.requests]
    assert len(set(bodies)) == 3
    for body in bodies:
        decrypted = json.loads(decrypt_push(body, subscription.private_key, subscription.auth))
        assert decrypted["seq"] == 1


async def test_vapid_key_persists_across_restarts(
    make_config: Callable[..., PushConfig],
) -> None:
    config = make_config()
    first = BackgroundPushDispatcher(config)
    second = BackgroundPushDispatcher(config)
    assert first.vapid_public_key == second.vapid_public_key
    assert config.vapid_key_path is not None
    assert config.vapid_key_path.stat().st_mode & 0o777 == 0o600
