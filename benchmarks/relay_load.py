"""The load generator of the relay benchmarks: a separate process, driven by ``relay.py``.

Usage: ``python relay_load.py BASE_URL MODE [options]`` with MODE one of

* ``transfer`` — complete three-message transfers (create, read, update, read, update, read,
  delete) by ``--concurrency`` concurrent pairs of devices; ``--echo`` sends the same seven
  requests, with bodies of the same sizes, to the echo reference instead;
* ``notify`` — commit-to-waiter latency: a recipient waits (``--via sse`` or ``--via poll``),
  the initiator writes, one sample at a time;
* ``idle`` — opens ``--waiters`` SSE streams on mailboxes of their own and holds them.

Protocol on stdin/stdout: after warming up it prints ``READY``, waits for ``GO``, runs the
measured phase (bounded by ``--duration`` seconds and a count), prints ``DONE`` and one JSON line.

``loadgen.c`` is the C twin of the ``transfer`` mode with ``RawClient`` (what ``relay.py`` runs by
default, ``--client c``): same requests, protocol and JSON document.  Keep the two in step.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import uvloop  # the servers' event loop too; it ships with uvicorn[standard]

# A padded tigress frame is ~1 KiB of ciphertext: ~1.4 KB once base64 encoded.
FRAME_BYTES = 1050
JSON_HEADERS = {"content-type": "application/json"}
OPS = ("create", "read1", "update1", "read2", "update2", "read3", "delete")


def _frame() -> dict[str, str]:
    data = base64.urlsafe_b64encode(os.urandom(FRAME_BYTES)).decode().rstrip("=")
    return {"type": "tigress-noise-v1", "data": data}


def create_body() -> bytes:
    return json.dumps(
        {
            "payload": _frame(),
            "displayInformation": {
                "title": "Car key from Alex",
                "description": "Digital key for the blue sedan, valid until Sunday evening.",
                "imageURL": "https://relay.example/preview/car-key.png",
            },
            "mailboxConfiguration": {"accessRights": "RWD"},
        }
    ).encode()


def update_body() -> bytes:
    return json.dumps({"payload": _frame()}).encode()


def _new_id() -> str:
    return str(uuid.uuid4())


class Unexpected(Exception):
    def __init__(self, op: str, status: int) -> None:
        super().__init__(f"{op}: HTTP {status}")
        self.op = op
        self.status = status


@dataclass
class Tally:
    transfers: int = 0
    transfer_latencies: list[float] = field(default_factory=list)
    op_latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class Client:
    """Timed requests over one keep-alive session; every answer's status is checked."""

    def __init__(self, session: aiohttp.ClientSession, base: str, tally: Tally | None) -> None:
        self.session = session
        self.base = base
        self.tally = tally

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None = None,
        expect: int = 200,
    ) -> Any:
        start = time.perf_counter()
        async with self.session.request(
            method, self.base + path, data=body, headers=headers
        ) as response:
            raw = await response.read()
            if response.status != expect:
                raise Unexpected(op, response.status)
        if self.tally is not None:
            self.tally.op_latencies[op].append(time.perf_counter() - start)
        return json.loads(raw) if raw else None


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on one connection (Content-Length bodies only).

    aiohttp spends ~5x the CPU of the server under test per request; on a 2-core machine that
    caps what can be measured.  This client does the least a correct client must (write the
    request, read the status line, headers and exactly Content-Length bytes), so the figures are
    about the server.  ``--client aiohttp`` switches back for comparison.
    """

    def __init__(self, base: str, tally: Tally | None) -> None:
        host_port = base.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.tally = tally
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None = None,
        expect: int = 200,
    ) -> Any:
        start = time.perf_counter()
        reader, writer = await self._connect()
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append(f"content-length: {len(body) if body else 0}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.writer = None
            raise aiohttp.ClientConnectionError(str(exc)) from None
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        raw = await reader.readexactly(length) if length else b""
        if status != expect:
            raise Unexpected(op, status)
        if self.tally is not None:
            self.tally.op_latencies[op].append(time.perf_counter() - start)
        return json.loads(raw) if raw else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def relay_transfer(client: Client | RawClient, bodies: tuple[bytes, bytes, bytes]) -> None:
    """One complete three-message transfer between two fresh devices."""
    sender, receiver = _new_id(), _new_id()
    sender_h = {**JSON_HEADERS, "mailbox-device-claim": sender}
    receiver_h = {"mailbox-device-claim": receiver}
    receiver_json_h = {**JSON_HEADERS, **receiver_h}
    made = await client.call(
        "create", "POST", "/v1/m", {**sender_h, "mailbox-request-id": _new_id()}, bodies[0]
    )
    path = "/v1/m/" + made["urlLink"].rsplit("/", 1)[1]
    got = await client.call("read1", "POST", path, receiver_h)
    if got["seq"] != 1:
        raise Unexpected("read1-seq", got["seq"])
    await client.call(
        "update1", "PUT", path, {**receiver_json_h, "mailbox-request-id": _new_id()}, bodies[1]
    )
    got = await client.call("read2", "POST", path, {"mailbox-device-claim": sender})
    if got["seq"] != 2:
        raise Unexpected("read2-seq", got["seq"])
    await client.call(
        "update2", "PUT", path, {**sender_h, "mailbox-request-id": _new_id()}, bodies[2]
    )
    got = await client.call("read3", "POST", path, receiver_h)
    if got["seq"] != 3:
        raise Unexpected("read3-seq", got["seq"])
    await client.call("delete", "DELETE", path, {**receiver_h, "mailbox-request-id": _new_id()})


async def echo_transfer(client: Client | RawClient, bodies: tuple[bytes, bytes, bytes]) -> None:
    """Seven echo POSTs with the bodies a transfer sends, so ratios compare like with like."""
    small = b"{}"
    for op, body in zip(
        OPS, (bodies[0], small, bodies[1], small, bodies[2], small, small), strict=True
    ):
        await client.call(op, "POST", "/echo", JSON_HEADERS, body)


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=False)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent",),
    )


async def _await_go() -> None:
    print("READY", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "GO":
        raise SystemExit("expected GO")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _finish(document: dict[str, Any]) -> None:
    print("DONE", flush=True)
    print(json.dumps(document), flush=True)


async def run_transfers(args: argparse.Namespace) -> None:
    one = echo_transfer if args.echo else relay_transfer
    pool = [(create_body(), update_body(), update_body()) for _ in range(64)]

    stop_now = asyncio.Event()

    async def watch_stdin() -> None:
        # A line after GO (or EOF) ends the measured phase early: relay.py stops the load the
        # moment what it watches (the sweeper) has finished.
        await asyncio.to_thread(sys.stdin.readline)
        stop_now.set()

    async def phase(
        session: aiohttp.ClientSession, tally: Tally, seconds: float, cap: int
    ) -> float:
        deadline = time.perf_counter() + seconds
        budget = [cap]
        last = [time.perf_counter()]

        async def worker() -> None:
            client: Client | RawClient = (
                RawClient(args.base, tally)
                if args.client == "raw"
                else Client(session, args.base, tally)
            )
            while time.perf_counter() < deadline and budget[0] > 0 and not stop_now.is_set():
                budget[0] -= 1
                start = time.perf_counter()
                try:
                    await one(client, random.choice(pool))
                except Unexpected as exc:
                    tally.error(f"{exc.op}:{exc.status}")
                    continue
                except (aiohttp.ClientError, TimeoutError) as exc:
                    tally.error(type(exc).__name__)
                    await asyncio.sleep(0.01)
                    continue
                end = time.perf_counter()
                tally.transfers += 1
                tally.transfer_latencies.append(end - start)
                last[0] = end
            if isinstance(client, RawClient):
                client.close()

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return max(last[0], begin + 1e-9) - begin

    async with _session(args.concurrency + 8) as session:
        await phase(session, Tally(), args.warmup, 10 * args.concurrency + 50)
        await _await_go()
        watcher = asyncio.create_task(watch_stdin())
        tally = Tally()
        cpu_before = _cpu_seconds()
        elapsed = await phase(session, tally, args.duration, args.max_transfers)
        client_cpu = _cpu_seconds() - cpu_before
        watcher.cancel()
    _finish(
        {
            "mode": "echo" if args.echo else "transfer",
            "client": args.client,
            "concurrency": args.concurrency,
            "transfers": tally.transfers,
            "elapsed_seconds": elapsed,
            "client_cpu_seconds": client_cpu,
            "transfer_latencies": tally.transfer_latencies,
            "op_latencies": tally.op_latencies,
            "errors": tally.errors,
        }
    )


# -- notification latency ----------------------------------------------------------------------


async def _new_bound_mailbox(client: Client) -> tuple[str, str, str]:
    """Create a mailbox and bind a recipient; returns (path, sender claim, receiver claim)."""
    sender, receiver = _new_id(), _new_id()
    made = await client.call(
        "create",
        "POST",
        "/v1/m",
        {**JSON_HEADERS, "mailbox-device-claim": sender, "mailbox-request-id": _new_id()},
        create_body(),
    )
    path = "/v1/m/" + made["urlLink"].rsplit("/", 1)[1]
    await client.call("read1", "POST", path, {"mailbox-device-claim": receiver})
    return path, sender, receiver


async def _write(client: Client, path: str, sender: str, body: bytes) -> tuple[int, float]:
    headers = {**JSON_HEADERS, "mailbox-device-claim": sender, "mailbox-request-id": _new_id()}
    answer = await client.call("update1", "PUT", path, headers, body)
    return int(answer["seq"]), time.perf_counter()


class SSEWaiter:
    """Reads one event stream, noting when each message event arrives."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.arrivals: dict[int, float] = {}
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        seq = None
        async for raw in self.response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line == "" and seq is not None:
                self.arrivals[seq] = time.perf_counter()
                seq = None
                self.changed.set()

    async def arrival(self, seq: int, timeout: float) -> float:
        async with asyncio.timeout(timeout):
            while seq not in self.arrivals:
                self.changed.clear()
                await self.changed.wait()
        return self.arrivals[seq]

    async def close(self) -> None:
        self.task.cancel()
        self.response.close()


