"""Mailbox stores: the abstract API (:mod:`.base`) and a factory choosing one by URL.

``postgresql://`` URLs go to ``tigress.relay.stores.postgres.open_postgres_store(url,
durability=..., **options)``, which must return an unopened :class:`MailboxStore`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tigress.relay.stores.base import MailboxStore
from tigress.relay.stores.sqlite import SQLiteStore


class StoreURLError(ValueError):
    """The store URL has an unknown scheme or no usable path."""


def sqlite_path_from_url(url: str) -> Path:
    """``sqlite:///abs/path.db`` -> ``/abs/path.db``; ``sqlite:rel/path.db`` -> ``rel/path.db``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite://") :]
    elif url.startswith("sqlite://"):
        raise StoreURLError("use sqlite:///absolute/path.db or sqlite:relative/path.db")
    elif url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
    else:
        raise StoreURLError(f"not an sqlite URL: {url.split(':', 1)[0]}:...")
    if not path or path.endswith("/") or "?" in path or "#" in path:
        raise StoreURLError("the sqlite URL needs a database file path (no query or fragment)")
    return Path(path)


def open_store(url: str, *, durability: str = "normal", **options: Any) -> MailboxStore:
    """Build (not yet open) the store a URL names."""
    if url.startswith("sqlite:"):
        if durability not in ("normal", "full"):
            raise StoreURLError("durability must be 'normal' or 'full'")
        return SQLiteStore(sqlite_path_from_url(url), durability=durability)  # type: ignore[arg-type]
    if url.startswith(("postgresql://", "postgres://")):
        try:
            module = importlib.import_module("tigress.relay.stores.postgres")
        except ModuleNotFoundError as exc:
            if exc.name != "tigress.relay.stores.postgres":
                raise
            raise StoreURLError(
                "PostgreSQL support is not installed in this build"
                " (tigress.relay.stores.postgres is missing)"
            ) from None
        factory = module.open_postgres_store
        store: MailboxStore = factory(url, durability=durability, **options)
        return store
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise StoreURLError(f"unknown store URL scheme {scheme!r}: use sqlite: or postgresql:")
