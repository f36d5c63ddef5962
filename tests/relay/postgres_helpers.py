"""Helpers for tests on PostgreSQL: per-test schemas on the server ``TIGRESS_TEST_POSTGRES_DSN``
names, and direct queries to inspect what the store wrote."""

from __future__ import annotations

import asyncio
import concurrent.futures
import urllib.parse
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


def schema_url(dsn: str, schema: str, *, pool_max: int = 4, pool_min: int = 1) -> str:
    """``dsn`` with tigress's ``schema``/pool parameters added (small pools: many tests run)."""
    separator = "&" if urllib.parse.urlsplit(dsn).query else "?"
    return f"{dsn}{separator}schema={schema}&pool_min={pool_min}&pool_max={pool_max}"


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


async def drop_schema_async(dsn: str, schema: str) -> None:
    assert schema.startswith("t_") and schema.isidentifier()  # only ever our own test schemas
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def drop_schema(dsn: str, schema: str) -> None:
    run_sync(drop_schema_async(dsn, schema))


async def fetch_all(dsn: str, schema: str, query: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()
