"""The SSRF-safe URL policy: static checks and the check of resolved addresses."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tigress.relay.notify.urlpolicy import TargetUrl, UrlPolicy, UrlPolicyError

STRICT = UrlPolicy()
LOOPBACK_OK = UrlPolicy(allow_insecure_loopback=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "scheme must be https"),
        ("ftp://example.com/hook", "scheme must be https"),
        ("https://10.0.0.1/hook", "private"),
        ("https://172.16.5.4/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://127.0.0.1/", "loopback"),
        ("https://127.8.9.10/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("https://100.64.0.1/", "private"),
        ("https://192.0.0.8/", "private"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fc00::1]/", "private"),
        ("https://[fec0::1]/", "site-local"),
        ("https://[2001:db8::1]/", "private"),
        ("https://[::ffff:127.0.0.1]/", "IPv4 address that is loopback"),
        ("https://[::ffff:10.0.0.1]/", "IPv4 address that is private"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://[2002:a00:1::]/", "IPv4 address that is private"),
        ("https://[64:ff9b::a9fe:a9fe]/", "IPv4 address that is link-local"),
        ("https://[fe80::1%25eth0]/", "zone identifiers"),
        ("https://2130706433/", "non-canonical numeric"),
        ("https://0x7f.1/", "non-canonical numeric"),
        ("https://127.1/", "non-canonical numeric"),
        ("https://010.0.0.1/", "non-canonical numeric"),
        ("https://localhost/", "loopback"),
        ("https://LOCALHOST./", "loopback"),
        ("https://api.localhost/", "loopback"),
        ("https://user:pass@example.com/", "userinfo"),
        ("https://user@example.com/", "userinfo"),
        ("https://@example.com/", "userinfo"),
        ("https://example.com:0/", "port"),
        ("https://example.com:99999/", "port"),
        ("https://example.com:abc/", "port"),
        ("https://example.com/#frag", "fragment"),
        ("https:///path", "no host"),
        ("https://[::1/", "malformed"),
        ("https://[not-an-address]/", "not a valid IPv6 literal|malformed"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com/\r\nX-Injected: 1", "whitespace"),
        ("https://bücher.example/", "non-ASCII"),
        ("https://-bad-.example/", "not a valid DNS name"),
        ("https://a..b/", "not a valid DNS name"),
        ("https://under_score.example/", "not a valid DNS name"),
        ("https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_static_policy_refuses(url: str, reason: str) -> None:
    with pytest.raises(UrlPolicyError, match=reason):
        STRICT.parse(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "http://10.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/",
        "http://[fe80::1]/",
    ],
)
def test_loopback_allowance_permits_loopback_only(url: str) -> None:
    with pytest.raises(UrlPolicyError):
        LOOPBACK_OK.parse(url)


def test_loopback_allowance_permits_http_to_loopback() -> None:
    target = LOOPBACK_OK.parse("http://127.0.0.1:8080/hook?x=1")
    assert (target.scheme, target.host, target.port, target.request_target) == (
        "http",
        "127.0.0.1",
        8080,
        "/hook?x=1",
    )
    assert target.origin == "http://127.0.0.1:8080"
    assert LOOPBACK_OK.parse("http://[::1]:9/").host_header == "[::1]:9"
    assert LOOPBACK_OK.parse("http://localhost:9/").literal_ip is None


def test_public_urls_are_accepted_and_normalised() -> None:
    target = STRICT.parse("https://Push.Example.COM/wpush/v2/abc")
    assert target.host == "push.example.com"
    assert target.port == 443
    assert target.origin == "https://push.example.com"
    assert STRICT.parse("https://example.com").request_target == "/"
    assert STRICT.parse("https://8.8.8.8:8443/x").origin == "https://8.8.8.8:8443"
    assert STRICT.parse("https://[2606:4700::1111]/").host_header == "[2606:4700::1111]"


def test_operator_can_allow_a_private_network() -> None:
    policy = UrlPolicy(extra_allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    assert policy.parse("https://10.20.1.2/push").host == "10.20.1.2"
    with pytest.raises(UrlPolicyError, match="private"):
        policy.parse("https://10.21.1.2/push")


@pytest.mark.anyio
async def test_resolution_refuses_a_name_that_resolves_to_loopback() -> None:
    # Bypass the static RFC 6761 rule to exercise the real resolver path: "localhost" resolves
    # to 127.0.0.1 and/or ::1 through the system resolver.
    target = TargetUrl("https", "localhost", 443, "/", None)
    with pytest.raises(UrlPolicyError, match="loopback"):
        await STRICT.resolve(target, timeout=5.0)
    addresses = await LOOPBACK_OK.resolve(target, timeout=5.0)
    assert addresses
    assert all(address.is_loopback for address in addresses)


@pytest.mark.anyio
async def test_resolution_rechecks_literal_addresses() -> None:
    target = TargetUrl("https", "10.0.0.1", 443, "/", ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(UrlPolicyError, match="private"):
        await STRICT.resolve(target, timeout=1.0)


@given(st.text(max_size=300))
def test_parse_raises_only_the_policy_error(text: str) -> None:
    for candidate in (text, "https://" + text, "http://" + text):
        with contextlib.suppress(UrlPolicyError):
            STRICT.parse(candidate)
