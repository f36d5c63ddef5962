"""The dispatcher: notify never blocks or raises, the queue is bounded, close always returns."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable

import pytest

from relay.notify.receiver import HANG, Receiver, wait_until
from tigress.relay.notify import BackgroundPushDispatcher, NoPushDispatcher, PushConfig
from tigress.relay.notify.base import PushDispatcher

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def token_for(url: str) -> str:
    return json.dumps({"url": url, "secret": SECRET})


def test_both_dispatchers_satisfy_the_protocol(make_config: Callable[..., PushConfig]) -> None:
    dispatchers: list[PushDispatcher] = [
        BackgroundPushDispatcher(make_config()),
        NoPushDispatcher(),
    ]
    assert [len(d.supported_types) for d in dispatchers] == [2, 0]


async def test_notify_before_start_and_after_close_is_dropped(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    dispatcher = BackgroundPushDispatcher(make_config())
    dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m", seq=1)
    await dispatcher.start()
    await dispatcher.aclose()
    dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m", seq=2)
    assert dispatcher.stats()["dropped"] == 2
    assert receiver.requests == []


async def test_notify_never_raises_on_nonsense(make_config: Callable[..., PushConfig]) -> None:
    dispatcher = BackgroundPushDispatcher(make_config())
    await dispatcher.start()
    try:
        dispatcher.notify("carrier-pigeon", "{}", mailbox_id="m", seq=1)
        dispatcher.notify("webhook", "not json", mailbox_id="m", seq=1)
        dispatcher.notify("webhook", token_for("http://127.0.0.1:9/x"), mailbox_id="", seq=-5)
        dispatcher.notify("webhook", None, mailbox_id=None, seq="x")  # type: ignore[arg-type]
        await wait_until(lambda: dispatcher.stats()["queued"] == 0)
        await wait_until(lambda: dispatcher.stats()["in_flight"] == 0)
        stats = dispatcher.stats()
        assert stats["delivered"] == 0
        assert stats["enqueued"] == 0
        assert stats["dropped"] == 1  # the unsupported type
        assert stats["refused"] == 1  # the malformed token
        assert stats["invalid"] == 2  # the bad mailbox id and sequence, the non-string token
    finally:
        await dispatcher.aclose()


async def test_full_queue_drops_the_oldest_and_counts(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    dispatcher = BackgroundPushDispatcher(make_config(queue_size=3, concurrency=1))
    await dispatcher.start()
    try:
        token = token_for(receiver.url())
        # No await between the calls: the workers cannot run, so the queue must absorb or drop.
        for index in range(10):
            dispatcher.notify("webhook", token, mailbox_id=f"mailbox-{index}", seq=index)
        assert dispatcher.stats()["dropped"] == 7
        assert dispatcher.stats()["queued"] == 3
        await wait_until(lambda: dispatcher.stats()["delivered"] == 3)
        delivered = sorted(json.loads(r.body)["mailbox"] for r in receiver.requests)
        assert delivered == ["mailbox-7", "mailbox-8", "mailbox-9"]
    finally:
        await dispatcher.aclose()


async def test_wake_ups_for_one_mailbox_coalesce_to_the_newest(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    dispatcher = BackgroundPushDispatcher(make_config())
    await dispatcher.start()
    try:
        token = token_for(receiver.url())
        for seq in (4, 6, 5):
            dispatcher.notify("webhook", token, mailbox_id="m", seq=seq)
        await wait_until(lambda: dispatcher.stats()["delivered"] == 1)
        await asyncio.sleep(0.05)
        assert [json.loads(r.body)["seq"] for r in receiver.requests] == [6]
        assert dispatcher.stats()["coalesced"] == 2
    finally:
        await dispatcher.aclose()


async def test_notify_returns_at_once_while_endpoints_hang(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    receiver.default_status = HANG
    dispatcher = BackgroundPushDispatcher(
        make_config(concurrency=2, read_timeout=30.0, drain_timeout=0.2)
    )
    await dispatcher.start()
    try:
        token = token_for(receiver.url())
        dispatcher.notify("webhook", token, mailbox_id="a", seq=1)
        dispatcher.notify("webhook", token, mailbox_id="b", seq=1)
        await receiver.wait_for(2)  # both workers are now stuck on the hanging endpoint
        started = time.perf_counter()
        for index in range(1000):
            dispatcher.notify("webhook", token, mailbox_id=f"c-{index}", seq=1)
        elapsed = time.perf_counter() - started
        assert elapsed < 1.0, f"1000 notify calls took {elapsed:.3f}s"
        assert dispatcher.stats()["in_flight"] == 2
    finally:
        started = time.monotonic()
        await dispatcher.aclose()
        assert time.monotonic() - started < 2.0, "aclose must give up after drain_timeout"
    stats = dispatcher.stats()
    assert stats["dropped"] == 1002  # 1000 queued and 2 in flight, all abandoned at close
    assert stats["in_flight"] == 0


async def test_slow_endpoint_does_not_stall_others(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    hanging = await Receiver(default_status=HANG).start()
    dispatcher = BackgroundPushDispatcher(
        make_config(concurrency=2, read_timeout=5.0, drain_timeout=0.2)
    )
    await dispatcher.start()
    try:
        dispatcher.notify("webhook", token_for(hanging.url()), mailbox_id="slow", seq=1)
        await hanging.wait_for(1)
        for index in range(5):
            dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id=f"m{index}", seq=1)
        await wait_until(lambda: dispatcher.stats()["delivered"] == 5, timeout=3.0)
    finally:
        await dispatcher.aclose()
        await hanging.close()


async def test_aclose_drains_queued_work(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    dispatcher = BackgroundPushDispatcher(make_config(concurrency=1))
    await dispatcher.start()
    token = token_for(receiver.url())
    for index in range(5):
        dispatcher.notify("webhook", token, mailbox_id=f"m{index}", seq=1)
    await dispatcher.aclose()
    assert dispatcher.stats()["delivered"] == 5
    assert len(receiver.requests) == 5
    await dispatcher.aclose()  # idempotent


async def test_aclose_cancels_scheduled_retries(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    receiver.default_status = 500
    dispatcher = BackgroundPushDispatcher(make_config(backoff_base=10.0, backoff_max=10.0))
    await dispatcher.start()
    dispatcher.notify("webhook", token_for(receiver.url()), mailbox_id="m", seq=1)
    await wait_until(lambda: dispatcher.stats()["retry_scheduled"] == 1)
    started = time.monotonic()
    await dispatcher.aclose()
    assert time.monotonic() - started < 1.0
    assert dispatcher.stats()["dropped"] == 1
    assert dispatcher.stats()["retry_scheduled"] == 0


async def test_a_newer_wake_up_supersedes_a_pending_retry(
    make_config: Callable[..., PushConfig], receiver: Receiver
) -> None:
    receiver.script = [500]
    dispatcher = BackgroundPushDispatcher(make_config(backoff_base=5.0, backoff_max=5.0))
    await dispatcher.start()
    try:
        token = token_for(receiver.url())
        dispatcher.notify("webhook", token, mailbox_id="m", seq=1)
        await wait_until(lambda: dispatcher.stats()["retry_scheduled"] == 1)
        dispatcher.notify("webhook", token, mailbox_id="m", seq=2)
        await wait_until(lambda: dispatcher.stats()["delivered"] == 1)
        assert dispatcher.stats()["retry_scheduled"] == 0
        assert [json.loads(r.body)["seq"] for r in receiver.requests] == [1, 2]
    finally:
        await dispatcher.aclose()


async def test_logs_never_contain_url_secret_or_mailbox(
    make_config: Callable[..., PushConfig], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tigress.relay.notify")
    receiver.script = [500, 400]
    dispatcher = BackgroundPushDispatcher(make_config())
    await dispatcher.start()
    try:
        url = receiver.url("/private-path-xyz")
        dispatcher.notify("webhook", token_for(url), mailbox_id="mailbox-canary-123", seq=1)
        await wait_until(lambda: dispatcher.stats()["failed"] == 1)
    finally:
        await dispatcher.aclose()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "the retry and the failure are logged"
    for secret in ("private-path-xyz", "127.0.0.1", SECRET, SECRET[6:], "mailbox-canary-123"):
        assert secret not in text
    assert "PEM-SECRET" not in repr(make_config(vapid_private_key_pem=b"PEM-SECRET"))
