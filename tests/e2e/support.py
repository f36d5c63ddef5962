"""End-to-end support: every party is its own process (the CLI as ``python -m tigress.cli``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from tests.client.support import free_port

CLI_TIMEOUT = 90  # bound on any single CLI process


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The last JSON line on stdout (commands that stream emit one object per line)."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert lines, f"no JSON on stdout; stderr: {self.err}"
        return json.loads(lines[-1])


def cli_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TIGRESS_") or k in ("TIGRESS_TEST_POSTGRES_DSN",)
    }
    env["HOME"] = str(home)
    env["TMPDIR"] = str(home)
    env["COLUMNS"] = "200"
    return env


class Device:
    """One phone: its own wallet directory; every call is a new process that exits."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.wallet = root / name
        self.home = root / f"{name}-home"
        self.home.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tigress.cli", "--wallet", str(self.wallet), *args]

    def run(self, *args: str, timeout: float = CLI_TIMEOUT) -> Done:
        process = subprocess.run(  # noqa: PLW1510 - the exit code is the point
            self.argv(*args),
            capture_output=True,
            text=True,
            env=cli_env(self.home),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Done(process.returncode, process.stdout, process.stderr)

    def ok(self, *args: str) -> Done:
        done = self.run(*args)
        assert done.code == 0, f"{self.name} {args}: exit {done.code}\n{done.err}\n{done.out}"
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        """A long-running CLI process (its own process group, so it can be killed whole)."""
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(self.home),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    process.wait(timeout=15)


@contextlib.contextmanager
def hotel_process(directory: Path, admin_token: str) -> Iterator[str]:
    """``tigress pe hotel serve`` in its own process on 127.0.0.1; yields its URL."""
    port = free_port()
    log = (directory / "hotel.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tigress.cli",
            "pe",
            "hotel",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(directory / "hotel.db"),
            "--name",
            "Hotel E2E",
            "--admin-token",
            admin_token,
        ],
        stdout=log,
        stderr=log,
        env=cli_env(directory),
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError((directory / "hotel.log").read_text(errors="replace"))
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(url + "/v1/hotel", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the hotel entity did not start")
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def alternate(sender: Device, receiver: Device, rounds: int = 6) -> tuple[Any, Any]:
    """Each side comes online in turn (a new process each time) until both have finished."""
    sent: Any = None
    got: Any = None
    for _ in range(rounds):
        sent = sender.run("--json", "continue").json()
        got = receiver.run("--json", "continue").json()
        if not sent["transfers"] and not got["transfers"]:
            break
    return sent, got
