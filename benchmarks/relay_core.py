"""The relay's CPU below the HTTP server: complete transfers driven straight through its ASGI app.

No sockets and no uvicorn: the real application (``tigress.relay.app.create_app``, its lifespan
started, an SQLite store in a temporary directory, rate limit off) is called with constructed
``scope``/``receive``/``send``, so the figure is the relay's own work per transfer — fast path,
validation, keyed hashes, service rules, the store and its group commit, response bodies and
metrics.  ``--concurrency`` tasks (default 64) run the seven requests of a transfer (create,
read, update, read, update, read, delete, as ``relay_load.py`` sends them) on one uvloop loop.

In the same run, the same driver makes the same number of calls, with bodies of the same sizes,
into a trivial ASGI app that parses the JSON body and answers: the ratio relay / reference is
what to compare between runs on a noisy machine.  A sequential pass (one transfer at a time,
so every write commits alone) gives the CPU per request kind, and a last pass drives the
``SQLiteStore`` directly with the store calls of the same transfers: the store's own share.

Usage::

    ./dev bench relay_core                      # 5,000 transfers after a warm-up, 3 rounds
    ./dev bench relay_core --transfers 2000 --rounds 1
    ./dev bench relay_core --profile            # cProfile of the concurrent phase, top functions
    ./dev bench relay_core --instructions       # callgrind instruction counts per transfer

``--instructions`` runs this script twice under ``valgrind --tool=callgrind`` with two transfer
counts and reports the difference divided by the extra transfers (start-up cancels out); it is
repeatable to a fraction of a percent on a loaded machine, unlike CPU time.

Results: ``benchmarks/results/relay_core.json`` (or ``relay_core_instructions.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from relay_load import OPS, _frame, create_body, update_body  # the load generator's bodies
from tigress.relay.app import create_app
from tigress.relay.config import RelayConfig
from tigress.relay.stores.base import DisplayInformation, NewMailbox, Payload
from tigress.relay.stores.sqlite import SQLiteStore

RESULTS = Path(__file__).resolve().parent / "results"
STORE_DISPLAY = DisplayInformation(
    "Car key from Alex", "Digital key for the blue sedan", "https://relay.example/p.png"
)

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


# -- the ASGI driver -----------------------------------------------------------------------------


class Unexpected(Exception):
    pass


_CLIENT = ("127.0.0.1", 50000)
_SERVER = ("127.0.0.1", 8443)


async def asgi_call(
    app: ASGIApp, method: str, path: str, headers: Headers, body: bytes = b""
) -> tuple[int, bytes]:
    """One HTTP request as uvicorn hands it to an application; (status, body)."""
    all_headers = [(b"host", b"127.0.0.1:8443"), *headers]
    all_headers.append((b"content-length", str(len(body)).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": all_headers,
        "client": _CLIENT,
        "server": _SERVER,
        "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a client that stays connected
        return {"type": "http.disconnect"}

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the application's ASGI lifespan: startup before the block, shutdown after."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def _json_h(claim: str, request_id: str | None = None) -> Headers:
    headers = [(b"content-type", b"application/json"), (b"mailbox-device-claim", claim.encode())]
    if request_id is not None:
        headers.append((b"mailbox-request-id", request_id.encode()))
    return headers


def _new_id() -> str:
    return str(uuid.uuid4())


Timer = Callable[[str, float], None]


async def relay_transfer(
    app: ASGIApp, bodies: tuple[bytes, bytes, bytes], timer: Timer | None = None
) -> None:
    """One three-message transfer between two fresh devices, every answer checked."""
    sender, receiver = _new_id(), _new_id()
    receiver_h = [(b"mailbox-device-claim", receiver.encode())]

    async def call(op: str, method: str, path: str, headers: Headers, body: bytes = b"") -> Any:
        start = time.process_time() if timer else 0.0
        status, raw = await asgi_call(app, method, path, headers, body)
        if timer:
            timer(op, time.process_time() - start)
        if status != 200:
            raise Unexpected(f"{op}: HTTP {status}: {raw[:200]!r}")
        return json.loads(raw)

    made = await call("create", "POST", "/v1/m", _json_h(sender, _new_id()), bodies[0])
    path = "/v1/m/" + made["urlLink"].rsplit("/", 1)[1]
    if (await call("read1", "POST", path, receiver_h))["seq"] != 1:
        raise Unexpected("read1: wrong seq")
    await call("update1", "PUT", path, _json_h(receiver, _new_id()), bodies[1])
    sender_h = [(b"mailbox-device-claim", sender.encode())]
    if (await call("read2", "POST", path, sender_h))["seq"] != 2:
        raise Unexpected("read2: wrong seq")
    await call("update2", "PUT", path, _json_h(sender, _new_id()), bodies[2])
    if (await call("read3", "POST", path, receiver_h))["seq"] != 3:
        raise Unexpected("read3: wrong seq")
    await call("delete", "DELETE", path, [*receiver_h, (b"mailbox-request-id", _new_id().encode())])


# -- the reference -------------------------------------------------------------------------------


async def reference_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an application does per request: read the body, parse it, answer JSON."""
    if scope["type"] != "http":
        message = await receive()
        while message["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    message = await receive()
    document = json.loads(message.get("body", b"") or b"{}")
    body = json.dumps({"ok": True, "members": len(document)}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def reference_transfer(
    app: ASGIApp, bodies: tuple[bytes, bytes, bytes], timer: Timer | None = None
) -> None:
    """Seven calls with the bodies a transfer sends (as relay_load.py's echo transfer)."""
    small = b"{}"
    headers = _json_h(_new_id())
    for body in (bodies[0], small, bodies[1], small, bodies[2], small, small):
        status, raw = await asgi_call(app, "POST", "/echo", headers, body)
        if status != 200:
            raise Unexpected(f"reference: HTTP {status}")
        json.loads(raw)


# -- phases --------------------------------------------------------------------------------------

Transfer = Callable[[ASGIApp, tuple[bytes, bytes, bytes], Timer | None], Awaitable[None]]


async def run_concurrent(
    app: ASGIApp, one: Transfer, pool: list[tuple[bytes, bytes, bytes]], count: int, tasks: int
) -> dict[str, float]:
    """``count`` transfers by ``tasks`` concurrent workers: CPU and wall time, latencies."""
    budget = [count]
    latencies: list[float] = []

    async def worker(index: int) -> None:
        n = index
        while budget[0] > 0:
            budget[0] -= 1
            start = time.perf_counter()
            await one(app, pool[n % len(pool)], None)
            latencies.append(time.perf_counter() - start)
            n += tasks

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(tasks)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    return {
        "transfers": count,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "cpu_us_per_transfer": cpu / count * 1e6,
        "transfers_per_cpu_second": count / cpu,
        "p50_transfer_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_transfer_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


async def run_sequential(
    app: ASGIApp, pool: list[tuple[bytes, bytes, bytes]], count: int
) -> dict[str, float]:
    """Median CPU µs per request kind, one transfer at a time (each write commits alone)."""
    samples: dict[str, list[float]] = {op: [] for op in OPS}

    def timer(op: str, seconds: float) -> None:
        samples[op].append(seconds)

    for n in range(count):
        await relay_transfer(app, pool[n % len(pool)], timer)
    return {op: statistics.mean(values) * 1e6 for op, values in samples.items()}


async def store_transfer(store: SQLiteStore, data: str) -> None:
    """The store calls one transfer makes (what the service asks of it), with random keys and
    claims: the store's own share of a transfer's CPU, without HTTP, validation or hashing."""
    key, initiator, recipient = os.urandom(16), os.urandom(16), os.urandom(16)
    now = int(time.time())
    payload = Payload("tigress-noise-v1", data)
    await store.create_mailbox(
        NewMailbox(
            key=key,
            initiator_claim=initiator,
            access_rights="RWD",
            created_at=now,
            expires_at=now + 3600,
            display=STORE_DISPLAY,
            payload=payload,
            initiator_token=None,
            initiator_request_id=os.urandom(16),
            create_claim=os.urandom(16),
            sealed_mailbox_id=os.urandom(16),
        )
    )
    await store.read_mailbox(key, recipient, now, after=None, limit=64)
    await store.bind_recipient(key, recipient, None, now)
    for writer, reader in ((recipient, initiator), (initiator, recipient)):
        await store.append_message(
            key,
            None,
            writer,
            payload=payload,
            request_id=os.urandom(16),
            token=None,
            now=now,
            max_messages=64,
            recipient_right="W",
        )
        await store.read_mailbox(key, reader, now, after=None, limit=64)
    await store.delete_mailbox(key, None, recipient, os.urandom(16), now, recipient_right="D")


async def run_store(directory: Path, durability: str, count: int, tasks: int) -> dict[str, float]:
    """``count`` store-level transfers by ``tasks`` concurrent workers (after a warm-up)."""
    store = SQLiteStore(directory / "store-only.db", durability=durability)  # type: ignore[arg-type]
    data = _frame()["data"]
    await store.open()
    try:

        async def worker(share: int) -> None:
            for _ in range(share):
                await store_transfer(store, data)

        await asyncio.gather(*(worker(4) for _ in range(tasks)))
        cpu = time.process_time()
        await asyncio.gather(*(worker(count // tasks) for _ in range(tasks)))
        cpu = time.process_time() - cpu
    finally:
        await store.close()
    done = count // tasks * tasks
    return {"transfers": done, "cpu_us_per_transfer": cpu / done * 1e6}


def relay_config(directory: Path, durability: str) -> RelayConfig:
    return RelayConfig(
        store=f"sqlite:///{directory / 'relay.db'}",
        durability=durability,
        public_url="https://relay.example",
        rate_limit_per_second=0,
        push=False,
        sweep_interval_seconds=3600,
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    pool = [(create_body(), update_body(), update_body()) for _ in range(64)]
    rounds: list[dict[str, Any]] = []
    profile: cProfile.Profile | None = None
    with tempfile.TemporaryDirectory(prefix="tigress-relay-core-") as tmp:
        app: ASGIApp = create_app(relay_config(Path(tmp), args.durability))  # type: ignore[assignment]
        async with lifespan(app), lifespan(reference_app):
            warmup = max(args.concurrency * 4, args.transfers // 10)
            await run_concurrent(app, relay_transfer, pool, warmup, args.concurrency)
            await run_concurrent(reference_app, reference_transfer, pool, warmup, args.concurrency)
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                await run_concurrent(app, relay_transfer, pool, args.transfers, args.concurrency)
                profile.disable()
            else:
                for _ in range(args.rounds):
                    relay = await run_concurrent(
                        app, relay_transfer, pool, args.transfers, args.concurrency
                    )
                    reference = await run_concurrent(
                        reference_app, reference_transfer, pool, args.transfers, args.concurrency
                    )
                    rounds.append({"relay": relay, "reference": reference})
            per_op = {} if args.profile else await run_sequential(app, pool, args.sequential)
        store = (
            None
            if args.profile
            else await run_store(Path(tmp), args.durability, args.transfers, args.concurrency)
        )
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats(args.sort).print_stats(args.top)
        return {}
    ratios = [r["relay"]["cpu_seconds"] / r["reference"]["cpu_seconds"] for r in rounds]
    best = min(rounds, key=lambda r: r["relay"]["cpu_us_per_transfer"])
    return {
        "benchmark": "relay_core",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "durability": args.durability,
        "concurrency": args.concurrency,
        "transfers_per_round": args.transfers,
        "rounds": rounds,
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "relay_cpu_us_per_transfer_min": best["relay"]["cpu_us_per_transfer"],
        "reference_cpu_us_per_transfer_min": min(
            r["reference"]["cpu_us_per_transfer"] for r in rounds
        ),
        "sequential_cpu_us_per_request": per_op,
        "store_only": store,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"relay_core: {result['transfers_per_round']} transfers x {len(result['rounds'])} rounds,"
        f" concurrency {result['concurrency']}, durability {result['durability']}"
    )
    print(
        f"{'round':>5} {'relay µs/transfer':>18} {'reference µs':>13} {'ratio':>6}"
        f" {'relay p99 ms':>13} {'transfers/CPU-s':>16}"
    )
    for n, r in enumerate(result["rounds"], 1):
        relay, ref = r["relay"], r["reference"]
        print(
            f"{n:>5} {relay['cpu_us_per_transfer']:>18.1f} {ref['cpu_us_per_transfer']:>13.1f}"
            f" {relay['cpu_seconds'] / ref['cpu_seconds']:>6.2f} {relay['p99_transfer_ms']:>13.1f}"
            f" {relay['transfers_per_cpu_second']:>16.0f}"
        )
    print(f"median ratio relay/reference: {result['ratio_median']:.2f}")
    store = result["store_only"]
    print(
        f"the store alone (SQLiteStore driven directly, same concurrency):"
        f" {store['cpu_us_per_transfer']:.1f} µs/transfer"
    )
    print("sequential CPU µs per request (every write commits alone):")
    for op, value in result["sequential_cpu_us_per_request"].items():
        print(f"  {op:<8} {value:8.1f}")


# -- instruction counts --------------------------------------------------------------------------

_IR_RE = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


def _callgrind_ir(args: argparse.Namespace, transfers: int, workdir: Path, label: str) -> int:
    out = workdir / f"callgrind.{label}.{transfers}"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--single",
        label,
        "--transfers",
        str(transfers),
        "--concurrency",
        str(args.concurrency),
        "--durability",
        args.durability,
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    match = _IR_RE.search(out.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"no instruction summary in {out}")
    return int(match.group(1))


def run_instructions(args: argparse.Namespace) -> dict[str, Any]:
    low, high = args.transfers // 5, args.transfers
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tigress-relay-core-cg-") as tmp:
        for label in ("relay", "reference"):
            a = _callgrind_ir(args, low, Path(tmp), label)
            b = _callgrind_ir(args, high, Path(tmp), label)
            figures[label] = {
                "instructions_low": a,
                "instructions_high": b,
                "transfers_low": low,
                "transfers_high": high,
                "instructions_per_transfer": (b - a) / (high - low),
            }
    ratio = (
        figures["relay"]["instructions_per_transfer"]
        / figures["reference"]["instructions_per_transfer"]
    )
    return {
        "benchmark": "relay_core_instructions",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "durability": args.durability,
        "concurrency": args.concurrency,
        **figures,
        "ratio": ratio,
    }


async def run_single(args: argparse.Namespace) -> None:
    """What one callgrind run executes: a warm-up-free fixed number of transfers."""
    pool = [(create_body(), update_body(), update_body()) for _ in range(64)]
    with tempfile.TemporaryDirectory(prefix="tigress-relay-core-") as tmp:
        if args.single == "relay":
            app: ASGIApp = create_app(relay_config(Path(tmp), args.durability))  # type: ignore[assignment]
            one: Transfer = relay_transfer
        else:
            app, one = reference_app, reference_transfer
        async with lifespan(app):
            await run_concurrent(app, one, pool, args.transfers, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=5000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=500, help="transfers, per-op pass")
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--profile", action="store_true", help="cProfile the concurrent phase")
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--instructions", action="store_true", help="callgrind counts")
    parser.add_argument("--single", choices=("relay", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        uvloop.run(run_single(args))
        return
    if args.instructions:
        if args.transfers == parser.get_default("transfers"):
            args.transfers = 1000  # valgrind runs ~50x slower
        result = run_instructions(args)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "relay_core_instructions.json").write_text(json.dumps(result, indent=2))
        for label in ("relay", "reference"):
            print(
                f"{label:<10} {result[label]['instructions_per_transfer']:>14,.0f} instr/transfer"
            )
        print(f"ratio relay/reference: {result['ratio']:.2f}")
        return
    result = uvloop.run(measure(args))
    if args.profile:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay_core.json").write_text(json.dumps(result, indent=2))
    print_table(result)


if __name__ == "__main__":
    main()
