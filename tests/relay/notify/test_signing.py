"""Standard Webhooks signatures, checked against the specification's published example."""

from __future__ import annotations

import base64

from tigress.relay.notify.signing import verify_webhook_signature, webhook_signature

# The reference example of the Standard Webhooks specification (standard-webhooks/standard-webhooks,
# spec/standard-webhooks.md and its libraries' test suites).
SECRET = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specification_example() -> None:
    assert webhook_signature(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == SIGNATURE


def test_verify_accepts_the_example_and_any_matching_entry_of_a_list() -> None:
    now = TIMESTAMP + 10
    assert verify_webhook_signature(SECRET, MSG_ID, str(TIMESTAMP), PAYLOAD, SIGNATURE, now=now)
    listed = "v1,AAAA v1a,whatever " + SIGNATURE
    assert verify_webhook_signature(SECRET, MSG_ID, str(TIMESTAMP), PAYLOAD, listed, now=now)


def test_verify_refuses_tampering_and_stale_or_malformed_timestamps() -> None:
    now = TIMESTAMP
    ts = str(TIMESTAMP)
    assert not verify_webhook_signature(SECRET, MSG_ID, ts, PAYLOAD + b" ", SIGNATURE, now=now)
    assert not verify_webhook_signature(SECRET, "msg_other", ts, PAYLOAD, SIGNATURE, now=now)
    assert not verify_webhook_signature(b"x" * 24, MSG_ID, ts, PAYLOAD, SIGNATURE, now=now)
    assert not verify_webhook_signature(SECRET, MSG_ID, ts, PAYLOAD, SIGNATURE, now=now + 301)
    assert not verify_webhook_signature(SECRET, MSG_ID, "-5", PAYLOAD, SIGNATURE, now=now)
    assert not verify_webhook_signature(SECRET, MSG_ID, ts, PAYLOAD, "v2," + SIGNATURE[3:], now=now)
