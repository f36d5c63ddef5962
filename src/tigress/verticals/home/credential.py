"""The home key's wire format ``tigress.home.key.v1``: a copy of the lock's symmetric key.

Content (canonical JSON object, exactly these fields)::

    {"lock_id": "<id>", "label": "<1..128 chars>", "key": "<base64url of 32 bytes>"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tigress.verticals.common import (
    b64url,
    exact_fields,
    expect_object,
    id_field,
    text_field,
    unb64url,
)
from tigress.verticals.home.lock import KEY_SIZE

HOME_KEY_FORMAT = "tigress.home.key.v1"


@dataclass(frozen=True)
class HomeKey:
    lock_id: str
    label: str
    key: bytes = field(repr=False)

    def to_content(self) -> dict[str, Any]:
        return {"lock_id": self.lock_id, "label": self.label, "key": b64url(self.key)}

    @classmethod
    def parse(cls, content: Any, where: str = "home key") -> HomeKey:
        obj: Mapping[str, Any] = expect_object(content, where)
        exact_fields(obj, where, {"lock_id", "label", "key"})
        return cls(
            lock_id=id_field(obj, "lock_id", where),
            label=text_field(obj, "label", where),
            key=unb64url(obj["key"], f"{where}.key", size=KEY_SIZE),
        )
