"""Invitation URLs: canonical writing, strict parsing, round trips, and hostile input."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import ipaddress
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.protocol.errors import InvitationError, ProtocolError
from tigress.protocol.invitation import (
    MAX_INVITATION_LENGTH,
    DirectInvitation,
    RelayInvitation,
    Vertical,
    decode_secret,
    encode_secret,
    new_secret,
    new_session_id,
    parse_invitation,
)

MAILBOX = "2bba630e-519b-41ec-bf63-0242ac130002"
SECRET = bytes(range(32))
SECRET_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
RELAY_URL = f"https://relay.example/v1/m/{MAILBOX}?v=c#{SECRET_TEXT}"
DIRECT_URL = f"tigress+direct://192.0.2.7:9443/{MAILBOX}?v=h#{SECRET_TEXT}"
# The draft's example secret: 24 characters of padded standard base64 (16 bytes).
DRAFT_SECRET_TEXT = "hXlr6aRC7KgJpOLTNZaLsw=="


# --- secrets -----------------------------------------------------------------------------------


def test_secret_text_is_43_unpadded_base64url_characters() -> None:
    assert encode_secret(SECRET) == SECRET_TEXT
    assert decode_secret(SECRET_TEXT) == SECRET


def test_new_secret_is_32_fresh_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert len(first) == len(second) == 32
    assert first != second


def test_new_session_id_is_canonical_uuid4() -> None:
    session_id = new_session_id()
    assert uuid.UUID(session_id).version == 4
    assert session_id == str(uuid.UUID(session_id))


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_encode_secret_rejects_other_lengths(length: int) -> None:
    with pytest.raises(InvitationError, match="32 bytes"):
        encode_secret(bytes(length))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (SECRET_TEXT + "=", "padding"),
        (SECRET_TEXT[:-1] + "+", "alphabet"),
        (SECRET_TEXT[:-1] + "/", "alphabet"),
        (SECRET_TEXT[:-1], "43 base64url characters"),
        (SECRET_TEXT + "A", "43 base64url characters"),
        # "9" (not "8") sets one of the two unused trailing bits: same bytes, second spelling.
        (SECRET_TEXT[:-1] + "9", "non-canonical"),
    ],
)
def test_decode_secret_is_strict(text: str, fragment: str) -> None:
    with pytest.raises(InvitationError, match=fragment):
        decode_secret(text)


@given(st.binary(min_size=32, max_size=32))
def test_secret_round_trip(secret: bytes) -> None:
    assert decode_secret(encode_secret(secret)) == secret


# --- relay invitations: good input -------------------------------------------------------------


def test_parse_relay_invitation() -> None:
    invitation = RelayInvitation.parse(RELAY_URL)
    assert invitation.relay_origin == "https://relay.example"
    assert invitation.mailbox_id == MAILBOX
    assert invitation.vertical is Vertical.CAR
    assert invitation.secret == SECRET
    assert invitation.to_url() == RELAY_URL


def test_mailbox_url_and_channel_id_carry_neither_vertical_nor_secret() -> None:
    invitation = RelayInvitation.parse(RELAY_URL)
    assert invitation.mailbox_url == f"https://relay.example/v1/m/{MAILBOX}"
    assert invitation.channel_id == b"tigress-relay:" + invitation.mailbox_url.encode()
    assert invitation.to_url(include_secret=False) == f"https://relay.example/v1/m/{MAILBOX}?v=c"


def test_secret_never_appears_in_repr_or_str() -> None:
    invitation = RelayInvitation.parse(RELAY_URL)
    direct = DirectInvitation.parse(DIRECT_URL)
    for shown in (repr(invitation), str(invitation), repr(direct), str(direct)):
        assert SECRET_TEXT not in shown
        assert "secret" not in shown
        assert repr(SECRET) not in shown


def test_normalisation_of_scheme_host_port_and_uuid_case() -> None:
    text = f"HTTPS://Relay.EXAMPLE:443/v1/m/{MAILBOX.upper()}"
    invitation = RelayInvitation.parse(text)
    assert invitation.to_url() == f"https://relay.example/v1/m/{MAILBOX}"
    assert invitation.vertical is None
    assert invitation.secret is None


def test_non_default_port_is_kept() -> None:
    invitation = RelayInvitation.parse(f"https://relay.example:8443/v1/m/{MAILBOX}")
    assert invitation.relay_origin == "https://relay.example:8443"


def test_surrounding_whitespace_is_stripped() -> None:
    assert RelayInvitation.parse(f" \t\r\n{RELAY_URL}\n ") == RelayInvitation.parse(RELAY_URL)


@pytest.mark.parametrize(
    ("query", "vertical"),
    [("", None), ("?v=a", Vertical.GENERAL), ("?v=h", Vertical.HOME), ("?v=c", Vertical.CAR)],
)
def test_vertical_query(query: str, vertical: Vertical | None) -> None:
    text = f"https://relay.example/v1/m/{MAILBOX}{query}"
    invitation = RelayInvitation.parse(text)
    assert invitation.vertical is vertical
    assert invitation.to_url() == text


@pytest.mark.parametrize(
    ("origin", "normalised"),
    [
        ("http://localhost", "http://localhost"),
        ("http://LOCALHOST:8080", "http://localhost:8080"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://127.45.6.7:8000", "http://127.45.6.7:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
        ("https://[2001:DB8::1]:443", "https://[2001:db8::1]"),
        ("https://192.0.2.1", "https://192.0.2.1"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("https://a-b.c-d.example", "https://a-b.c-d.example"),
        ("https://mail.0xample", "https://mail.0xample"),
        ("https://xn--80ak6aa92e.com", "https://xn--80ak6aa92e.com"),
    ],
)
def test_accepted_origins(origin: str, normalised: str) -> None:
    invitation = RelayInvitation.parse(f"{origin}/v1/m/{MAILBOX}")
    assert invitation.relay_origin == normalised
    assert RelayInvitation.create(origin, MAILBOX, None, None).relay_origin == normalised


def test_draft_secret_form_needs_opt_in() -> None:
    text = f"https://relay.example/v1/m/{MAILBOX}?v=c#{DRAFT_SECRET_TEXT}"
    with pytest.raises(InvitationError, match="padding"):
        RelayInvitation.parse(text)
    invitation = RelayInvitation.parse(text, allow_draft_secret=True)
    assert invitation.secret == base64.b64decode(DRAFT_SECRET_TEXT)
    assert len(invitation.secret) == 16
    # A 16-byte secret can only be written in the draft's form, so it round-trips.
    assert invitation.to_url() == text


def test_draft_secret_form_accepts_32_bytes_and_strict_form_still_works() -> None:
    draft_text = base64.b64encode(SECRET).decode()
    assert len(draft_text) == 44
    invitation = RelayInvitation.parse(
        f"https://relay.example/v1/m/{MAILBOX}#{draft_text}", allow_draft_secret=True
    )
    assert invitation.secret == SECRET
    assert RelayInvitation.parse(RELAY_URL, allow_draft_secret=True).secret == SECRET


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("hXlr6aRC7KgJpOLTNZaLsw", "neither"),  # unpadded standard base64 of 16 bytes
        ("hXlr6aRC7KgJpOLTNZaLsw=", "neither"),
        ("hXlr6aRC7KgJpOLTNZaLsx==", "non-canonical"),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "16 or 32 bytes"),  # 21 bytes
        ("hXlr6aRC7KgJpOLTNZaL-w==", "neither"),
    ],
)
def test_draft_secret_form_is_still_strict(fragment: str, message: str) -> None:
    with pytest.raises(InvitationError, match=message):
        RelayInvitation.parse(
            f"https://relay.example/v1/m/{MAILBOX}#{fragment}", allow_draft_secret=True
        )


def test_equality_compares_secrets_and_hash_ignores_them() -> None:
    first = RelayInvitation.parse(RELAY_URL)
    same = RelayInvitation.parse(RELAY_URL)
    other_secret = dataclasses.replace(first, secret=bytes(32))
    no_secret = dataclasses.replace(first, secret=None)
    assert first == same
    assert hash(first) == hash(same) == hash(other_secret)
    assert first != other_secret
    assert first != no_secret
    assert no_secret == dataclasses.replace(first, secret=None)
    assert first != DirectInvitation.parse(DIRECT_URL)


# --- relay invitations: bad input --------------------------------------------------------------

BASE = "https://relay.example"
PATH = f"/v1/m/{MAILBOX}"

BAD_RELAY_URLS: list[tuple[str, str]] = [
    ("", "empty invitation"),
    ("   \n", "empty invitation"),
    ("relay.example/v1/m/x", "missing or invalid URL scheme"),
    (f":{PATH}", "missing or invalid URL scheme"),
    (f"1https://relay.example{PATH}", "missing or invalid URL scheme"),
    (f"https:relay.example{PATH}", "expected '//'"),
    (f"https:/relay.example{PATH}", "expected '//'"),
    (f"ftp://relay.example{PATH}", "unsupported scheme 'ftp'"),
    (f"http://relay.example{PATH}", "only for loopback"),
    (f"http://10.0.0.1{PATH}", "only for loopback"),
    (f"http://[::2]{PATH}", "only for loopback"),
    (f"http://localhost.example{PATH}", "only for loopback"),
    (f"https://user@relay.example{PATH}", "user information"),
    (f"https://user:pw@relay.example{PATH}", "user information"),
    (f"https://{PATH}", "empty host"),
    (f"https://:443{PATH}", "empty host"),
    (f"https://relay.example.{PATH}", "must not end with a dot"),
    (f"https://relay..example{PATH}", "empty label"),
    (f"https://.relay.example{PATH}", "empty label"),
    (f"https://-relay.example{PATH}", "invalid host name"),
    (f"https://relay-.example{PATH}", "invalid host name"),
    (f"https://re_lay.example{PATH}", "invalid host name"),
    (f"https://re%6Cay.example{PATH}", "invalid host name"),
    (f"https://{'a' * 64}.example{PATH}", "longer than 63"),
    (f"https://{'.'.join(['a' * 60] * 5)}{PATH}", "longer than 253"),
    (f"https://xn--.example{PATH}", "invalid host name"),
    (f"https://xn--abc-d.example{PATH}", "not valid punycode"),
    (f"https://xn--abc.example{PATH}", "not a valid IDNA A-label"),
    (f"https://1.2.3{PATH}", "not a valid dotted-quad IPv4"),
    (f"https://256.1.1.1{PATH}", "not a valid dotted-quad IPv4"),
    (f"https://01.2.3.4{PATH}", "not a valid dotted-quad IPv4"),
    (f"https://0x7f.1{PATH}", "not a valid dotted-quad IPv4"),
    (f"https://relay.0x10{PATH}", "not a valid dotted-quad IPv4"),
    (f"https://[::ffff:127.0.0.1]{PATH}", "IPv4-mapped"),
    (f"https://[::ffff:7f00:1]{PATH}", "IPv4-mapped"),
    (f"{BASE}/v{'9' * 100}/m/{MAILBOX}", "unsupported API version 'v99999"),
    (f"https://::1{PATH}", "enclosed in brackets"),
    (f"https://[::1{PATH}", "unterminated"),
    (f"https://[::g]{PATH}", "invalid IPv6"),
    (f"https://[fe80::1%25eth0]{PATH}", "zone identifiers"),
    (f"https://[v1.x]{PATH}", "invalid IPv6"),
    (f"https://[::1]x{PATH}", "unexpected characters after IPv6"),
    (f"https://relay]{PATH}", "unexpected ']'"),
    (f"https://relay.example:{PATH}", "empty port"),
    (f"https://relay.example:0{PATH}", "out of range"),
    (f"https://relay.example:65536{PATH}", "out of range"),
    (f"https://relay.example:99999999999999999999{PATH}", "out of range"),
    (f"https://relay.example:0443{PATH}", "leading zeros"),
    (f"https://relay.example:+443{PATH}", "decimal digits"),
    (f"https://relay.example:44a{PATH}", "decimal digits"),
    (BASE, "missing path"),
    (f"{BASE}/", "missing path"),
    (f"{BASE}?v=c", "missing path"),
    (f"{BASE}{PATH}/", "trailing slash"),
    (f"{BASE}{PATH}/extra", "extra path segments"),
    (f"{BASE}/v1/m/", "not a UUID"),
    (f"{BASE}/prefix{PATH}", "exactly /v1/m/"),
    (f"{BASE}/v1/mailbox/{MAILBOX}", "exactly /v1/m/"),
    (f"{BASE}/V1/m/{MAILBOX}", "exactly /v1/m/"),
    (f"{BASE}/v2/m/{MAILBOX}", "unsupported API version 'v2'"),
    (f"{BASE}//v1/m/{MAILBOX}", "exactly /v1/m/"),
    (f"{BASE}/v1/m/{MAILBOX[:-1]}", "not a UUID"),
    (f"{BASE}/v1/m/{MAILBOX}0", "not a UUID"),
    (f"{BASE}/v1/m/{MAILBOX.replace('-', '')}", "not a UUID"),
    (f"{BASE}/v1/m/{{{MAILBOX}}}", "not a UUID"),
    (f"{BASE}/v1/m/2bba630g-519b-41ec-bf63-0242ac130002", "not a UUID"),
    (f"{BASE}/v1/m/2bba630e-519b-11ec-bf63-0242ac130002", "version-4 UUID, got version 1"),
    (f"{BASE}/v1/m/00000000-0000-0000-0000-000000000000", "version-4 UUID, got version 0"),
    (f"{BASE}/v1/m/2bba630e-519b-41ec-7f63-0242ac130002", "variant"),
    (f"{BASE}/v1/m/2bba630e-519b-41ec-cf63-0242ac130002", "variant"),
    (f"{BASE}/v1/m/2bba630e%2D519b-41ec-bf63-0242ac130002", "not a UUID"),
    (f"{BASE}{PATH}?", "empty query string"),
    (f"{BASE}{PATH}?v=c&", "empty query parameter"),
    (f"{BASE}{PATH}?&v=c", "empty query parameter"),
    (f"{BASE}{PATH}?x=1", "unknown query parameter 'x'"),
    (f"{BASE}{PATH}?v=c&utm_source=chat", "unknown query parameter 'utm_source'"),
    (f"{BASE}{PATH}?V=c", "unknown query parameter 'V'"),
    (f"{BASE}{PATH}?v", "has no value"),
    (f"{BASE}{PATH}?v=", "invalid vertical ''"),
    (f"{BASE}{PATH}?v=x", "invalid vertical 'x'"),
    (f"{BASE}{PATH}?v=C", "invalid vertical 'C'"),
    (f"{BASE}{PATH}?v=car", "invalid vertical 'car'"),
    (f"{BASE}{PATH}?v=%63", "invalid vertical"),
    (f"{BASE}{PATH}?v=c&v=c", "repeated query parameter 'v'"),
    (f"{BASE}{PATH}?v=c&v=h", "repeated query parameter 'v'"),
    (f"{BASE}{PATH}#", "empty fragment"),
    (f"{BASE}{PATH}?v=c#", "empty fragment"),
    (f"{BASE}{PATH}#{SECRET_TEXT}=", "padding"),
    (f"{BASE}{PATH}#{SECRET_TEXT[:-1]}", "43 base64url characters"),
    (f"{BASE}{PATH}#{SECRET_TEXT}A", "43 base64url characters"),
    (f"{BASE}{PATH}#{SECRET_TEXT[:-1]}+", "alphabet"),
    (f"{BASE}{PATH}#{SECRET_TEXT[:-1]}%", "alphabet"),
    (f"{BASE}{PATH}#{SECRET_TEXT}#", "alphabet"),
    (f"{BASE}{PATH}#{SECRET_TEXT[:-1]}9", "non-canonical"),
    (f"{BASE}{PATH}#{DRAFT_SECRET_TEXT}", "padding"),
    (f"{BASE}{PATH}#{SECRET_TEXT}?v=c", "padding"),
    (f"{BASE}{PATH}#{SECRET_TEXT}?x", "alphabet"),
    (f"{BASE} {PATH}", "whitespace inside the invitation at position 21"),
    (f"{BASE}{PATH}?v=c #{SECRET_TEXT}", "whitespace inside"),
    (f"{BASE}{PATH}#{SECRET_TEXT[:10]}\t{SECRET_TEXT[10:]}", "whitespace inside"),
    (f"{BASE}{PATH}\x00", "control character U\\+0000"),
    (f"{BASE}\x7f{PATH}", "control character U\\+007F"),
    (f"{BASE}{PATH}\x1b[0m", "control character U\\+001B"),
    (f"https://relay.exa\u200bmple{PATH}", "non-ASCII"),
    (f"https://b\u00fccher.example{PATH}", "non-ASCII"),
    (f"https://relay.example{PATH}\u00a0", "non-ASCII"),
    (f"https://relay.example/v1/m/{MAILBOX}?v=\uff43", "non-ASCII"),
    (f"tigress+direct://192.0.2.7:9443/{MAILBOX}", "expected https"),
    (f"{BASE}/v1/m/{MAILBOX}?v=c#{'A' * 2048}", "above the limit of 2048"),
]


@pytest.mark.parametrize(("text", "message"), BAD_RELAY_URLS)
def test_bad_relay_urls(text: str, message: str) -> None:
    with pytest.raises(InvitationError, match=message):
        RelayInvitation.parse(text)


@pytest.mark.parametrize(("text", "message"), BAD_RELAY_URLS)
def test_error_messages_never_echo_the_secret(text: str, message: str) -> None:
    with pytest.raises(InvitationError) as caught:
        RelayInvitation.parse(text)
    assert SECRET_TEXT[:12] not in str(caught.value)
    assert DRAFT_SECRET_TEXT[:12] not in str(caught.value)


def test_colon_inside_the_fragment_is_not_echoed_as_a_scheme() -> None:
    with pytest.raises(InvitationError) as caught:
        parse_invitation("relay.example/v1#TopSecretValue:rest")
    assert "TopSecret" not in str(caught.value)


def test_length_limit_is_measured_after_stripping() -> None:
    padding = " " * 5000
    text = f"{padding}{RELAY_URL}{padding}"
    assert RelayInvitation.parse(text).secret == SECRET
    long_text = f"{BASE}{PATH}?v=c&" + "v=c&" * 600
    assert len(long_text) > MAX_INVITATION_LENGTH
    with pytest.raises(InvitationError, match="above the limit"):
        parse_invitation(long_text)


def test_non_text_input_is_rejected() -> None:
    with pytest.raises(InvitationError, match="must be text"):
        parse_invitation(RELAY_URL.encode())  # type: ignore[arg-type]
    with pytest.raises(InvitationError, match="must be text"):
        decode_secret(SECRET)  # type: ignore[arg-type]


# --- create() and direct construction ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relay_origin": "https://relay.example/"}, "no path"),
        ({"relay_origin": "https://relay.example/v1"}, "no path"),
        ({"relay_origin": "https://relay.example?x"}, "no path"),
        ({"relay_origin": "http://relay.example"}, "only for loopback"),
        ({"relay_origin": b"https://relay.example"}, "must be text"),
        ({"mailbox_id": "not-a-uuid"}, "not a UUID"),
        ({"mailbox_id": "2bba630e-519b-11ec-bf63-0242ac130002"}, "version-4"),
        ({"mailbox_id": uuid.UUID("6f1c8e0a-3c1e-4b7e-9a51-0c8f6f3d2a11")}, "must be text"),
        ({"vertical": "c"}, "must be a Vertical"),
        ({"secret": bytes(16)}, "must be 32 bytes"),
        ({"secret": bytes(31)}, "must be 32 bytes"),
        ({"secret": "x" * 32}, "must be bytes"),
    ],
)
def test_relay_create_validates(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "relay_origin": BASE,
        "mailbox_id": MAILBOX,
        "vertical": Vertical.CAR,
        "secret": SECRET,
    }
    arguments.update(kwargs)
    with pytest.raises(InvitationError, match=message):
        RelayInvitation.create(**arguments)  # type: ignore[arg-type]


def test_relay_create_accepts_16_byte_secret_only_with_opt_in() -> None:
    invitation = RelayInvitation.create(BASE, MAILBOX, None, bytes(16), allow_draft_secret=True)
    assert invitation.to_url().endswith("#AAAAAAAAAAAAAAAAAAAAAA==")
    assert RelayInvitation.parse(invitation.to_url(), allow_draft_secret=True) == invitation


def test_create_accepts_bytearray_secret_and_stores_bytes() -> None:
    invitation = RelayInvitation.create(BASE, MAILBOX, None, bytearray(SECRET))  # type: ignore[arg-type]
    assert type(invitation.secret) is bytes
    assert invitation.secret == SECRET


@pytest.mark.parametrize(
    "fields",
    [
        {"relay_origin": "HTTPS://relay.example"},
        {"relay_origin": "https://relay.example:443"},
        {"mailbox_id": MAILBOX.upper()},
        {"secret": bytearray(SECRET)},
        {"secret": bytes(20)},
        {"vertical": "c"},
    ],
)
def test_direct_construction_must_already_be_canonical(fields: dict[str, object]) -> None:
    base = RelayInvitation.parse(RELAY_URL)
    with pytest.raises(InvitationError):
        dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_instances_are_immutable() -> None:
    invitation = RelayInvitation.parse(RELAY_URL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        invitation.secret = None  # type: ignore[misc]


# --- direct invitations ------------------------------------------------------------------------


def test_parse_direct_invitation() -> None:
    invitation = parse_invitation(DIRECT_URL)
    assert isinstance(invitation, DirectInvitation)
    assert (invitation.host, invitation.port) == ("192.0.2.7", 9443)
    assert invitation.session_id == MAILBOX
    assert invitation.vertical is Vertical.HOME
    assert invitation.secret == SECRET
    assert invitation.channel_id == b"tigress-direct:" + MAILBOX.encode()
    assert invitation.to_url() == DIRECT_URL
    assert invitation.to_url(include_secret=False) == DIRECT_URL.split("#", maxsplit=1)[0]


@pytest.mark.parametrize(
    ("authority", "host", "written"),
    [
        ("[FE80::1]:7000", "fe80::1", "[fe80::1]:7000"),
        ("[::1]:443", "::1", "[::1]:443"),
        ("Phone.Local:7000", "phone.local", "phone.local:7000"),
        ("localhost:1", "localhost", "localhost:1"),
        ("10.0.0.2:65535", "10.0.0.2", "10.0.0.2:65535"),
    ],
)
def test_direct_hosts(authority: str, host: str, written: str) -> None:
    invitation = DirectInvitation.parse(f"TIGRESS+Direct://{authority}/{MAILBOX}")
    assert invitation.host == host
    assert invitation.to_url() == f"tigress+direct://{written}/{MAILBOX}"


BAD_DIRECT_URLS: list[tuple[str, str]] = [
    (f"tigress+direct://192.0.2.7/{MAILBOX}", "explicit port"),
    (f"tigress+direct://192.0.2.7:0/{MAILBOX}", "out of range"),
    ("tigress+direct://192.0.2.7:9443", "missing path"),
    ("tigress+direct://192.0.2.7:9443/", "missing path"),
    (f"tigress+direct://192.0.2.7:9443/{MAILBOX}/", "trailing slash"),
    (f"tigress+direct://192.0.2.7:9443/x/{MAILBOX}", "exactly /{session-id}"),
    (f"tigress+direct://192.0.2.7:9443/v1/m/{MAILBOX}", "exactly /{session-id}"),
    ("tigress+direct://192.0.2.7:9443/2bba630e-519b-11ec-bf63-0242ac130002", "version-4"),
    (f"tigress+direct://me@192.0.2.7:9443/{MAILBOX}", "user information"),
    (f"tigress+direct://fe80::1:9443/{MAILBOX}", "enclosed in brackets"),
    (f"tigress+direct://192.0.2.7:9443/{MAILBOX}?v=z", "invalid vertical"),
    (f"tigress+direct://192.0.2.7:9443/{MAILBOX}?session=1", "unknown query parameter"),
    (f"tigress+direct://192.0.2.7:9443/{MAILBOX}#short", "43 base64url"),
    (f"tigress-direct://192.0.2.7:9443/{MAILBOX}", "unsupported scheme"),
    (f"https://192.0.2.7:9443/{MAILBOX}", "exactly /v1/m/"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DIRECT_URLS)
def test_bad_direct_urls(text: str, message: str) -> None:
    with pytest.raises(InvitationError, match=message):
        parse_invitation(text)


def test_direct_parse_rejects_relay_scheme() -> None:
    with pytest.raises(InvitationError, match="expected tigress\\+direct"):
        DirectInvitation.parse(RELAY_URL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "[::1]"}, "invalid IPv6"),
        ({"host": "fe80::1%eth0"}, "zone identifiers"),
        ({"host": ""}, "empty host"),
        ({"host": "b\u00fccher.example"}, "printable ASCII"),
        ({"host": "bad host"}, "invalid host name"),
        ({"port": 0}, "out of range"),
        ({"port": 70000}, "out of range"),
        ({"port": True}, "out of range"),
        ({"port": "443"}, "out of range"),
        ({"session_id": "nope"}, "not a UUID"),
        ({"secret": bytes(16)}, "must be 32 bytes"),
    ],
)
def test_direct_create_validates(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "host": "192.0.2.7",
        "port": 9443,
        "session_id": MAILBOX,
        "vertical": None,
        "secret": SECRET,
    }
    arguments.update(kwargs)
    with pytest.raises(InvitationError, match=message):
        DirectInvitation.create(**arguments)  # type: ignore[arg-type]


def test_parse_invitation_dispatches_on_scheme() -> None:
    assert isinstance(parse_invitation(RELAY_URL), RelayInvitation)
    assert isinstance(parse_invitation(DIRECT_URL), DirectInvitation)
    with pytest.raises(InvitationError, match="expected https or tigress\\+direct"):
        parse_invitation(f"mailto://relay.example/v1/m/{MAILBOX}")


# --- property-based ----------------------------------------------------------------------------

_labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
_host_names = (
    st.lists(_labels, min_size=1, max_size=4)
    .map(".".join)
    .filter(
        lambda name: (
            not re.fullmatch(r"[0-9]+|0x[0-9a-f]*", name.rsplit(".", 1)[-1])
            and not any(label.startswith("xn--") for label in name.split("."))
        )
    )
)
_ipv4 = st.ip_addresses(v=4).map(str)


def _ipv6_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    # IPv4-mapped addresses are rejected by design; use the IPv4 form of those instead.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address).split("%")[0]


_ipv6 = st.ip_addresses(v=6).map(_ipv6_text)
_hosts = st.one_of(_host_names, _ipv4, _ipv6)
_ports = st.integers(min_value=1, max_value=65535)
_verticals = st.one_of(st.none(), st.sampled_from(Vertical))
_secrets = st.one_of(st.none(), st.binary(min_size=32, max_size=32))
_uuid4s = st.uuids(version=4).map(str)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@st.composite
def _origins(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        host = draw(st.sampled_from(["localhost", "127.0.0.1", "127.9.8.7", "::1"]))
        scheme = draw(st.sampled_from(["http", "https"]))
    else:
        host, scheme = draw(_hosts), "https"
    port = draw(st.one_of(st.none(), _ports))
    return f"{scheme}://{_url_host(host)}" + ("" if port is None else f":{port}")


@settings(max_examples=200, deadline=None)
@given(_origins(), _uuid4s, _verticals, _secrets)
def test_relay_round_trip(
    origin: str, mailbox_id: str, vertical: Vertical | None, secret: bytes | None
) -> None:
    invitation = RelayInvitation.create(origin, mailbox_id, vertical, secret)
    url = invitation.to_url()
    assert RelayInvitation.parse(url) == invitation
    assert parse_invitation(url) == invitation
    assert RelayInvitation.parse(url).to_url() == url
    assert invitation.mailbox_url.startswith(invitation.relay_origin + "/v1/m/")
    assert "#" not in invitation.mailbox_url
    assert "?" not in invitation.mailbox_url


@settings(max_examples=200, deadline=None)
@given(_hosts, _ports, _uuid4s, _verticals, _secrets)
def test_direct_round_trip(
    host: str, port: int, session_id: str, vertical: Vertical | None, secret: bytes | None
) -> None:
    invitation = DirectInvitation.create(host, port, session_id, vertical, secret)
    url = invitation.to_url()
    assert DirectInvitation.parse(url) == invitation
    assert parse_invitation(url) == invitation
    if ":" in host:
        assert invitation.host == str(ipaddress.IPv6Address(host))


_url_alphabet = st.sampled_from(
    [*"abcxyzABC0189-._~:/?#[]@!$&'()*+,;=% \t\n\x00\x7f\u00e9\u200b\ud800", "v=", "/v1/m/"]
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(_url_alphabet, max_size=120).map("".join)))
def test_arbitrary_text_raises_only_invitation_error(text: str) -> None:
    for allow_draft_secret in (False, True):
        with contextlib.suppress(InvitationError):
            parse_invitation(text, allow_draft_secret=allow_draft_secret)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_mutated_valid_urls_raise_only_invitation_error(data: st.DataObject) -> None:
    url = data.draw(st.sampled_from([RELAY_URL, DIRECT_URL]))
    position = data.draw(st.integers(min_value=0, max_value=len(url)))
    insert = data.draw(st.one_of(_url_alphabet, st.text(max_size=3)))
    cut = data.draw(st.integers(min_value=0, max_value=3))
    mutated = url[:position] + insert + url[position + cut :]
    try:
        result = parse_invitation(mutated, allow_draft_secret=data.draw(st.booleans()))
    except InvitationError:
        return
    else:
        # Whatever still parses must write back to a URL that parses to the same invitation.
        assert parse_invitation(result.to_url(), allow_draft_secret=True) == result


def test_invitation_errors_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        parse_invitation("not a url")
