"""Malformed, oversized, wrong-type and hostile requests on every endpoint: a precise 4xx
problem+json naming the field or limit, and nothing stored changes."""

from __future__ import annotations

import dataclasses
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from tests.relay.conftest import (
    AEAD,
    LiveRelay,
    create_body,
    create_mailbox,
    headers,
    new_id,
)

PROBLEM = "https://tigress.dev/problems/"


def assert_problem(
    response: httpx2.Response, status: int, slug: str, detail_part: str = ""
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + slug
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert detail_part in problem["detail"]


def with_display(**fields: Any) -> dict[str, Any]:
    display = dict(create_body()["displayInformation"], **fields)
    return create_body(displayInformation=display)


BAD_CREATE_BODIES: list[tuple[str, Any, str]] = [
    ("missing payload", {"displayInformation": create_body()["displayInformation"]}, "payload"),
    ("missing display", {"payload": {"type": AEAD, "data": "eA=="}}, "displayInformation"),
    ("extra top field", create_body(extra=1), "extra"),
    ("payload not object", create_body(payload="x"), "payload"),
    ("payload extra", create_body(payload={"type": AEAD, "data": "eA==", "x": 1}), "payload.x"),
    ("type not string", create_body(payload={"type": 5, "data": "eA=="}), "payload.type"),
    ("type bad token", create_body(payload={"type": "a b", "data": "eA=="}), "payload.type"),
    ("data not base64", create_body(payload={"type": AEAD, "data": "<x>"}), "payload.data"),
    ("data empty", create_body(payload={"type": AEAD, "data": ""}), "payload.data"),
    ("data too long", create_body(payload={"type": AEAD, "data": "A" * 65537}), "65536"),
    ("title too long", with_display(title="t" * 129), "128"),
    ("title control char", with_display(title="a\x00b"), "U+0000"),
    ("description too long", with_display(description="d" * 513), "512"),
    ("image http", with_display(imageURL="http://img.example/a.png"), "https://"),
    ("image javascript", with_display(imageURL="javascript:alert(1)"), "https://"),
    ("image quote", with_display(imageURL='https://a.example/"onload='), "quotes"),
    ("image too long", with_display(imageURL="https://a.example/" + "a" * 2100), "2048"),
    ("title null", with_display(title=None), "displayInformation.title"),
    ("token not object", create_body(notificationToken=[]), "notificationToken"),
    (
        "token missing data",
        create_body(notificationToken={"type": "webhook"}),
        "notificationToken.tokenData",
    ),
    ("rights bad", create_body(mailboxConfiguration={"accessRights": "RX"}), "accessRights"),
    ("rights repeated", create_body(mailboxConfiguration={"accessRights": "RR"}), "accessRights"),
    (
        "expiration format",
        create_body(mailboxConfiguration={"expiration": "2030-01-01 00:00:00"}),
        "RFC 3339",
    ),
    (
        "expiration past",
        create_body(mailboxConfiguration={"expiration": "2001-01-01T00:00:00Z"}),
        "at least 60",
    ),
    (
        "expiration far",
        create_body(mailboxConfiguration={"expiration": "2999-01-01T00:00:00Z"}),
        "at most 172800",
    ),
    (
        "expiration invalid date",
        create_body(mailboxConfiguration={"expiration": "2030-02-30T00:00:00Z"}),
        "not a valid date",
    ),
    ("config extra", create_body(mailboxConfiguration={"x": 1}), "mailboxConfiguration.x"),
]


@pytest.mark.parametrize(
    ("body", "detail"), [c[1:] for c in BAD_CREATE_BODIES], ids=[c[0] for c in BAD_CREATE_BODIES]
)
def test_create_rejects_bad_bodies(client: httpx2.Client, body: Any, detail: str) -> None:
    response = client.post("/v1/m", json=body, headers=headers(new_id(), new_id()))
    assert response.status_code == 400, response.text
    assert detail in response.json()["detail"]
    assert response.json()["type"] in (PROBLEM + "invalid-field", PROBLEM + "malformed-json")


RAW_BODIES = [
    (b"{", "invalid JSON"),
    (b"[]", "JSON object"),
    (b'"x"', "JSON object"),
    (b'{"payload": NaN}', "NaN"),
    (b'{"a": 1, "a": 2}', "duplicate"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, ""),
]


@pytest.mark.parametrize(("raw", "detail"), RAW_BODIES)
def test_malformed_json_is_400(client: httpx2.Client, raw: bytes, detail: str) -> None:
    response = client.post(
        "/v1/m",
        content=raw,
        headers=headers(new_id(), new_id(), **{"Content-Type": "application/json"}),
    )
    if len(raw) > 81920:
        assert_problem(response, 413, "body-too-large")
    else:
        assert_problem(response, 400, "malformed-json", detail)


def test_header_problems(client: httpx2.Client) -> None:
    body = create_body()
    assert_problem(client.post("/v1/m", json=body), 401, "invalid-claim", "required")
    assert_problem(
        client.post("/v1/m", json=body, headers=headers("not-a-uuid", new_id())),
        401,
        "invalid-claim",
        "UUID",
    )
    assert_problem(
        client.post("/v1/m", json=body, headers=headers("{" + new_id() + "}", new_id())),
        401,
        "invalid-claim",
    )
    assert_problem(
        client.post("/v1/m", json=body, headers=headers(new_id())),
        400,
        "invalid-header",
        "Mailbox-Request-ID",
    )
    assert_problem(
        client.post("/v1/m", json=body, headers=headers(new_id(), "x")),
        400,
        "invalid-header",
    )
    assert_problem(
        client.post(
            "/v1/m",
            json=body,
            headers=headers(new_id(), new_id(), **{"Mailbox-Device-Attestation": "a" * 9000}),
        ),
        401,
        "invalid-attestation",
        "8192",
    )
    duplicated = [
        ("Mailbox-Device-Claim", new_id()),
        ("Mailbox-Device-Claim", new_id()),
        ("Mailbox-Request-ID", new_id()),
    ]
    assert_problem(
        client.post("/v1/m", json=body, headers=duplicated), 401, "invalid-claim", "once"
    )


def test_media_type_and_size(client: httpx2.Client) -> None:
    raw = json.dumps(create_body()).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        extra = {} if content_type is None else {"Content-Type": content_type}
        response = client.post("/v1/m", content=raw, headers=headers(new_id(), new_id(), **extra))
        assert_problem(response, 415, "unsupported-media-type")
    big = json.dumps(create_body(data="A" * 200_000)).encode()
    response = client.post(
        "/v1/m",
        content=big,
        headers=headers(new_id(), new_id(), **{"Content-Type": "application/json"}),
    )
    assert_problem(response, 413, "body-too-large", "81920")

    def chunks():
        for _ in range(100):
            yield b" " * 4096

    response = client.post(
        "/v1/m",
        content=chunks(),
        headers=headers(new_id(), new_id(), **{"Content-Type": "application/json"}),
    )
    assert_problem(response, 413, "body-too-large")


def test_lying_content_length_is_refused(relay: LiveRelay) -> None:
    """A small declared length followed by more bytes never gets a large body parsed: the server
    reads exactly the declared length (HTTP framing), and a large declared length is refused
    before reading."""
    target = urlsplit(relay.base_url)
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        head = (
            "POST /v1/m HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Mailbox-Device-Claim: {new_id()}\r\nMailbox-Request-ID: {new_id()}\r\n"
            "Content-Length: 10000000\r\n\r\n"
        ).encode()
        sock.sendall(head + b"{" * 1000)
        reply = sock.recv(65536).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413")
    assert "application/problem+json" in reply


def _snapshot(client: httpx2.Client, path: str, initiator: str, recipient: str) -> tuple[Any, ...]:
    a = client.post(path + "?after=0", headers=headers(initiator)).json()
    b = client.post(path + "?after=0", headers=headers(recipient)).json()
    return a, b, client.get(path).text


def test_hostile_requests_on_every_endpoint_change_nothing(client: httpx2.Client) -> None:
    initiator, recipient = new_id(), new_id()
    path, _ = create_mailbox(
        client, initiator, create_body(mailboxConfiguration={"accessRights": "RWD"})
    )
    client.post(path, headers=headers(recipient))
    before = _snapshot(client, path, initiator, recipient)
    stranger = new_id()
    payload = {"payload": {"type": AEAD, "data": "aGFjaw=="}}
    attempts: list[tuple[httpx2.Response, int, str]] = [
        (client.put(path, json=payload, headers=headers(stranger, new_id())), 401, "wrong-claim"),
        (client.put(path, json=payload, headers=headers(None, new_id())), 401, "invalid-claim"),
        (client.put(path, json=payload, headers=headers(initiator)), 400, "invalid-header"),
        (
            client.put(
                path, json={"payload": {"type": AEAD}}, headers=headers(initiator, new_id())
            ),
            400,
            "invalid-field",
        ),
        (
            client.put(path, json=dict(payload, extra=1), headers=headers(initiator, new_id())),
            400,
            "invalid-field",
        ),
        (
            client.put(
                path,
                content=b"{}",
                headers=headers(initiator, new_id(), **{"Content-Type": "text/xml"}),
            ),
            415,
            "unsupported-media-type",
        ),
        (client.delete(path, headers=headers(stranger, new_id())), 401, "wrong-claim"),
        (client.delete(path, headers=headers(initiator)), 400, "invalid-header"),
        (client.patch(path, headers=headers(stranger, new_id())), 401, "wrong-claim"),
        (client.patch(path, headers=headers(initiator, new_id())), 401, "wrong-claim"),
        (client.post(path, headers=headers(stranger)), 409, "already-bound"),
        (client.post(path, headers=headers("x")), 401, "invalid-claim"),
        (client.post(path + "?after=-1", headers=headers(initiator)), 400, "invalid-query"),
        (client.post(path + "?after=abc", headers=headers(initiator)), 400, "invalid-query"),
        (client.post(path + "?wait=61", headers=headers(initiator)), 400, "invalid-query"),
        (
            client.post(
                path,
                json={"notificationToken": {"type": "x"}},
                headers=headers(initiator),
            ),
            400,
            "invalid-field",
        ),
        (client.post(path, json={"bogus": 1}, headers=headers(initiator)), 400, "invalid-field"),
        (client.get(path + "/events", headers=headers(stranger)), 401, "wrong-claim"),
        (client.request("OPTIONS", path), 405, "method-not-allowed"),
        (client.get("/v1/m"), 405, "method-not-allowed"),
        (client.get("/nothing-here"), 404, "not-found"),
    ]
    for response, status, slug in attempts:
        assert_problem(response, status, slug)
    assert _snapshot(client, path, initiator, recipient) == before


def test_unknown_and_malformed_ids_answer_identically(client: httpx2.Client) -> None:
    claim = new_id()
    answers = [
        client.post(f"/v1/m/{new_id()}", headers=headers(claim)),
        client.post("/v1/m/not-a-uuid", headers=headers(claim)),
        client.post("/v1/m/" + "9" * 36, headers=headers(claim)),
    ]
    for response in answers:
        assert_problem(response, 404, "mailbox-not-found")
    assert len({r.text for r in answers}) == 1
    assert client.get(f"/v1/m/{new_id()}").text == answers[0].text


def test_rate_limit_answers_429_with_retry_after(start_relay: Any, relay_config: Any) -> None:
    limited = start_relay(
        dataclasses.replace(relay_config, rate_limit_per_second=1.0, rate_limit_burst=3)
    )
    with limited.client() as http:
        statuses = [
            http.post(f"/v1/m/{new_id()}", headers=headers(new_id())).status_code for _ in range(5)
        ]
        assert statuses[:3] == [404, 404, 404]
        assert statuses[3:] == [429, 429]
        response = http.get("/.well-known/tigress")
        assert_problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) >= 1
        assert http.get("/healthz").status_code == 200  # operations endpoints are not limited
        assert "tigress_relay_rate_limited_total 3" in http.get("/metrics").text


def test_mailbox_message_cap(start_relay: Any, relay_config: Any) -> None:
    capped = start_relay(dataclasses.replace(relay_config, messages_per_mailbox=3))
    with capped.client() as http:
        initiator = new_id()
        path, _ = create_mailbox(http, initiator)
        for _ in range(2):
            assert (
                http.put(
                    path,
                    json={"payload": {"type": AEAD, "data": "eA=="}},
                    headers=headers(initiator, new_id()),
                ).status_code
                == 200
            )
        full = http.put(
            path,
            json={"payload": {"type": AEAD, "data": "eA=="}},
            headers=headers(initiator, new_id()),
        )
        assert_problem(full, 409, "mailbox-full", "3 messages")
