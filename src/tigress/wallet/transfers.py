"""Transfers in progress (and finished ones), persisted after every step.

A record holds what the runner needs to resume after the program exits: the channel state
(``Sender``/``Receiver.to_bytes()``, which holds keys), the vertical flow's state, the cursor (the
last peer message processed) and the *outbox* — frames produced by a step but not yet confirmed
delivered.  The runner saves state, cursor and outbox in one transaction before it sends, and
sends each outbox frame with a request id stored next to it, so a crash at any point neither
loses nor repeats a step: on restart it re-sends the saved frames (the relay recognises the
request id) and continues after the cursor.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from tigress.wallet.api import TransferNotFound, WalletCorrupted, WalletError
from tigress.wallet.database import SealedStore, from_text, to_text, utc_now

_TABLE = "transfers"


class TransferStatus(StrEnum):
    PENDING = "pending"
    WAITING_FOR_PIN = "waiting-for-pin"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (TransferStatus.FINISHED, TransferStatus.FAILED, TransferStatus.CANCELLED)


TransferRole = Literal["sender", "receiver"]
TransportKind = Literal["relay", "direct"]


@dataclass(frozen=True)
class OutgoingFrame:
    """A frame saved before it is sent; ``request_id`` makes a re-send idempotent."""

    request_id: str
    frame: bytes = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {"rid": self.request_id, "frame": base64.b64encode(self.frame).decode("ascii")}

    @classmethod
    def from_json(cls, value: Any) -> OutgoingFrame:
        return cls(str(value["rid"]), base64.b64decode(value["frame"]))


def new_transfer_id() -> str:
    return "t-" + secrets.token_hex(5)


@dataclass
class TransferRecord:
    """One transfer as the wallet stores it.  Secret-bearing fields are sealed at rest."""

    id: str
    role: TransferRole
    transport: TransportKind
    status: TransferStatus = TransferStatus.PENDING
    vertical: str | None = None
    credential_id: str | None = None  # sender: the credential shared
    relay_origin: str | None = None
    mailbox_id: str | None = None
    invitation_url: str | None = None  # never contains the secret
    direct_host: str | None = None
    direct_port: int | None = None
    claim: str | None = field(default=None, repr=False)  # own device claim, fresh per mailbox
    cursor: int = 0  # highest peer message sequence number processed
    session_state: bytes | None = field(default=None, repr=False)
    flow_state: dict[str, Any] | None = field(default=None, repr=False)
    outbox: list[OutgoingFrame] = field(default_factory=list, repr=False)
    detail: str = ""
    peer_code: str | None = None  # the peer's cancel/error code, if it sent one
    result_credential_id: str | None = None  # receiver: installed; sender: issued
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def copy(self) -> TransferRecord:
        return replace(self, outbox=list(self.outbox))


class TransferStore(SealedStore):
    """Transfer records on the wallet database."""

    # -- sealing ---------------------------------------------------------------------------

    def _seal(self, record_id: str, column: str, value: bytes | None) -> bytes | None:
        return None if value is None else self._sealer.seal(_TABLE, record_id, column, value)

    def _open(self, record_id: str, column: str, value: bytes | None) -> bytes | None:
        if value is None:
            return None
        return self._sealer.open(_TABLE, record_id, column, bytes(value))

    def _values(self, record: TransferRecord) -> dict[str, object]:
        flow = (
            None
            if record.flow_state is None
            else json.dumps(record.flow_state, sort_keys=True, separators=(",", ":")).encode()
        )
        outbox = json.dumps([frame.to_json() for frame in record.outbox]).encode()
        return {
            "role": record.role,
            "vertical": record.vertical,
            "credential_id": record.credential_id,
            "transport": record.transport,
            "relay_origin": record.relay_origin,
            "mailbox_id": record.mailbox_id,
            "invitation_url": record.invitation_url,
            "direct_host": record.direct_host,
            "direct_port": record.direct_port,
            "cursor": record.cursor,
            "status": TransferStatus(record.status).value,
            "detail": record.detail,
            "peer_code": record.peer_code,
            "result_credential_id": record.result_credential_id,
            "expires_at": to_text(record.expires_at),
            "created_at": to_text(record.created_at),
            "updated_at": to_text(record.updated_at),
            "claim": self._seal(
                record.id, "claim", None if record.claim is None else record.claim.encode()
            ),
            "session_state": self._seal(record.id, "session_state", record.session_state),
            "flow_state": self._seal(record.id, "flow_state", flow),
            "outbox": self._seal(record.id, "outbox", outbox),
        }

    def _from_row(self, row: sqlite3.Row) -> TransferRecord:
        record_id = row["id"]
        try:
            claim = self._open(record_id, "claim", row["claim"])
            flow = self._open(record_id, "flow_state", row["flow_state"])
            outbox = self._open(record_id, "outbox", row["outbox"])
            return TransferRecord(
                id=record_id,
                role=row["role"],
                transport=row["transport"],
                status=TransferStatus(row["status"]),
                vertical=row["vertical"],
                credential_id=row["credential_id"],
                relay_origin=row["relay_origin"],
                mailbox_id=row["mailbox_id"],
                invitation_url=row["invitation_url"],
                direct_host=row["direct_host"],
                direct_port=row["direct_port"],
                claim=None if claim is None else claim.decode(),
                cursor=int(row["cursor"]),
                session_state=self._open(record_id, "session_state", row["session_state"]),
                flow_state=None if flow is None else json.loads(flow),
                outbox=[]
                if outbox is None
                else [OutgoingFrame.from_json(item) for item in json.loads(outbox)],
                detail=row["detail"],
                peer_code=row["peer_code"],
                result_credential_id=row["result_credential_id"],
                expires_at=from_text(row["expires_at"]),
                created_at=from_text(row["created_at"]),
                updated_at=from_text(row["updated_at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WalletCorrupted(f"Transfer {record_id} is damaged in the wallet file.") from exc

    # -- public API ------------------------------------------------------------------------

    def create(self, record: TransferRecord) -> TransferRecord:
        now = utc_now()
        record.created_at = record.created_at or now
        record.updated_at = now
        values = self._values(record)
        columns = ", ".join(("id", *values))
        marks = ", ".join("?" * (len(values) + 1))
        try:
            with self._db.transaction() as tx:
                tx.execute(
                    f"INSERT INTO transfers ({columns}) VALUES ({marks})",  # noqa: S608 - fixed names
                    (record.id, *values.values()),
                )
        except sqlite3.IntegrityError as exc:
            raise WalletError(f"A transfer with id {record.id!r} already exists.") from exc
        return record

    def save(self, record: TransferRecord) -> None:
        """Write the whole record — state, cursor, outbox — in one transaction."""
        record.updated_at = utc_now()
        values = self._values(record)
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._db.transaction() as tx:
            cursor = tx.execute(
                f"UPDATE transfers SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
                (*values.values(), record.id),
            )
        if cursor.rowcount == 0:
            raise TransferNotFound(f"No transfer {record.id!r} in this wallet.")

    def get(self, transfer_id: str) -> TransferRecord:
        rows = self._db.query("SELECT * FROM transfers WHERE id = ?", (transfer_id,))
        if not rows:
            raise TransferNotFound(f"No transfer {transfer_id!r} in this wallet.")
        return self._from_row(rows[0])

    def find(self, text: str) -> TransferRecord:
        """By id or unique id prefix."""
        rows = self._db.query("SELECT * FROM transfers WHERE id = ?", (text,))
        if not rows:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._db.query(
                "SELECT * FROM transfers WHERE id LIKE ? ESCAPE '\\'", (escaped + "%",)
            )
        if len(rows) == 1:
            return self._from_row(rows[0])
        if len(rows) > 1:
            raise TransferNotFound(f"{text!r} matches {len(rows)} transfers; give more of the id.")
        raise TransferNotFound(f"No transfer matches {text!r}; list them with 'tigress transfers'.")

    def list(self, *, active_only: bool = False) -> list[TransferRecord]:
        if active_only:
            rows = self._db.query(
                "SELECT * FROM transfers WHERE status IN (?, ?) ORDER BY created_at, id",
                (TransferStatus.PENDING.value, TransferStatus.WAITING_FOR_PIN.value),
            )
        else:
            rows = self._db.query("SELECT * FROM transfers ORDER BY created_at, id")
        return [self._from_row(row) for row in rows]

    def delete(self, transfer_id: str) -> None:
        with self._db.transaction() as tx:
            cursor = tx.execute("DELETE FROM transfers WHERE id = ?", (transfer_id,))
        if cursor.rowcount == 0:
            raise TransferNotFound(f"No transfer {transfer_id!r} in this wallet.")


__all__ = [
    "OutgoingFrame",
    "TransferRecord",
    "TransferRole",
    "TransferStatus",
    "TransferStore",
    "TransportKind",
    "new_transfer_id",
]