async def run_notify(args: argparse.Namespace) -> None:
    body = update_body()
    per_mailbox = 50  # below messagesPerMailbox (64)
    from_send: list[float] = []
    from_ack: list[float] = []
    errors: dict[str, int] = {}

    async with _session(16) as session:
        client = Client(session, args.base, None)

        async def sample_sse(count: int) -> None:
            path, sender, receiver = await _new_bound_mailbox(client)
            response = await session.get(
                args.base + path + "/events?after=1", headers={"mailbox-device-claim": receiver}
            )
            if response.status != 200:
                raise Unexpected("events", response.status)
            waiter = SSEWaiter(response)
            try:
                await asyncio.sleep(0.05)  # the stream subscribes after its first line
                for _ in range(count):
                    await asyncio.sleep(0.002)
                    sent = time.perf_counter()
                    seq, acked = await _write(client, path, sender, body)
                    arrived = await waiter.arrival(seq, 5.0)
                    from_send.append(arrived - sent)
                    from_ack.append(arrived - acked)
            finally:
                await waiter.close()

        async def sample_poll(count: int) -> None:
            path, sender, receiver = await _new_bound_mailbox(client)
            cursor = 1
            for _ in range(count):

                async def wait_for(after: int) -> tuple[Any, float]:
                    answer = await client.call(
                        "read2",
                        "POST",
                        f"{path}?after={after}&wait=10",
                        {"mailbox-device-claim": receiver},
                    )
                    return answer, time.perf_counter()

                waiting = asyncio.create_task(wait_for(cursor))
                await asyncio.sleep(0.005)  # let the long-poll reach the relay and subscribe
                sent = time.perf_counter()
                seq, acked = await _write(client, path, sender, body)
                answer, arrived = await waiting
                if not any(m["seq"] == seq for m in answer["messages"]):
                    raise Unexpected("poll-missed", seq)
                cursor = seq
                from_send.append(arrived - sent)
                from_ack.append(arrived - acked)

        sample = sample_sse if args.via == "sse" else sample_poll
        await sample(min(20, args.samples))  # warm-up
        from_send.clear()
        from_ack.clear()
        await _await_go()
        deadline = time.perf_counter() + args.duration
        while len(from_send) < args.samples and time.perf_counter() < deadline:
            try:
                await sample(min(per_mailbox, args.samples - len(from_send)))
            except (Unexpected, aiohttp.ClientError, TimeoutError) as exc:
                key = (
                    f"{exc.op}:{exc.status}" if isinstance(exc, Unexpected) else type(exc).__name__
                )
                errors[key] = errors.get(key, 0) + 1
    _finish(
        {
            "mode": f"notify-{args.via}",
            "from_send": from_send,
            "from_ack": from_ack,
            "errors": errors,
        }
    )


