"""Relay benchmarks (issue #3, "Speed"): transfers, notification latency, idle waiters, scale.

Every figure is measured against a reference taken in the same run — a bare Starlette echo on the
same uvicorn settings — because the 2-core machine is shared and noisy: ratios travel, absolute
numbers do not.  Servers run in subprocesses on ephemeral loopback ports; load comes from
``relay_load.py`` in another process; every loop is bounded in count and time.

Run ``./dev bench relay --quick`` (about a minute) or ``./dev bench relay`` (the full set), or pick
sections: ``--transfers``, ``--notify``, ``--idle``, ``--scale``.  Results go to
``benchmarks/results/relay_<section>[_quick].json``; a table is printed for each section.
See benchmarks/README.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sqlite3
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay_common import (
    LoadProcess,
    Server,
    ServerSpec,
    build_loadgen,
    machine_description,
    percentile,
    print_table,
    run_load,
    running,
    start_server,
    write_results,
)

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
OPS = ("create", "read1", "update1", "read2", "update2", "read3", "delete")

# The bars of issue #3 / BRIEF §4.
BAR_CPU_MS = 0.5
BAR_TPS_SQLITE = 1500.0
BAR_P99_MS = 50.0
BAR_TPS_FULL = 650.0
BAR_NOTIFY_P99_MS = 10.0
BAR_SCALE_RISE = 0.20
# The brief states its CPU bar on a machine where a bare Starlette echo costs ~40 µs of server CPU
# per request (25k small JSON POSTs/s on one uvicorn worker).  The same bar on the machine at hand
# is that many echo requests: 0.5 ms / (7 x 40 µs) = 1.79 times the in-run echo's CPU per
# 7-request transfer.  Both forms are reported; neither replaces the other.
BRIEF_ECHO_US_PER_REQUEST = 40.0
BAR_CPU_VS_ECHO = BAR_CPU_MS / (len(OPS) * BRIEF_ECHO_US_PER_REQUEST / 1000.0)


@dataclass(frozen=True)
class Mode:
    quick: bool

    @property
    def suffix(self) -> str:
        return "_quick" if self.quick else ""


def ms(seconds: float) -> float:
    return seconds * 1000.0


# -- 1. transfers ----------------------------------------------------------------------------------


def postgres_status(dsn: str) -> str | None:
    """None when the PostgreSQL store can be benchmarked, else the reason it cannot."""
    if importlib.util.find_spec("tigress.relay.stores.postgres") is None:
        return "tigress.relay.stores.postgres does not exist yet"
    try:
        import asyncpg  # noqa: PLC0415
    except ImportError:
        return "asyncpg is not installed"

    async def probe() -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"cannot connect to {dsn.rsplit('@', maxsplit=1)[-1]}: {type(exc).__name__}: {exc}"
    return None


def fresh_postgres_schema(dsn: str) -> tuple[str, str]:
    """The store URL of a new, empty schema for one run (the store's own ``schema`` parameter:
    it creates the schema and migrates it on start); the caller drops it afterwards."""
    schema = "tigress_bench_" + uuid.uuid4().hex[:12]
    joiner = "&" if "?" in dsn else "?"
    return f"{dsn}{joiner}schema={schema}", schema


def drop_postgres_schema(dsn: str, schema: str) -> None:
    import asyncpg  # noqa: PLC0415

    async def drop() -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()

    asyncio.run(drop())


def transfer_specs(args: argparse.Namespace, mode: Mode) -> list[ServerSpec]:
    specs = [
        ServerSpec("echo-1w", "echo", 1),
        ServerSpec("sqlite-normal-1w", "relay", 1, {"durability": "normal"}),
        ServerSpec("sqlite-full-1w", "relay", 1, {"durability": "full"}),
        ServerSpec("echo-2w", "echo", 2),
        ServerSpec("sqlite-normal-2w", "relay", 2, {"durability": "normal"}),
    ]
    if not mode.quick:
        specs.append(ServerSpec("sqlite-full-2w", "relay", 2, {"durability": "full"}))
    return specs


def summarise_transfers(label: str, workers: int, raw: dict[str, Any]) -> dict[str, Any]:
    count = raw["transfers"]
    latencies = raw["transfer_latencies"]
    per = max(count, 1)
    return {
        "config": label,
        "workers": workers,
        "concurrency": raw["concurrency"],
        "client": raw["client"],
        "transfers": count,
        "transfers_per_second": count / raw["elapsed_seconds"],
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "server_cpu_ms_per_transfer": ms(raw["server_cpu_seconds"]) / per,
        "client_cpu_ms_per_transfer": ms(raw["client_cpu_seconds"]) / per,
        "server_rss_mb": raw["server_rss_bytes"] / 2**20,
        "op_p50_ms": {op: ms(percentile(v, 0.50)) for op, v in raw["op_latencies"].items()},
        "op_p99_ms": {op: ms(percentile(v, 0.99)) for op, v in raw["op_latencies"].items()},
        "errors": raw["errors"],
    }


def transfer_load_args(
    concurrency: int, duration: float, warmup: float, echo: bool, client: str
) -> list[str]:
    args = [
        "transfer",
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--client",
        client,
    ]
    return [*args, "--echo"] if echo else args


def section_transfers(args: argparse.Namespace, mode: Mode, workdir: Path) -> None:
    machine = machine_description()  # date and load average at the start
    concurrencies = [64] if mode.quick else [1, 16, 64]
    duration = 2.0 if mode.quick else args.duration
    warmup = 0.5 if mode.quick else 2.0
    specs = transfer_specs(args, mode)
    skipped: dict[str, str] = {}
    dsn = os.environ.get("TIGRESS_BENCH_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    reason = postgres_status(dsn)
    postgres_schema: str | None = None
    if reason is None:
        store_dsn, postgres_schema = fresh_postgres_schema(dsn)
        specs.append(ServerSpec("postgres-1w", "relay", 1, {"store": store_dsn}))
        if not mode.quick:
            specs.append(ServerSpec("postgres-2w", "relay", 2, {"store": store_dsn}))
    else:
        skipped["postgres"] = reason
        print(f"PostgreSQL skipped: {reason}")
    rows: list[dict[str, Any]] = []
    try:
        for spec in specs:
            run_dir = workdir / spec.label
            run_dir.mkdir()
            with running(spec, run_dir) as server:
                for concurrency in concurrencies:
                    raw = run_load(
                        server,
                        transfer_load_args(
                            concurrency, duration, warmup, spec.kind == "echo", args.client
                        ),
                        timeout=duration + warmup + 120,
                    )
                    row = summarise_transfers(spec.label, spec.workers, raw)
                    rows.append(row)
                    print(
                        f"  {spec.label} c={concurrency}: {row['transfers_per_second']:.0f}/s,"
                        f" p99 {row['p99_ms']:.1f} ms,"
                        f" {row['server_cpu_ms_per_transfer']:.2f} ms CPU",
                        flush=True,
                    )
    finally:
        if postgres_schema is not None:
            drop_postgres_schema(dsn, postgres_schema)
    add_ratios_and_bars(rows)
    print_transfer_table(rows)
    path = write_results(
        "relay_transfers" + mode.suffix,
        {
            "benchmark": "relay transfers",
            "machine": machine,
            "duration_seconds": duration,
            "skipped": skipped,
            "rows": rows,
        },
    )
    print(f"wrote {path}")


def add_ratios_and_bars(rows: list[dict[str, Any]]) -> None:
    echo = {(r["workers"], r["concurrency"]): r for r in rows if r["config"].startswith("echo")}
    for row in rows:
        reference = echo.get((row["workers"], row["concurrency"]))
        relay = not row["config"].startswith("echo")
        if reference is not None and relay:
            row["tps_vs_echo"] = row["transfers_per_second"] / reference["transfers_per_second"]
            row["cpu_vs_echo"] = (
                row["server_cpu_ms_per_transfer"] / reference["server_cpu_ms_per_transfer"]
            )
        bars: dict[str, bool] = {}
        if relay:
            bars["cpu<=0.5ms"] = row["server_cpu_ms_per_transfer"] <= BAR_CPU_MS
            if "cpu_vs_echo" in row:
                bars[f"cpu/echo<={BAR_CPU_VS_ECHO:.2f}"] = row["cpu_vs_echo"] <= BAR_CPU_VS_ECHO
            if row["concurrency"] == 64:
                bars["p99<50ms"] = row["p99_ms"] < BAR_P99_MS
                if "sqlite-normal" in row["config"]:
                    bars["tps>=1500"] = row["transfers_per_second"] >= BAR_TPS_SQLITE
                if "sqlite-full" in row["config"]:
                    bars["full>=650"] = row["transfers_per_second"] >= BAR_TPS_FULL
        row["bars"] = bars


def print_transfer_table(rows: list[dict[str, Any]]) -> None:
    print("\nTransfers (7 requests each; echo = 7 echo POSTs; ratios vs echo, same workers/conc.)")
    print_table(
        [
            "config",
            "conc",
            "transfers/s",
            "p50 ms",
            "p99 ms",
            "srv CPU ms/tr",
            "cli CPU ms/tr",
            "tps/echo",
            "cpu/echo",
            "errors",
            "bars",
        ],
        [
            [
                r["config"],
                r["concurrency"],
                r["transfers_per_second"],
                r["p50_ms"],
                r["p99_ms"],
                r["server_cpu_ms_per_transfer"],
                r["client_cpu_ms_per_transfer"],
                r.get("tps_vs_echo"),
                r.get("cpu_vs_echo"),
                sum(r["errors"].values()),
                " ".join(f"{k}:{'PASS' if v else 'FAIL'}" for k, v in r["bars"].items()) or "-",
            ]
            for r in rows
        ],
    )


# -- 2. notification latency -----------------------------------------------------------------------


def section_notify(args: argparse.Namespace, mode: Mode, workdir: Path) -> None:
    machine = machine_description()  # date and load average at the start
    samples = 100 if mode.quick else args.samples
    worker_counts = [1] if mode.quick else [1, 2]
    rows: list[dict[str, Any]] = []
    for workers in worker_counts:
        spec = ServerSpec(f"sqlite-normal-{workers}w", "relay", workers, {"durability": "normal"})
        run_dir = workdir / f"notify-{workers}"
        run_dir.mkdir()
        with running(spec, run_dir) as server:
            for via in ("sse", "poll"):
                raw = run_load(
                    server,
                    ["notify", "--via", via, "--samples", str(samples), "--duration", "120"],
                    timeout=300,
                )
                p99 = ms(percentile(raw["from_ack"], 0.99))
                rows.append(
                    {
                        "config": spec.label,
                        "via": via,
                        "samples": len(raw["from_send"]),
                        "from_send_p50_ms": ms(percentile(raw["from_send"], 0.50)),
                        "from_send_p99_ms": ms(percentile(raw["from_send"], 0.99)),
                        "from_ack_p50_ms": ms(percentile(raw["from_ack"], 0.50)),
                        "from_ack_p99_ms": p99,
                        "errors": raw["errors"],
                        "bars": {
                            "send p99<10ms": ms(percentile(raw["from_send"], 0.99))
                            < BAR_NOTIFY_P99_MS,
                            "200 p99<10ms": p99 < BAR_NOTIFY_P99_MS,
                        },
                    }
                )
    print("\nNotification latency (writer's send / writer's 200 -> waiter has the event)")
    print("  'from 200' is negative when the waiter hears before the writer's answer arrives;")
    print("  the bar (p99 < 10 ms) is shown for both: 'from send' also includes the write itself.")
    print_table(
        [
            "config",
            "via",
            "samples",
            "send p50 ms",
            "send p99 ms",
            "200 p50 ms",
            "200 p99 ms",
            "errors",
            "bar send",
            "bar 200",
        ],
        [
            [
                r["config"],
                r["via"],
                r["samples"],
                r["from_send_p50_ms"],
                r["from_send_p99_ms"],
                r["from_ack_p50_ms"],
                r["from_ack_p99_ms"],
                sum(r["errors"].values()),
                r["bars"]["send p99<10ms"],
                r["bars"]["200 p99<10ms"],
            ]
            for r in rows
        ],
    )
    path = write_results(
        "relay_notify" + mode.suffix,
        {"benchmark": "relay notification latency", "machine": machine, "rows": rows},
    )
    print(f"wrote {path}")


# -- 3. idle waiters -------------------------------------------------------------------------------


def probe_transfers(server: Server, count: int) -> dict[str, Any]:
    """Sequential transfers (concurrency 1): the latency one user sees."""
    raw = run_load(
        server,
        [
            "transfer",
            "--concurrency",
            "1",
            "--duration",
            "60",
            "--warmup",
            "0.5",
            "--max-transfers",
            str(count),
        ],
        timeout=180,
    )
    return summarise_transfers(server.spec.label, server.spec.workers, raw)


def section_idle(args: argparse.Namespace, mode: Mode, workdir: Path) -> None:
    machine = machine_description()  # date and load average at the start
    waiters = 1000 if mode.quick else args.waiters
    probes = 30 if mode.quick else 300
    spec = ServerSpec("sqlite-normal-1w", "relay", 1, {"durability": "normal"})
    run_dir = workdir / "idle"
    run_dir.mkdir()
    with running(spec, run_dir) as server:
        baseline = probe_transfers(server, probes)
        rss_before = server.rss_bytes()
        idle = LoadProcess(
            [server.base_url, "idle", "--waiters", str(waiters), "--duration", "300"], timeout=120
        )
        try:
            idle.wait_ready()
            time.sleep(1.0)
            rss_with = server.rss_bytes()
            loaded = probe_transfers(server, probes)
            # Idle cost: CPU the server burns with the waiters connected and nothing happening.
            quiet_start = time.monotonic()
            cpu_quiet = server.cpu_seconds()
            time.sleep(2.0 if mode.quick else 5.0)
            idle_cpu_per_second = (server.cpu_seconds() - cpu_quiet) / (
                time.monotonic() - quiet_start
            )
            idle.go()
            idle.wait_done()
            held = idle.result()
        finally:
            idle.kill()
    per_waiter_kb = (rss_with - rss_before) / max(held["waiters"], 1) / 1024
    result = {
        "waiters_requested": waiters,
        "waiters_open": held["waiters"],
        "still_open_at_end": held["still_open"],
        "connect_seconds": held["connect_seconds"],
        "open_errors": held["errors"],
        "server_rss_mb_before": rss_before / 2**20,
        "server_rss_mb_with_waiters": rss_with / 2**20,
        "rss_kb_per_waiter": per_waiter_kb,
        "idle_server_cpu_percent": 100 * idle_cpu_per_second,
        "baseline": baseline,
        "with_waiters": loaded,
        "p50_ratio": loaded["p50_ms"] / baseline["p50_ms"],
    }
    print(
        f"\nIdle waiters: {held['waiters']}/{waiters} SSE streams open "
        f"({held['still_open']} still open at the end), opened in "
        f"{held['connect_seconds']:.1f} s, errors {held['errors']}"
    )
    print_table(
        ["phase", "transfers", "p50 ms", "p99 ms", "srv CPU ms/tr", "server RSS MB"],
        [
            [
                "no waiters",
                baseline["transfers"],
                baseline["p50_ms"],
                baseline["p99_ms"],
                baseline["server_cpu_ms_per_transfer"],
                rss_before / 2**20,
            ],
            [
                f"{held['waiters']} waiting",
                loaded["transfers"],
                loaded["p50_ms"],
                loaded["p99_ms"],
                loaded["server_cpu_ms_per_transfer"],
                rss_with / 2**20,
            ],
        ],
    )
    print(
        f"RSS per waiter: {per_waiter_kb:.1f} KB ({per_waiter_kb / 1024:.3f} MB); idle server "
        f"CPU with the waiters connected: {100 * idle_cpu_per_second:.1f}% of a core"
    )
    path = write_results(
        "relay_idle" + mode.suffix,
        {"benchmark": "relay idle waiters", "machine": machine, **result},
    )
    print(f"wrote {path}")


# -- 4. scale --------------------------------------------------------------------------------------


def random_fields(count: int) -> list[bytes]:
    return [os.urandom(16) for _ in range(count)]


def fill_store(database: Path, count: int, *, expires_at: int) -> float:
    """Add ``count`` live mailboxes (each with its first ~1.4 KB message and its create record)
    straight into the store's own schema; returns the seconds taken.  The schema is created by
    opening the relay's SQLiteStore once, so this never drifts from it."""
    from tigress.relay.stores.sqlite import SQLiteStore  # noqa: PLC0415

    async def migrate() -> None:
        store = SQLiteStore(database)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    import base64  # noqa: PLC0415

    frames = [base64.urlsafe_b64encode(os.urandom(1050)).decode().rstrip("=") for _ in range(256)]
    started = time.perf_counter()
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # bulk setup only; the relay runs with its own
    now = int(time.time())
    chunk = 20_000
    done = 0
    while done < count:
        n = min(chunk, count - done)
        conn.execute("BEGIN")
        first = (conn.execute("SELECT coalesce(max(id), 0) FROM mailbox").fetchone()[0]) + 1
        ids = range(first, first + n)
        # The create-idempotency record (c_claim, c_req, c_sealed) lives in the mailbox's row
        # since schema migration 3.
        conn.executemany(
            "INSERT INTO mailbox (id, key, i_claim, rights, created_at, expires_at, title,"
            " description, image_url, last_seq, n_messages, i_req, c_claim, c_req, c_sealed)"
            " VALUES (?, ?, ?, 'RWD', ?, ?, 'Car key from Alex',"
            " 'Digital key for the blue sedan', 'https://relay.example/preview/car-key.png',"
            " 1, 1, ?, ?, ?, ?)",
            ((i, os.urandom(16), os.urandom(16), now, expires_at, *random_fields(4)) for i in ids),
        )
        conn.executemany(
            "INSERT INTO message (mailbox, seq, side, type, data) VALUES (?, 1, 'i',"
            " 'tigress-noise-v1', ?)",
            ((i, frames[i % 256]) for i in ids),
        )
        conn.execute("COMMIT")
        done += n
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def expire_all(database: Path) -> int:
    conn = sqlite3.connect(database, isolation_level=None)
    past = int(time.time()) - 1
    conn.execute("UPDATE mailbox SET expires_at = ?", (past,))
    # The expiry metric counts live mailboxes only, not the tombstones of deleted ones.
    live = conn.execute("SELECT count(*) FROM mailbox WHERE deleted_by IS NULL").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return int(live)


