"""A synchronous client for the tigress relay (draft-vinokurov-tigress-http-00 plus extensions).

Every write carries a ``Mailbox-Request-ID``; a retry reuses it, so the relay answers a repeat
with 201 and changes nothing.  Connection errors, 5xx and 429 are retried with exponential
backoff and full jitter (429 waits at least its ``Retry-After``), for a bounded number of
attempts.  Errors come out as :mod:`tigress.client.errors` classes.  Waiting for the peer uses
the relay's long-poll (``read(wait=...)``) or its event stream (``events``), never tight polling.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx2

from tigress.client.errors import (
    RateLimited,
    RelayError,
    RelayProtocolError,
    RelayUnavailable,
    error_for,
)
from tigress.client.sse import ServerSentEvent, SseError, parse_events

API_PREFIX = "/v1/m"
MAX_LONG_POLL_SECONDS = 60
_RETRY_AFTER_CAP = 60.0


def new_request_id() -> str:
    return str(uuid.uuid4())


def new_claim() -> str:
    """A fresh device claim (random v4 UUID); never reuse one across mailboxes."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class DisplayInformation:
    """The unencrypted preview the relay shows for a share link (all three fields required)."""

    title: str
    description: str
    image_url: str

    def to_json(self) -> dict[str, str]:
        return {"title": self.title, "description": self.description, "imageURL": self.image_url}


DEFAULT_DISPLAY = DisplayInformation(
    title="A key was shared with you",
    description="Open this link in a tigress wallet to receive it.",
    image_url="https://tigress.dev/share.png",
)


@dataclass(frozen=True)
class CreatedMailbox:
    url_link: str
    mailbox_id: str
    push_supported: bool
    duplicate: bool  # 201: the relay had already processed this request id


@dataclass(frozen=True)
class UpdateResult:
    seq: int | None  # None for a duplicate (201)
    push_supported: bool
    duplicate: bool


@dataclass(frozen=True)
class RelayMessage:
    seq: int
    payload: Any  # the peer's {type, data}, not yet validated


