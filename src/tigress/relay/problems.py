"""RFC 9457 problem details: every error the relay returns, with a stable ``type`` URI.

The type URIs are identifiers, not links a client must fetch; they never change meaning.  The full
list with explanations is in ``docs/relay-api.md``.
"""

from __future__ import annotations

import json
from typing import Final

PROBLEM_BASE: Final = "https://tigress.dev/problems/"
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
#: ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` without building an encoder per
#: call (json.dumps does that whenever it is given options).
COMPACT_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

#: slug -> (status, title).  Stable: add, never rename.
PROBLEM_TYPES: Final[dict[str, tuple[int, str]]] = {
    "malformed-json": (400, "The request body is not valid JSON"),
    "invalid-field": (400, "A request field is missing, unexpected or invalid"),
    "invalid-header": (400, "A request header is missing or invalid"),
    "invalid-query": (400, "A query parameter is invalid"),
    "invalid-claim": (401, "The device claim is missing or malformed"),
    "invalid-attestation": (401, "The device attestation is malformed"),
    "wrong-claim": (401, "The device claim is not bound to this mailbox"),
    "access-denied": (403, "The mailbox's access rights do not allow this"),
    "mailbox-not-found": (404, "No such mailbox"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed"),
    "already-bound": (409, "The mailbox is bound to another device"),
    "mailbox-full": (409, "The mailbox holds its maximum number of messages"),
    "mailbox-deleted": (410, "The mailbox was deleted"),
    "body-too-large": (413, "The request body is too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "rate-limited": (429, "Too many requests"),
    "store-unavailable": (503, "The relay's store is unavailable"),
}


class ProblemError(Exception):
    """An error answered as ``application/problem+json``."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        status, title = PROBLEM_TYPES[slug]
        super().__init__(f"{slug}: {detail}")
        self.slug = slug
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def body(self) -> bytes:
        document: dict[str, object] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            document["field"] = self.field
        return COMPACT_JSON.encode(document).encode()


def invalid_field(field: str, detail: str) -> ProblemError:
    return ProblemError("invalid-field", f"{field}: {detail}", field=field)