# -- idle waiters -------------------------------------------------------------------------------


async def run_idle(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    streams: list[aiohttp.ClientResponse] = []
    errors: dict[str, int] = {}
    gate = asyncio.Semaphore(64)
    deadline = time.perf_counter() + args.duration
    async with _session(0) as session:
        client = Client(session, args.base, None)

        async def open_one() -> None:
            async with gate:
                if time.perf_counter() > deadline:
                    return
                try:
                    sender = _new_id()
                    made = await client.call(
                        "create",
                        "POST",
                        "/v1/m",
                        {
                            **JSON_HEADERS,
                            "mailbox-device-claim": sender,
                            "mailbox-request-id": _new_id(),
                        },
                        create_body(),
                    )
                    path = "/v1/m/" + made["urlLink"].rsplit("/", 1)[1]
                    response = await session.get(
                        args.base + path + "/events",
                        headers={"mailbox-device-claim": sender},
                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                    )
                    if response.status != 200:
                        raise Unexpected("events", response.status)  # noqa: TRY301
                    await response.content.readline()  # "retry: 2000": the stream is live
                    streams.append(response)
                except (Unexpected, aiohttp.ClientError, TimeoutError, OSError) as exc:
                    key = (
                        f"{exc.op}:{exc.status}"
                        if isinstance(exc, Unexpected)
                        else type(exc).__name__
                    )
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(open_one() for _ in range(args.waiters)))
        connect_seconds = time.perf_counter() - started
        print(json.dumps({"open": len(streams), "errors": errors}), file=sys.stderr, flush=True)
        await _await_go()  # here GO means: the measurement is over, hang up
        still_open = sum(1 for s in streams if not s.content.at_eof())
        for response in streams:
            response.close()
    _finish(
        {
            "mode": "idle",
            "waiters": len(streams),
            "still_open": still_open,
            "connect_seconds": connect_seconds,
            "errors": errors,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base")
    parser.add_argument("mode", choices=("transfer", "notify", "idle"))
    parser.add_argument("--echo", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-transfers", type=int, default=1_000_000)
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--via", choices=("sse", "poll"), default="sse")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--waiters", type=int, default=10_000)
    args = parser.parse_args()
    runners: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
        "transfer": run_transfers,
        "notify": run_notify,
        "idle": run_idle,
    }
    uvloop.run(runners[args.mode](args))


if __name__ == "__main__":
    main()
