"""``validate``: every malformed or disallowed tokenData gets a precise NotificationTokenError."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tigress.relay.notify import BackgroundPushDispatcher, NotificationTokenError, PushConfig

GOOD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


UA_PUBLIC = _b64url(
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
)
AUTH = _b64url(b"a" * 16)


def webhook(url: str = "https://hooks.example.com/t", secret: str = GOOD_SECRET) -> str:
    return json.dumps({"url": url, "secret": secret})


def webpush(
    endpoint: object = "https://push.example.net/wpush/abc",
    p256dh: object = UA_PUBLIC,
    auth: object = AUTH,
    **extra: object,
) -> str:
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}, **extra})


@pytest.fixture
def strict(make_config: Callable[..., PushConfig]) -> BackgroundPushDispatcher:
    return BackgroundPushDispatcher(make_config(allow_insecure_loopback=False))


def test_supported_types(strict: BackgroundPushDispatcher) -> None:
    assert strict.supported_types == frozenset({"webhook", "webpush"})


@pytest.mark.parametrize("token_type", ["apns", "fcm", "", "WEBHOOK", "webhook "])
def test_unknown_type_is_not_supported(strict: BackgroundPushDispatcher, token_type: str) -> None:
    assert strict.validate(token_type, "{}") is False


def test_valid_tokens_are_accepted(strict: BackgroundPushDispatcher) -> None:
    assert strict.validate("webhook", webhook()) is True
    assert strict.validate("webpush", webpush()) is True
    assert strict.validate("webpush", webpush(expirationTime=None)) is True
    assert strict.validate("webpush", webpush(expirationTime=1_700_000_000_000)) is True
    padded = base64.urlsafe_b64encode(b"a" * 16).decode()
    assert strict.validate("webpush", webpush(auth=padded)) is True


@pytest.mark.parametrize(
    ("token_data", "message"),
    [
        ("not json", "webhook tokenData is not valid JSON"),
        ("", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('"url"', "must be a JSON object"),
        ("[" * 3000 + "]" * 3000, "nested too deeply|not valid JSON|larger than"),
        (json.dumps({"url": "https://x.example"}), "missing secret"),
        (json.dumps({"secret": GOOD_SECRET}), "missing url"),
        (json.dumps({"url": "https://x.example", "secret": GOOD_SECRET, "x": 1}), "unknown field"),
        ('{"url": "https://a.example", "url": "https://b.example", "secret": "s"}', "duplicate"),
        ('{"url": NaN, "secret": "s"}', "non-standard JSON constant"),
        (json.dumps({"url": 5, "secret": GOOD_SECRET}), "webhook url must be a string"),
        (json.dumps({"url": "https://x.example", "secret": 5}), "secret must be a string"),
        (webhook(secret="sk_" + GOOD_SECRET[6:]), "must start with 'whsec_'"),
        (webhook(secret="whsec_not*base64"), "outside the base64 alphabet"),
        (webhook(secret="whsec_a"), "impossible length"),
        (webhook(secret="whsec_" + base64.b64encode(b"k" * 16).decode()), "got 16"),
        (webhook(secret="whsec_" + base64.b64encode(b"k" * 65).decode()), "got 65"),
        (webhook(url="http://hooks.example.com/t"), "scheme must be https"),
        (webhook(url="https://10.0.0.1/t"), "private"),
        (webhook(url="https://169.254.169.254/t"), "link-local"),
        (webhook(url="https://[::1]/t"), "loopback"),
        (webhook(url="https://127.0.0.1/t"), "loopback"),
        (webhook(url="https://localhost/t"), "loopback"),
        (webhook(url="https://user:pw@hooks.example.com/t"), "userinfo"),
        (webhook(url="https://" + "a" * 4100 + ".example/"), "larger than 4096 bytes"),
    ],
)
def test_bad_webhook_tokens(
    strict: BackgroundPushDispatcher, token_data: str, message: str
) -> None:
    with pytest.raises(NotificationTokenError, match=message):
        strict.validate("webhook", token_data)


@pytest.mark.parametrize(
    ("token_data", "message"),
    [
        ("{", "webpush tokenData is not valid JSON"),
        (json.dumps({"endpoint": "https://push.example.net/x"}), "missing keys"),
        (json.dumps({"keys": {"p256dh": UA_PUBLIC, "auth": AUTH}}), "missing endpoint"),
        (webpush(extra_field=1), "unknown field"),
        (webpush(expirationTime="soon"), "expirationTime must be null or a number"),
        (webpush(expirationTime=True), "expirationTime"),
        (json.dumps({"endpoint": "https://p.example/x", "keys": []}), "keys must be a JSON object"),
        (json.dumps({"endpoint": "https://p.example/x", "keys": {"auth": AUTH}}), "missing p256dh"),
        (webpush(p256dh=5), "p256dh must be a string"),
        (webpush(p256dh="***"), "p256dh contains characters outside"),
        (webpush(p256dh=UA_PUBLIC[:-1] + "B"), "non-zero trailing bits|not a point"),
        (webpush(p256dh=_b64url(b"\x04" + bytes(60))), "must decode to 65 bytes, got 61"),
        (webpush(p256dh=_b64url(b"\x02" + bytes(64))), "uncompressed P-256 point"),
        (webpush(p256dh=_b64url(b"\x04" + b"\x01" * 64)), "not a point on P-256"),
        (webpush(auth=_b64url(bytes(12))), "keys.auth must decode to 16 bytes, got 12"),
        (webpush(auth="a+b/"), "outside the base64 alphabet"),
        (webpush(endpoint="http://push.example.net/x"), "scheme must be https"),
        (webpush(endpoint="https://10.1.2.3/x"), "private"),
        (webpush(endpoint=7), "endpoint must be a string"),
        (webpush(endpoint="https://push.example.net/" + "x" * 5000), "larger than 4096"),
    ],
)
def test_bad_webpush_tokens(
    strict: BackgroundPushDispatcher, token_data: str, message: str
) -> None:
    with pytest.raises(NotificationTokenError, match=message):
        strict.validate("webpush", token_data)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token_type=st.sampled_from(["webhook", "webpush"]),
    data=st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["url", "secret", "endpoint", "keys", "p256dh", "auth", "z"]),
                    children,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ).map(json.dumps),
    ),
)
def test_validate_raises_only_the_typed_error(
    strict: BackgroundPushDispatcher, token_type: str, data: str
) -> None:
    # The dispatcher is stateless with respect to validate, so sharing it across examples is fine.
    with contextlib.suppress(NotificationTokenError):
        assert strict.validate(token_type, data) is True