@dataclass(frozen=True)
class ReadResult:
    payload: Any  # the peer's latest message (draft shape) or None
    seq: int
    expiration: datetime
    messages: list[RelayMessage]  # every peer message after the cursor, oldest first
    display: Mapping[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt))."""
        ceiling = min(self.max_delay, self.base_delay * float(1 << attempt))
        return secrets.randbelow(1_000_000) / 1_000_000 * ceiling


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    if value.isascii() and value.isdigit():
        return min(float(value), _RETRY_AFTER_CAP)
    return None


def _parse_time(text: object) -> datetime:
    if not isinstance(text, str):
        raise RelayProtocolError(detail="expiration is not a string")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RelayProtocolError(detail="expiration is not RFC 3339") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RelayProtocolError(detail=f"{name} is not a non-negative integer")
    return value


class RelayClient:
    """One relay, addressed by its origin (``https://relay.example``)."""

    def __init__(
        self,
        origin: str,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.origin = origin.rstrip("/")
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx2.Client(
            base_url=self.origin,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,  # a redirect could move a claim to another host
            headers={"User-Agent": "tigress-wallet"},
        )

    def __repr__(self) -> str:
        return f"<RelayClient {self.origin}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport with retries --------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, int] | None = None,
        timeout: float | None = None,
    ) -> httpx2.Response:
        content = None
        all_headers = dict(headers)
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        last_error: RelayError | None = None
        for attempt in range(self._retry.max_attempts):
            if attempt:
                delay = self._retry.delay(attempt)
                if isinstance(last_error, RateLimited) and last_error.retry_after is not None:
                    delay = max(delay, last_error.retry_after)
                self._sleep(delay)
            try:
                response = self._http.request(
                    method,
                    path,
                    content=content,
                    headers=all_headers,
                    params=dict(params) if params else None,
                    timeout=timeout if timeout is not None else self._timeout,
                )
            except httpx2.TransportError as exc:
                last_error = RelayUnavailable(detail=type(exc).__name__)
                continue
            if response.status_code < 400:
                return response
            error = error_for(
                response.status_code, _json_or_none(response), retry_after=_retry_after(response)
            )
            if response.status_code >= 500 or response.status_code == 429:
                last_error = error
                continue
            raise error
        assert last_error is not None
        raise last_error

    @staticmethod
    def _json(response: httpx2.Response) -> dict[str, Any]:
        value = _json_or_none(response)
        if not isinstance(value, dict):
            raise RelayProtocolError(detail="response body is not a JSON object")
        return value

    @staticmethod
    def _headers(claim: str, request_id: str | None = None) -> dict[str, str]:
        headers = {"Mailbox-Device-Claim": claim}
        if request_id is not None:
            headers["Mailbox-Request-ID"] = request_id
        return headers

    @staticmethod
    def _path(mailbox_id: str) -> str:
        uuid.UUID(mailbox_id)  # never let a crafted id change the path
        return f"{API_PREFIX}/{mailbox_id}"

    # -- the draft's operations --------------------------------------------------------------

    def create_mailbox(
        self,
        payload: Mapping[str, str],
        display: DisplayInformation = DEFAULT_DISPLAY,
        *,
        claim: str,
        request_id: str | None = None,
        expires_at: datetime | None = None,
        access_rights: str = "RWD",
        notification_token: Mapping[str, str] | None = None,
    ) -> CreatedMailbox:
        body: dict[str, Any] = {
            "payload": dict(payload),
            "displayInformation": display.to_json(),
            "mailboxConfiguration": {"accessRights": access_rights},
        }
        if expires_at is not None:
            body["mailboxConfiguration"]["expiration"] = expires_at.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        if notification_token is not None:
            body["notificationToken"] = dict(notification_token)
        response = self._request(
            "POST",
            API_PREFIX,
            headers=self._headers(claim, request_id or new_request_id()),
            body=body,
        )
        reply = self._json(response)
        link = reply.get("urlLink")
        if not isinstance(link, str) or "/v1/m/" not in link:
            raise RelayProtocolError(detail="urlLink missing")
        mailbox_id = link.rsplit("/", 1)[1]
        try:
            self._path(mailbox_id)
        except ValueError as exc:
            raise RelayProtocolError(detail="urlLink has no mailbox id") from exc
        return CreatedMailbox(
            url_link=link,
            mailbox_id=mailbox_id,
            push_supported=reply.get("isPushNotificationSupported") is True,
            duplicate=response.status_code == 201,
        )

    def update(
        self,
        mailbox_id: str,
        payload: Mapping[str, str],
        *,
        claim: str,
        request_id: str | None = None,
        notification_token: Mapping[str, str] | None = None,
    ) -> UpdateResult:
        body: dict[str, Any] = {"payload": dict(payload)}
        if notification_token is not None:
            body["notificationToken"] = dict(notification_token)
        response = self._request(
            "PUT",
            self._path(mailbox_id),
            headers=self._headers(claim, request_id or new_request_id()),
            body=body,
        )
        reply = self._json(response)
        duplicate = response.status_code == 201
        seq = None if duplicate else _int(reply.get("seq"), "seq")
        return UpdateResult(seq, reply.get("isPushNotificationSupported") is True, duplicate)

    def read(
        self,
        mailbox_id: str,
        *,
        claim: str,
        after: int | None = None,
        wait: int | None = None,
    ) -> ReadResult:
        """Read the peer's messages (binds this claim as recipient on first read).

        With ``after`` the answer lists every peer message past that sequence number; with
        ``wait`` the relay holds the request until one arrives or the seconds pass.
        """
        params: dict[str, int] = {}
        if after is not None or wait is not None:
            params["after"] = after or 0
        if wait is not None:
            params["wait"] = max(0, min(int(wait), MAX_LONG_POLL_SECONDS))
        response = self._request(
            "POST",
            self._path(mailbox_id),
            headers=self._headers(claim),
            params=params,
            timeout=self._timeout + params.get("wait", 0),
        )
        reply = self._json(response)
        raw_messages = reply.get("messages", [])
        if not isinstance(raw_messages, list):
            raise RelayProtocolError(detail="messages is not a list")
        messages = []
        for item in raw_messages:
            if not isinstance(item, dict) or "payload" not in item:
                raise RelayProtocolError(detail="a message has no payload")
            messages.append(RelayMessage(_int(item.get("seq"), "seq"), item["payload"]))
        display = reply.get("displayInformation")
        return ReadResult(
            payload=reply.get("payload"),
            seq=_int(reply.get("seq", 0), "seq"),
            expiration=_parse_time(reply.get("expiration")),
            messages=messages,
            display=display if isinstance(display, dict) else {},
        )

    def delete(self, mailbox_id: str, *, claim: str, request_id: str | None = None) -> None:
        self._request(
            "DELETE",
            self._path(mailbox_id),
            headers=self._headers(claim, request_id or new_request_id()),
        )

    def relinquish(self, mailbox_id: str, *, claim: str, request_id: str | None = None) -> None:
        self._request(
            "PATCH",
            self._path(mailbox_id),
            headers=self._headers(claim, request_id or new_request_id()),
        )

    # -- extensions --------------------------------------------------------------------------

    def well_known(self) -> dict[str, Any]:
        """The relay's ``/.well-known/tigress`` metadata."""
        return self._json(self._request("GET", "/.well-known/tigress", headers={}))

    def events(
        self,
        mailbox_id: str,
        *,
        claim: str,
        last_event_id: int | None = None,
        read_timeout: float = 60.0,
    ) -> Iterator[ServerSentEvent]:
        """Server-sent events for the peer's writes; ends after a ``gone`` event.

        One connection; on a network error the iterator raises :class:`RelayUnavailable` and the
        caller resumes with the last event id it saw.
        """
        headers = self._headers(claim)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        headers["Accept"] = "text/event-stream"
        timeout = httpx2.Timeout(self._timeout, read=read_timeout)
        try:
            with self._http.stream(
                "GET", self._path(mailbox_id) + "/events", headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_for(
                        response.status_code,
                        _json_or_none(response),
                        retry_after=_retry_after(response),
                    )
                for event in parse_events(response.iter_bytes()):
                    yield event
                    if event.event == "gone":
                        return
        except httpx2.TransportError as exc:
            raise RelayUnavailable(detail=type(exc).__name__) from exc
        except SseError as exc:
            raise RelayProtocolError(detail=str(exc)) from exc
        raise RelayUnavailable(detail="the event stream ended without a gone event")


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None
