"""Shared parts of the relay benchmarks: servers in subprocesses, /proc accounting, statistics.

Everything here talks to 127.0.0.1 only, and every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
LOADGEN_SOURCE = HERE / "loadgen.c"
LOADGEN_BINARY = RESULTS_DIR / "loadgen"  # a build cache, ignored by git like the results
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


# -- /proc accounting ------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (uvicorn workers, the multiprocessing helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of every live process of the tree (all threads included), in seconds."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # stat fields 14 and 15
    return ticks / _CLOCK_TICKS


def tree_rss_bytes(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident * _PAGE_BYTES
    return total


# -- servers ---------------------------------------------------------------------------------------


@dataclass
class ServerSpec:
    """What to serve: ``kind`` is "relay" or "echo"; ``settings`` are RelayConfig fields."""

    label: str
    kind: str
    workers: int = 1
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Server:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def rss_bytes(self) -> int:
        return tree_rss_bytes(self.process.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in reversed(process_tree(self.process.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.wait(5)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    path = "/readyz" if server.spec.kind == "relay" else "/healthz"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    server.stop()
    log = server.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"server {server.spec.label} did not become ready:\n{log}")


def start_server(spec: ServerSpec, workdir: Path, *, ready_timeout: float = 30.0) -> Server:
    """Bind an ephemeral loopback port here, hand the socket to a server subprocess, wait until
    it answers.  With several workers, each readiness probe may reach another worker; the probe
    is repeated until every worker has had time to start."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("TIGRESS_RELAY_"):
            del env[key]
    if spec.kind == "relay":
        settings = {
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "workers": spec.workers,
            # One load generator on one address would otherwise be throttled at 100 req/s.
            "rate_limit_per_second": 0,
            "log_level": "warning",
            **spec.settings,
        }
        if "store" not in settings:
            settings["store"] = f"sqlite:///{workdir / 'relay.db'}"
        env["TIGRESS_RELAY_CONFIG_JSON"] = json.dumps(settings)
    log_path = workdir / f"server-{spec.label}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "relay_server.py"),
                spec.kind,
                str(listener.fileno()),
                str(spec.workers),
            ],
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=HERE,
        )
    listener.close()
    server = Server(spec, process, port, log_path)
    _wait_ready(server, ready_timeout)
    if spec.workers > 1:
        # Let the other workers finish their lifespan start before load arrives.
        for _ in range(8 * spec.workers):
            _wait_ready(server, ready_timeout)
        time.sleep(1.0)
    return server


@contextlib.contextmanager
def running(spec: ServerSpec, workdir: Path) -> Iterator[Server]:
    server = start_server(spec, workdir)
    try:
        yield server
    finally:
        server.stop()


# -- load generator subprocesses -------------------------------------------------------------------


def build_loadgen() -> Path:
    """The C load generator's binary, compiled from ``loadgen.c`` when it is missing or older
    than the source.  Built under a temporary name and renamed, so a concurrent run never
    executes a half-written file."""
    if LOADGEN_BINARY.exists() and LOADGEN_BINARY.stat().st_mtime >= LOADGEN_SOURCE.stat().st_mtime:
        return LOADGEN_BINARY
    compiler = shutil.which("gcc")
    if compiler is None:
        raise SystemExit(
            "the C load generator (--client c) needs gcc to build benchmarks/loadgen.c: "
            "install gcc, or run with --client raw (the Python load generator)"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    partial = LOADGEN_BINARY.with_name(f"loadgen.{os.getpid()}.tmp")
    built = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(partial), str(LOADGEN_SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"gcc could not build {LOADGEN_SOURCE.name}:\n{built.stderr}")
    partial.replace(LOADGEN_BINARY)
    return LOADGEN_BINARY


def load_command(args: Sequence[str]) -> list[str]:
    """``args`` are relay_load.py's (BASE_URL MODE [options]).  Transfers with ``--client c``
    run the C load generator, which speaks the same protocol and prints the same JSON; every
    other mode and client runs relay_load.py."""
    client = next((args[i + 1] for i in range(len(args) - 1) if args[i] == "--client"), None)
    if len(args) > 1 and args[1] == "transfer" and client == "c":
        return [str(build_loadgen()), *args]
    return [sys.executable, str(HERE / "relay_load.py"), *args]


class LoadProcess:
    """A load generator subprocess (``relay_load.py``, or ``loadgen.c`` for ``transfer --client
    c``): it warms up, says READY, waits for GO, runs, says DONE and then prints one JSON line of
    results.  The caller samples server CPU between GO and DONE."""

    def __init__(self, args: Sequence[str], *, timeout: float) -> None:
        self._timeout = timeout
        self.process = subprocess.Popen(
            load_command(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=HERE,
        )

    def _expect(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if line != word:
            self.kill()
            raise RuntimeError(f"load generator said {line!r}, expected {word}")

    def wait_ready(self) -> None:
        self._expect("READY")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"GO\n")
        self.process.stdin.flush()

    def stop_early(self) -> None:
        """End the measured phase now (modes that watch stdin after GO)."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"STOP\n")
        self.process.stdin.flush()

    def wait_done(self) -> None:
        self._expect("DONE")

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if self.process.stdin is not None:
            self.process.stdin.close()  # EOF releases a thread still reading stdin there
        self.process.wait(self._timeout)
        if not line:
            raise RuntimeError("load generator exited without a result")
        document: dict[str, Any] = json.loads(line)
        return document

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def run_load(server: Server, args: Sequence[str], *, timeout: float) -> dict[str, Any]:
    """Run one measured load phase; adds the server's CPU seconds and RSS over the phase."""
    load = LoadProcess([server.base_url, *args], timeout=timeout)
    try:
        load.wait_ready()
        cpu_before = server.cpu_seconds()
        load.go()
        load.wait_done()
        cpu_after = server.cpu_seconds()
        result = load.result()
    finally:
        load.kill()
    result["server_cpu_seconds"] = cpu_after - cpu_before
    result["server_rss_bytes"] = server.rss_bytes()
    return result


# -- statistics and output -------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine_description() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def write_results(name: str, document: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return "-" if value is None else str(value)
