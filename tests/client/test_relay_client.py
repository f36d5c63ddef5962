"""Relay client pieces: SSE parsing (with hypothesis), problem mapping, trust, live calls."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.client.support import RelayProcess

from tigress.client.errors import (
    MailboxConflict,
    MailboxGone,
    MailboxNotFound,
    RateLimited,
    RelayUntrusted,
    error_for,
)
from tigress.client.relay import RelayClient, new_claim
from tigress.client.sse import SseError, SseParser, iter_lines, parse_events
from tigress.client.trust import RelayTrust

pytestmark = pytest.mark.timeout(60)


def test_sse_parser_follows_the_dispatch_rules() -> None:
    stream = [
        b"retry: 2000\r\n\r\n: heartbeat\n",
        b'event: message\nid: 7\ndata: {"seq"',
        b": 7}\n\n",
    ]
    stream += [b"data: a\rdata: b\r\n\r\nevent: gone\ndata: x\n\n", b"data: incomplete"]
    events = list(parse_events(stream))
    assert [(e.event, e.data, e.id) for e in events] == [
        ("message", '{"seq": 7}', "7"),
        ("message", "a\nb", "7"),
        ("gone", "x", "7"),
    ]


def test_sse_limits() -> None:
    with pytest.raises(SseError):
        list(iter_lines([b"x" * 9000 + b"\n"]))
    parser = SseParser(max_event=10)
    with pytest.raises(SseError):
        parser.feed("data: " + "y" * 20)
    with pytest.raises(SseError):
        list(iter_lines([b"\xff\xfe\n"]))


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_sse_parser_never_raises_anything_else(chunks: list[bytes]) -> None:
    try:
        for event in parse_events(chunks):
            assert isinstance(event.data, str)
    except SseError:
        pass


def test_problem_documents_become_sentences() -> None:
    base = "https://tigress.dev/problems/"
    conflict = error_for(409, {"type": base + "already-bound", "detail": "x"})
    assert isinstance(conflict, MailboxConflict)
    assert str(conflict).startswith("Another device has already accepted this share")
    assert isinstance(error_for(410, {"type": base + "mailbox-deleted"}), MailboxGone)
    assert str(error_for(410, None)) == "The share was cancelled or has expired."
    assert isinstance(error_for(404, "junk"), MailboxNotFound)
    limited = error_for(429, {}, retry_after=3)
    assert isinstance(limited, RateLimited) and limited.retry_after == 3


def test_trust_policy() -> None:
    trust = RelayTrust(["https://relay.example"])
    assert trust.check_origin("HTTPS://Relay.Example:443") == "https://relay.example"
    with pytest.raises(RelayUntrusted, match="not on this device's list"):
        trust.check_origin("https://other.example")
    with pytest.raises(RelayUntrusted, match="https"):
        RelayTrust().check_origin("http://relay.example")
    assert RelayTrust().check_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_trust_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIGRESS_TRUSTED_RELAYS", "https://a.example, https://b.example")
    assert RelayTrust.from_environment().allowed_origins == [
        "https://a.example",
        "https://b.example",
    ]


def test_live_relay_metadata_and_events(relay: RelayProcess) -> None:
    RelayTrust().evaluate(relay.base_url)
    sender, receiver = new_claim(), new_claim()
    with RelayClient(relay.base_url) as client:
        created = client.create_mailbox(
            {"type": "tigress-pending-v1", "data": "AA=="}, claim=sender
        )
        first = client.read(created.mailbox_id, claim=receiver, after=0)
        assert [m.seq for m in first.messages] == [1]
        with pytest.raises(MailboxConflict):
            client.read(created.mailbox_id, claim=new_claim())
        seen: list[str] = []
        got_message = threading.Event()

        def listen() -> None:
            # Resuming after seq 1: the update below arrives whether it precedes the connection.
            with RelayClient(relay.base_url) as own:
                for event in own.events(created.mailbox_id, claim=receiver, last_event_id=1):
                    seen.append(event.event)
                    got_message.set()

        thread = threading.Thread(target=listen)
        thread.start()
        update = client.update(
            created.mailbox_id, {"type": "tigress-noise-v1", "data": "AAAA"}, claim=sender
        )
        assert update.seq == 2
        waited = client.read(created.mailbox_id, claim=receiver, after=1, wait=5)
        assert [m.seq for m in waited.messages] == [2]
        assert got_message.wait(timeout=20)
        client.delete(created.mailbox_id, claim=sender)
        thread.join(timeout=20)
        assert seen == ["message", "gone"]
        with pytest.raises(MailboxGone):
            client.read(created.mailbox_id, claim=receiver)
