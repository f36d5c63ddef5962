"""Webhooks end to end on loopback: a real receiver gets a Standard Webhooks-signed POST."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from relay.notify.receiver import HANG, Receiver, wait_until
from tigress.relay.notify import BackgroundPushDispatcher, PushConfig, VapidKey
from tigress.relay.notify.delivery import Deliverer, Outcome
from tigress.relay.notify.tokens import WebhookToken
from tigress.relay.notify.urlpolicy import TargetUrl, UrlPolicy

pytestmark = pytest.mark.anyio

SECRET_BYTES = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
EXPECTED_HEADERS = {
    "host",
    "content-type",
    "content-length",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


def token_for(url: str) -> str:
    return json.dumps({"url": url, "secret": SECRET})


def independent_signature_ok(request_headers: dict[str, str], body: bytes) -> bool:
    signed = f"{request_headers['webhook-id']}.{request_headers['webhook-timestamp']}.".encode()
    mac = hmac.new(SECRET_BYTES, signed + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return hmac.compare_digest(request_headers["webhook-signature"], expected)


@pytest.fixture
async def dispatcher(
    make_config: Callable[..., PushConfig],
) -> AsyncIterator[BackgroundPushDispatcher]:
    instance = BackgroundPushDispatcher(make_config())
    await instance.start()
    try:
        yield instance
    finally:
        await instance.aclose()


async def test_signed_post_carries_only_the_wake_up(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    token = token_for(receiver.url("/hooks/device-7?k=v"))
    assert dispatcher.validate("webhook", token)
    mailbox = str(uuid.uuid4())
    dispatcher.notify("webhook", token, mailbox_id=mailbox, seq=3)
    await receiver.wait_for(1)
    await wait_until(lambda: dispatcher.stats()["delivered"] == 1)

    request = receiver.requests[0]
    assert request.method == "POST"
    assert request.target == "/hooks/device-7?k=v"
    assert request.header_names == EXPECTED_HEADERS
    headers = {name.lower(): value for name, value in request.headers}
    assert headers["host"] == f"127.0.0.1:{receiver.port}"
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert independent_signature_ok(headers, request.body)
    assert json.loads(request.body) == {"type": "mailbox.changed", "mailbox": mailbox, "seq": 3}
    assert SECRET not in request.body.decode()
    assert SECRET not in str(request.headers)


async def test_server_errors_are_retried_with_the_same_id_until_delivered(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    receiver.script = [500, 503, 200]
    token = token_for(receiver.url())
    dispatcher.notify("webhook", token, mailbox_id="m-1", seq=1)
    await wait_until(lambda: dispatcher.stats()["delivered"] == 1)
    assert len(receiver.requests) == 3
    stats = dispatcher.stats()
    assert (stats["retried"], stats["failed"], stats["delivered"]) == (2, 0, 1)
    ids = {request.header("webhook-id") for request in receiver.requests}
    assert len(ids) == 1, "a retry is the same message: receivers deduplicate on webhook-id"
    for request in receiver.requests:
        headers = {name.lower(): value for name, value in request.headers}
        assert independent_signature_ok(headers, request.body)


async def test_client_error_is_not_retried(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    receiver.script = [400]
    dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m-1", seq=1)
    await wait_until(lambda: dispatcher.stats()["failed"] == 1)
    await asyncio.sleep(0.2)  # several times the longest backoff of this configuration
    assert len(receiver.requests) == 1
    assert dispatcher.stats()["retried"] == 0


async def test_retries_stop_after_max_attempts(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    receiver.default_status = 502
    dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m-1", seq=1)
    await wait_until(lambda: dispatcher.stats()["failed"] == 1)
    assert len(receiver.requests) == 4  # max_attempts in the test configuration
    assert dispatcher.stats()["retried"] == 3


async def test_redirect_is_not_followed(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    elsewhere = await Receiver().start()
    try:
        receiver.script = [302]
        receiver.extra_response_headers = [("Location", elsewhere.url("/stolen"))]
        dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m-1", seq=1)
        await wait_until(lambda: dispatcher.stats()["failed"] == 1)
        await asyncio.sleep(0.2)
        assert len(receiver.requests) == 1
        assert elsewhere.requests == []
    finally:
        await elsewhere.close()


async def test_timeout_is_retried_then_fails(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    receiver.default_status = HANG
    dispatcher = BackgroundPushDispatcher(make_config(read_timeout=0.2, max_attempts=2))
    await dispatcher.start()
    try:
        dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m-1", seq=1)
        await wait_until(lambda: dispatcher.stats()["failed"] == 1)
        assert len(receiver.requests) == 2
        assert dispatcher.stats()["retried"] == 1
    finally:
        await dispatcher.aclose()


async def test_connection_refused_is_retried(
    make_config: Callable[..., PushConfig],
) -> None:
    closed = await Receiver().start()
    url = closed.url()
    await closed.close()  # nothing listens on that port any more
    dispatcher = BackgroundPushDispatcher(make_config(max_attempts=3))
    await dispatcher.start()
    try:
        dispatcher.notify("webhook", token_for(url), mailbox_id="m-1", seq=1)
        await wait_until(lambda: dispatcher.stats()["failed"] == 1)
        assert dispatcher.stats()["retried"] == 2
    finally:
        await dispatcher.aclose()


async def test_too_many_requests_is_retried_honouring_retry_after(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    receiver.script = [429]
    receiver.extra_response_headers = [("Retry-After", "1")]
    dispatcher = BackgroundPushDispatcher(make_config(backoff_max=0.3))
    await dispatcher.start()
    try:
        started = time.monotonic()
        dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m-1", seq=1)
        await wait_until(lambda: dispatcher.stats()["delivered"] == 1)
        # Retry-After is honoured up to backoff_max (0.3 s here).
        assert time.monotonic() - started >= 0.25
        assert len(receiver.requests) == 2
    finally:
        await dispatcher.aclose()


async def test_gone_endpoint_is_remembered_and_reported(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    reported: list[tuple[str, str]] = []

    async def on_gone(token_type: str, token_data: str) -> None:
        reported.append((token_type, token_data))

    receiver.script = [410]
    dispatcher = BackgroundPushDispatcher(make_config(), on_gone=on_gone)
    await dispatcher.start()
    try:
        token = token_for(receiver.url())
        dispatcher.notify("webhook", token, mailbox_id="m-1", seq=1)
        await wait_until(lambda: dispatcher.stats()["gone"] == 1)
        assert reported == [("webhook", token)]
        assert dispatcher.is_gone("webhook", token)
        dispatcher.notify("webhook", token, mailbox_id="m-1", seq=2)
        assert dispatcher.stats()["gone_skipped"] == 1
        await asyncio.sleep(0.1)
        assert len(receiver.requests) == 1
    finally:
        await dispatcher.aclose()


async def test_hostname_with_several_addresses_reaches_the_listening_one(
    dispatcher: BackgroundPushDispatcher, receiver: Receiver
) -> None:
    # "localhost" may resolve to ::1 first, where nothing listens; the next checked address works.
    token = token_for(receiver.url(host="localhost"))
    assert dispatcher.validate("webhook", token)
    dispatcher.notify("webhook", token, mailbox_id="m-1", seq=9)
    await wait_until(lambda: dispatcher.stats()["delivered"] == 1)
    assert receiver.requests[0].header("host") == f"localhost:{receiver.port}"


async def test_policy_is_rechecked_at_delivery(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    # A token accepted under a looser policy is not delivered once the policy forbids it.
    token = token_for(receiver.url())
    strict = BackgroundPushDispatcher(make_config(allow_insecure_loopback=False))
    await strict.start()
    try:
        strict.notify("webhook", token, mailbox_id="m-1", seq=1)
        await wait_until(lambda: strict.stats()["refused"] == 1)
        assert receiver.requests == []
    finally:
        await strict.aclose()


async def test_name_resolving_to_a_refused_address_is_not_contacted(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    # The delivery-time check: a host name (not a literal) whose DNS answer is loopback.  The
    # static check would already refuse "localhost"; build the target directly to reach DNS.
    config = make_config(allow_insecure_loopback=False)
    deliverer = Deliverer(config, UrlPolicy(), VapidKey(ec.generate_private_key(ec.SECP256R1())))
    token = WebhookToken(TargetUrl("http", "localhost", receiver.port, "/x", None), b"k" * 32)
    result = await deliverer.webhook(token, "msg_1", b"{}")
    assert result.outcome is Outcome.REFUSED
    assert receiver.requests == []
