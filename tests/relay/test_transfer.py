"""The draft's whole flow over real HTTP, with the extensions: message log, cursor, long-poll,
SSE, idempotent retries, access rights, relinquish, delete."""

from __future__ import annotations

import re
import threading
import time
from html.parser import HTMLParser

import httpx2
from tests.relay.conftest import (
    AEAD,
    LiveRelay,
    create_body,
    create_mailbox,
    headers,
    mailbox_path,
    new_id,
)

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def put(http: httpx2.Client, path: str, claim: str, data: str, request_id: str | None = None):
    return http.put(
        path,
        json={"payload": {"type": AEAD, "data": data}},
        headers=headers(claim, request_id or new_id()),
    )


def test_three_message_transfer_through_every_endpoint(client: httpx2.Client) -> None:
    initiator, recipient = new_id(), new_id()
    create_request = new_id()
    response = client.post(
        "/v1/m",
        json=create_body("bWVzc2FnZTE=", mailboxConfiguration={"accessRights": "RWD"}),
        headers=headers(initiator, create_request),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["mailbox-request-id"] == create_request
    created = response.json()
    assert set(created) == {"urlLink", "isPushNotificationSupported"}
    assert created["isPushNotificationSupported"] is False
    assert re.fullmatch(
        r"https://relay\.test/v1/m/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        created["urlLink"],
    )
    path = mailbox_path(created["urlLink"])

    # The public preview.
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    # message 1: the recipient binds and reads.
    read = client.post(path, headers=headers(recipient))
    assert read.status_code == 200
    document = read.json()
    assert set(document) == {"displayInformation", "payload", "expiration", "seq"}
    assert document["displayInformation"] == create_body()["displayInformation"]
    assert document["payload"] == {"type": AEAD, "data": "bWVzc2FnZTE="}
    assert RFC3339.fullmatch(document["expiration"])
    assert document["seq"] == 1

    # The initiator reads before the recipient wrote: payload null, seq 0.
    early = client.post(path, headers=headers(initiator)).json()
    assert early["payload"] is None
    assert early["seq"] == 0

    # message 2: recipient -> initiator.
    update = put(client, path, recipient, "bWVzc2FnZTI=")
    assert update.status_code == 200
    assert update.json() == {"isPushNotificationSupported": False, "seq": 2}
    got = client.post(path, headers=headers(initiator)).json()
    assert got["payload"]["data"] == "bWVzc2FnZTI="
    assert got["seq"] == 2

    # message 3: initiator -> recipient.
    assert put(client, path, initiator, "bWVzc2FnZTM=").status_code == 200
    got = client.post(path, headers=headers(recipient)).json()
    assert got["payload"]["data"] == "bWVzc2FnZTM="
    assert got["seq"] == 3

    # The recipient deletes; afterwards the relay refuses everything.
    deleted = client.delete(path, headers=headers(recipient, new_id()))
    assert deleted.status_code == 200
    assert client.post(path, headers=headers(recipient)).status_code == 410
    assert client.post(path, headers=headers(initiator)).status_code == 410
    assert put(client, path, initiator, "eA==").status_code == 410
    assert client.get(path).status_code == 404
    # A stranger cannot tell a deleted mailbox from an unknown one.
    stranger = client.post(path, headers=headers(new_id()))
    unknown = client.post(f"/v1/m/{new_id()}", headers=headers(new_id()))
    assert stranger.status_code == unknown.status_code == 404
    assert stranger.json() == unknown.json()


def test_duplicate_requests_get_201_and_change_nothing(client: httpx2.Client) -> None:
    initiator, recipient = new_id(), new_id()
    request_id = new_id()
    first = client.post("/v1/m", json=create_body(), headers=headers(initiator, request_id))
    again = client.post("/v1/m", json=create_body(), headers=headers(initiator, request_id))
    assert first.status_code == 200
    assert again.status_code == 201
    assert again.json()["urlLink"] == first.json()["urlLink"]  # a lost response is recoverable
    path = mailbox_path(first.json()["urlLink"])
    # Same Request-ID from another claim is a different request.
    other = client.post("/v1/m", json=create_body(), headers=headers(new_id(), request_id))
    assert other.status_code == 200
    assert other.json()["urlLink"] != first.json()["urlLink"]

    client.post(path, headers=headers(recipient))
    update_id = new_id()
    assert put(client, path, initiator, "Zmlyc3Q=", update_id).status_code == 200
    dup = put(client, path, initiator, "c2Vjb25k", update_id)
    assert dup.status_code == 201
    log = client.post(path + "?after=0", headers=headers(recipient)).json()
    assert [m["payload"]["data"] for m in log["messages"]] == ["aGVsbG8=", "Zmlyc3Q="]

    delete_id = new_id()
    assert client.delete(path, headers=headers(initiator, delete_id)).status_code == 200
    assert client.delete(path, headers=headers(initiator, delete_id)).status_code == 201
    assert client.delete(path, headers=headers(initiator, new_id())).status_code == 410


def test_back_to_back_messages_are_never_lost(client: httpx2.Client) -> None:
    initiator, recipient = new_id(), new_id()
    path, _ = create_mailbox(client, initiator)
    first = client.post(path + "?after=0", headers=headers(recipient)).json()
    assert [m["seq"] for m in first["messages"]] == [1]
    cursor = first["seq"]
    for data in ("b25l", "dHdv", "Y2FuY2Vs"):
        assert put(client, path, initiator, data).status_code == 200
    batch = client.post(f"{path}?after={cursor}", headers=headers(recipient)).json()
    assert [m["payload"]["data"] for m in batch["messages"]] == ["b25l", "dHdv", "Y2FuY2Vs"]
    assert [m["seq"] for m in batch["messages"]] == [2, 3, 4]
    assert batch["payload"]["data"] == "Y2FuY2Vs"
    assert batch["seq"] == 4
    empty = client.post(f"{path}?after=4", headers=headers(recipient)).json()
    assert empty["messages"] == []
    assert empty["seq"] == 4


RWD = create_body(mailboxConfiguration={"accessRights": "RWD"})


def test_long_poll_wakes_on_write(client: httpx2.Client, relay: LiveRelay) -> None:
    initiator, recipient = new_id(), new_id()
    path, _ = create_mailbox(client, initiator, RWD)
    client.post(path, headers=headers(recipient))

    def write_later() -> None:
        time.sleep(0.3)
        with relay.client() as other:
            put(other, path, recipient, "d2FrZQ==")

    writer = threading.Thread(target=write_later)
    started = time.monotonic()
    writer.start()
    woke = client.post(f"{path}?after=0&wait=20", headers=headers(initiator))
    elapsed = time.monotonic() - started
    writer.join()
    assert woke.status_code == 200
    assert [m["payload"]["data"] for m in woke.json()["messages"]] == ["d2FrZQ=="]
    assert 0.25 < elapsed < 5

    # Nothing written: the wait ends with 200 and an empty list.
    started = time.monotonic()
    idle = client.post(f"{path}?after=2&wait=1", headers=headers(initiator))
    assert idle.status_code == 200
    assert idle.json()["messages"] == []
    assert time.monotonic() - started >= 0.9


def _sse_events(response: httpx2.Response, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if current:
                events.append(current)
                current = {}
                if len(events) >= count:
                    break
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value.strip()
    return events


def test_sse_streams_peer_writes_and_ends_on_delete(
    client: httpx2.Client, relay: LiveRelay
) -> None:
    initiator, recipient = new_id(), new_id()
    path, _ = create_mailbox(client, initiator, RWD)
    client.post(path, headers=headers(recipient))

    def writer() -> None:
        time.sleep(0.3)
        with relay.client() as other:
            put(other, path, initiator, "c2Vjb25k")  # the recipient's own peer
            put(other, path, recipient, "b3du")  # own write: no event for the recipient
            time.sleep(0.2)
            other.delete(path, headers=headers(initiator, new_id()))

    thread = threading.Thread(target=writer)
    thread.start()
    with client.stream(
        "GET", path + "/events", headers=headers(recipient, **{"Last-Event-ID": "1"})
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(stream, 3)
    thread.join()
    assert events[0] == {"retry": "2000"}
    assert events[1] == {"event": "message", "id": "2", "data": '{"seq": 2}'}
    assert events[2] == {"event": "gone", "data": '{"reason": "deleted"}'}


def test_sse_requires_a_bound_claim(client: httpx2.Client) -> None:
    initiator = new_id()
    path, _ = create_mailbox(client, initiator)
    assert client.get(path + "/events", headers=headers(new_id())).status_code == 401
    assert client.get(path + "/events").status_code == 401
    assert client.get(f"/v1/m/{new_id()}/events", headers=headers(initiator)).status_code == 404


def test_access_rights_are_honoured(client: httpx2.Client) -> None:
    initiator, recipient = new_id(), new_id()
    path, _ = create_mailbox(client, initiator)  # default RD
    assert client.post(path, headers=headers(recipient)).status_code == 200
    denied = put(client, path, recipient, "bm8=")
    assert denied.status_code == 403
    assert denied.json()["type"] == "https://tigress.dev/problems/access-denied"
    assert put(client, path, initiator, "eWVz").status_code == 200

    read_only = create_body(mailboxConfiguration={"accessRights": "R"})
    path2, _ = create_mailbox(client, initiator, read_only)
    client.post(path2, headers=headers(recipient))
    assert client.delete(path2, headers=headers(recipient, new_id())).status_code == 403
    assert client.delete(path2, headers=headers(initiator, new_id())).status_code == 200

    no_read = create_body(mailboxConfiguration={"accessRights": "D"})
    path3, _ = create_mailbox(client, initiator, no_read)
    assert client.post(path3, headers=headers(recipient)).status_code == 403


def test_binding_and_relinquish(client: httpx2.Client) -> None:
    initiator, first, second = new_id(), new_id(), new_id()
    path, _ = create_mailbox(
        client, initiator, create_body(mailboxConfiguration={"accessRights": "RWD"})
    )
    assert client.post(path, headers=headers(first)).status_code == 200
    assert put(client, path, first, "ZnJvbSBmaXJzdA==").status_code == 200
    taken = client.post(path, headers=headers(second))
    assert taken.status_code == 409
    assert taken.json()["type"] == "https://tigress.dev/problems/already-bound"
    # Only the recipient relinquishes; a duplicate gets 201.
    assert client.patch(path, headers=headers(initiator, new_id())).status_code == 401
    relinquish_id = new_id()
    assert client.patch(path, headers=headers(first, relinquish_id)).status_code == 200
    assert client.patch(path, headers=headers(first, relinquish_id)).status_code == 201
    assert client.patch(path, headers=headers(first, new_id())).status_code == 401
    # The old recipient lost access; another device binds and starts afresh.
    assert client.post(path, headers=headers(first)).status_code == 200  # binds again as new
    assert client.patch(path, headers=headers(first, new_id())).status_code == 200
    assert client.post(path, headers=headers(second)).status_code == 200
    view = client.post(path + "?after=0", headers=headers(initiator)).json()
    assert view["messages"] == []
    assert view["payload"] is None


def test_preview_page_is_escaped_and_locked_down(client: httpx2.Client) -> None:
    hostile = {
        "title": '"><script>alert(1)</script>',
        "description": "<img src=x onerror=alert(2)> & ' \"",
        "imageURL": "https://img.example/a.png?x=1&y=2",
    }
    path, _ = create_mailbox(client, new_id(), create_body(displayInformation=hostile))
    page = client.get(path + "?v=c")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    assert "onerror=alert" not in page.text.replace("&", "")[:0]

    class Meta(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.og: dict[str, str] = {}
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            values = dict(attrs)
            if tag == "meta" and (values.get("property") or "").startswith("og:"):
                self.og[values["property"] or ""] = values.get("content") or ""

    parser = Meta()
    parser.feed(page.text)
    assert "script" not in parser.tags
    assert parser.og["og:title"] == hostile["title"]
    assert parser.og["og:description"] == hostile["description"]
    assert parser.og["og:image"] == hostile["imageURL"]
    assert parser.og["og:url"] == "https://relay.test" + path
    assert parser.og["og:type"] == "website"
    assert parser.og["og:image:width"].isdigit()
    assert parser.og["og:image:height"].isdigit()
    # Side-effect free: previews do not bind or consume anything.
    recipient = new_id()
    assert client.post(path, headers=headers(recipient)).status_code == 200


def test_metadata_health_and_metrics(client: httpx2.Client) -> None:
    meta = client.get("/.well-known/tigress").json()
    assert meta["apiVersions"] == ["v1"]
    assert {"AEAD_AES_128_GCM", "AEAD_AES_256_GCM", "tigress-noise-v1"} <= set(meta["payloadTypes"])
    assert {"sse", "long-poll"} <= set(meta["notificationTypes"])
    assert meta["attestationPolicy"] == "none"
    assert meta["limits"]["payloadDataMaxBytes"] == 65536
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}

    path, _ = create_mailbox(client, new_id())
    text = client.get("/metrics").text
    assert 'tigress_relay_requests_total{route="/v1/m",method="POST",status="200"}' in text
    assert 'tigress_relay_mailboxes_total{outcome="created"} 1' in text
    assert "tigress_relay_request_duration_seconds_bucket" in text
    assert path.rsplit("/", 1)[1] not in text
    assert path.rsplit("/", 1)[1][:8] not in text
