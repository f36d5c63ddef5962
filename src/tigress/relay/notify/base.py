"""The narrow interface between the mailbox service and push delivery.

The service validates a ``notificationToken`` when a device deposits it, stores it with the
mailbox, and, after a write commits, asks the dispatcher to wake the *other* side.  Delivery runs
in the background: it never sits on the request path and its failures never fail a request.
"""

from __future__ import annotations

from typing import Protocol


class NotificationTokenError(ValueError):
    """A token of a supported type whose ``tokenData`` is malformed or not allowed (HTTP 400)."""


class PushDispatcher(Protocol):
    @property
    def supported_types(self) -> frozenset[str]:
        """Token types this relay can deliver, e.g. ``{"webhook", "webpush"}``."""
        ...

    def validate(self, token_type: str, token_data: str) -> bool:
        """Check a deposited token.

        Returns True when the type is supported and the data valid, False when the type is not
        supported (the relay then answers ``isPushNotificationSupported: false`` and does not store
        it), and raises NotificationTokenError when a supported type carries bad data.
        """
        ...

    def notify(self, token_type: str, token_data: str, *, mailbox_id: str, seq: int) -> None:
        """Queue one wake-up; returns at once, never raises for delivery problems."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class NoPushDispatcher:
    """The dispatcher of a relay configured without push: supports no token type."""

    @property
    def supported_types(self) -> frozenset[str]:
        return frozenset()

    def validate(self, token_type: str, token_data: str) -> bool:
        return False

    def notify(self, token_type: str, token_data: str, *, mailbox_id: str, seq: int) -> None:
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
