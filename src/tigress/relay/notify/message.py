"""The only thing a notification ever says: this mailbox changed, and its latest sequence."""

from __future__ import annotations

import json

MAX_MAILBOX_ID_LENGTH = 128
MAX_SEQ = 2**63 - 1


class NotificationMessageError(ValueError):
    """The service asked to announce an identifier or sequence number that cannot be right."""


def check_notification(mailbox_id: str, seq: int) -> None:
    """Refuse values that cannot be a real mailbox id and sequence number."""
    if not (
        isinstance(mailbox_id, str)
        and 0 < len(mailbox_id) <= MAX_MAILBOX_ID_LENGTH
        and mailbox_id.isascii()
        and mailbox_id.isprintable()
    ):
        raise NotificationMessageError("mailbox id must be 1..128 printable ASCII characters")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise NotificationMessageError("seq must be a non-negative 63-bit integer")


def notification_body(mailbox_id: str, seq: int) -> bytes:
    """Compact JSON ``{"type":"mailbox.changed","mailbox":...,"seq":N}``."""
    check_notification(mailbox_id, seq)
    payload = {"type": "mailbox.changed", "mailbox": mailbox_id, "seq": seq}
    return json.dumps(payload, separators=(",", ":")).encode("ascii")