def expired_counter(server: Server) -> float:
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("tigress_relay_mailboxes_total") and 'outcome="expired"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def all_requests(raw_row: dict[str, Any]) -> dict[str, float]:
    return {
        "op_p50_ms": max(raw_row["op_p50_ms"].values()),
        "op_p99_ms": max(raw_row["op_p99_ms"].values()),
    }


def section_scale(args: argparse.Namespace, mode: Mode, workdir: Path) -> None:
    machine = machine_description()  # date and load average at the start
    small, large = 1000, (20_000 if mode.quick else args.mailboxes)
    duration = 2.0 if mode.quick else 15.0
    # 64 concurrent, like the transfer bars: the server is then saturated and its CPU per
    # transfer repeats within a few percent.  At 16 it idles between requests, and identical runs
    # differed by up to 25% (0.83-1.06 ms per transfer on one database, 2026-11-29), more than
    # the 20% this section judges.
    concurrency = 64
    run_dir = workdir / "scale"
    run_dir.mkdir()
    database = run_dir / "relay.db"
    settings = {
        "durability": "normal",
        "store": f"sqlite:///{database}",
        "sweep_interval_seconds": 1.0,
    }
    spec = ServerSpec("sqlite-normal-1w", "relay", 1, settings)
    far = int(time.time()) + 47 * 3600
    load = transfer_load_args(concurrency, duration, 1.0, False, args.client)
    echo_load = transfer_load_args(concurrency, duration, 1.0, True, args.client)
    echo_spec = ServerSpec("echo-1w", "echo", 1)

    def echo_reference(label: str) -> dict[str, Any]:
        # Measured right before each relay phase: the machine's state at that moment.
        with running(echo_spec, run_dir) as echo:
            return summarise_transfers(label, 1, run_load(echo, echo_load, timeout=300))

    fill_small = fill_store(database, small, expires_at=far)
    echo_small = echo_reference(f"echo before {small}")
    with running(spec, run_dir) as server:
        at_small = summarise_transfers(f"{small} live", 1, run_load(server, load, timeout=300))
    print(
        f"  {small} live: {at_small['server_cpu_ms_per_transfer']:.2f} ms CPU/transfer", flush=True
    )
    fill_large = fill_store(database, large - small, expires_at=far)
    size_mb = database.stat().st_size / 2**20
    print(
        f"  filled to {large} live mailboxes in {fill_large:.0f} s ({size_mb:.0f} MB)", flush=True
    )
    echo_large = echo_reference(f"echo before {large}")
    with running(spec, run_dir) as server:
        at_large = summarise_transfers(f"{large} live", 1, run_load(server, load, timeout=300))
    print(
        f"  {large} live: {at_large['server_cpu_ms_per_transfer']:.2f} ms CPU/transfer", flush=True
    )

    expired = expire_all(database)
    sweep_limit = 60.0 if mode.quick else args.expiry_seconds
    expiry_load = transfer_load_args(concurrency, sweep_limit, 0.5, False, args.client)
    server = start_server(spec, run_dir)
    try:
        started = time.monotonic()
        loader = LoadProcess([server.base_url, *expiry_load], timeout=sweep_limit + 120)
        loader.wait_ready()
        cpu_before = server.cpu_seconds()
        loader.go()
        progress: list[tuple[float, float]] = []
        # The load runs for sweep_limit seconds; watch the sweeper meanwhile.
        while time.monotonic() - started < sweep_limit + 5 and loader.process.poll() is None:
            progress.append((time.monotonic() - started, expired_counter(server)))
            if progress[-1][1] >= expired:
                break
            time.sleep(0.5)
        loader.stop_early()
        loader.wait_done()
        cpu_after = server.cpu_seconds()
        raw = loader.result()
        raw["server_cpu_seconds"] = cpu_after - cpu_before
        raw["server_rss_bytes"] = server.rss_bytes()
        swept = expired_counter(server)
        sweep_seconds = next((t for t, n in progress if n >= expired), None)
    finally:
        server.stop()
    during = summarise_transfers("during expiry", 1, raw)

    def vs_echo(relay_row: dict[str, Any], echo_row: dict[str, Any], key: str) -> float:
        value: float = relay_row[key] / echo_row[key]
        relay_row[f"{key}_vs_echo"] = value
        return value

    # The bars are judged on echo-normalised figures: the machine's load moves between phases.
    cpu_rise = (
        vs_echo(at_large, echo_large, "server_cpu_ms_per_transfer")
        / vs_echo(at_small, echo_small, "server_cpu_ms_per_transfer")
        - 1
    )
    p50_rise = vs_echo(at_large, echo_large, "p50_ms") / vs_echo(at_small, echo_small, "p50_ms") - 1
    raw_cpu_rise = (
        at_large["server_cpu_ms_per_transfer"] / at_small["server_cpu_ms_per_transfer"] - 1
    )
    result = {
        "mailboxes_small": small,
        "mailboxes_large": large,
        "fill_seconds": fill_small + fill_large,
        "database_mb": size_mb,
        "echo_before_small": echo_small,
        "echo_before_large": echo_large,
        "at_small": at_small,
        "at_large": at_large,
        "during_expiry": during,
        "cpu_rise_vs_echo": cpu_rise,
        "cpu_rise_raw": raw_cpu_rise,
        "p50_rise_vs_echo": p50_rise,
        "expired_target": expired,
        "expired_swept": swept,
        "sweep_seconds": sweep_seconds,
        "sweep_progress": progress,
        "bars": {
            "cpu rise<20%": cpu_rise < BAR_SCALE_RISE,
            "p50 rise<20%": p50_rise < BAR_SCALE_RISE,
            "expiry p99 < 2x baseline": during["p99_ms"] < 2 * at_large["p99_ms"],
        },
    }
    print(
        f"\nScale: {small} vs {large} live mailboxes (concurrency {concurrency}), then all "
        "expire while transfers run"
    )
    rows = []
    phases = (echo_small, at_small, echo_large, at_large, during)
    for label, r in zip(("echo", "small", "echo", "large", "during expiry"), phases, strict=True):
        worst = all_requests(r)
        rows.append(
            [
                r["config"],
                r["transfers_per_second"],
                r["p50_ms"],
                r["p99_ms"],
                worst["op_p99_ms"],
                r["server_cpu_ms_per_transfer"],
                sum(r["errors"].values()),
            ]
        )
        del label
    print_table(
        ["phase", "transfers/s", "p50 ms", "p99 ms", "worst op p99 ms", "srv CPU ms/tr", "errors"],
        rows,
    )
    sweep_text = (
        f"all swept in {sweep_seconds:.0f} s"
        if sweep_seconds is not None
        else f"{swept:.0f} of {expired} swept within {sweep_limit:.0f} s"
    )
    print(
        f"vs echo: CPU/transfer rise {100 * cpu_rise:+.1f}%, p50 rise {100 * p50_rise:+.1f}%"
        f" (raw CPU rise {100 * raw_cpu_rise:+.1f}%); "
        f"expiry: {sweep_text}"
    )
    print("bars: " + " ".join(f"{k}:{'PASS' if v else 'FAIL'}" for k, v in result["bars"].items()))
    path = write_results(
        "relay_scale" + mode.suffix,
        {"benchmark": "relay scale", "machine": machine, **result},
    )
    print(f"wrote {path}")


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test, about a minute")
    parser.add_argument("--transfers", action="store_true", help="section 1")
    parser.add_argument("--notify", action="store_true", help="section 2")
    parser.add_argument("--idle", action="store_true", help="section 3")
    parser.add_argument("--scale", action="store_true", help="section 4")
    parser.add_argument(
        "--duration", type=float, default=15.0, help="seconds per transfer measurement (full mode)"
    )
    parser.add_argument(
        "--client",
        choices=("c", "raw", "aiohttp"),
        default="c",
        help="transfer load generator: c (loadgen.c, built with gcc; the default), raw (Python"
        " keep-alive HTTP/1.1 on uvloop) or aiohttp",
    )
    parser.add_argument("--samples", type=int, default=500, help="notification samples")
    parser.add_argument("--waiters", type=int, default=10_000, help="idle SSE clients")
    parser.add_argument("--mailboxes", type=int, default=1_000_000, help="scale: live mailboxes")
    parser.add_argument(
        "--expiry-seconds",
        type=float,
        default=180.0,
        help="scale: longest time to watch the sweeper",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where databases go (default: a temporary directory)",
    )
    args = parser.parse_args()
    mode = Mode(args.quick)
    chosen = [name for name in ("transfers", "notify", "idle", "scale") if getattr(args, name)]
    sections = chosen or ["transfers", "notify", "idle", "scale"]
    if args.client == "c" and {"transfers", "scale"} & set(sections):
        build_loadgen()  # before any server starts: a missing gcc is said at once
    runners = {
        "transfers": section_transfers,
        "notify": section_notify,
        "idle": section_idle,
        "scale": section_scale,
    }
    with tempfile.TemporaryDirectory(prefix="tigress-bench-", dir=args.workdir) as tmp:
        for name in sections:
            started = time.monotonic()
            print(f"== {name} ({'quick' if mode.quick else 'full'})", flush=True)
            section_dir = Path(tmp) / name
            section_dir.mkdir()
            runners[name](args, mode, section_dir)
            print(f"== {name} took {time.monotonic() - started:.0f} s\n", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
