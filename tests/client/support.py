"""Test support: a relay in a subprocess, a small real vertical (echo), a tampering proxy."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import uvicorn

from tigress.protocol.invitation import Vertical
from tigress.protocol.messages import ProvisioningInfo
from tigress.wallet.api import Credential, CredentialOrigin, WalletView

ECHO_FORMAT = "tigress.test.echo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RelayProcess:
    """``tigress relay serve`` on 127.0.0.1 in its own process group; restartable on one DB."""

    def __init__(self, directory: Path, *, public_url: str | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.public_url = public_url or self.base_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIGRESS_RELAY_")}
        env["TIGRESS_RELAY_RATE_LIMIT_PER_SECOND"] = "0"
        env["TIGRESS_RELAY_PUBLIC_URL"] = self.public_url
        env["TIGRESS_RELAY_SECRET_FILE"] = str(self.directory / "relay.secret")
        log = open(self.directory / "relay.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tigress.cli import main; main()",
                "relay",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--store",
                f"sqlite:///{self.directory / 'relay.db'}",
            ],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("relay exited during start: " + self.log_tail())
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError("relay did not become ready")

    def log_tail(self) -> str:
        return (self.directory / "relay.log").read_text(errors="replace")[-2000:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


# --- a small real vertical: the echo flow ------------------------------------------------------


class EchoRefused(Exception):
    """Shaped like VerticalError: a refusal with a channel code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class EchoSenderFlow:
    """Copies a credential after ``rounds`` ping/pong round trips."""

    wallet: WalletView
    credential_id: str
    rounds: int

    def _final(self) -> dict[str, Any]:
        credential = self.wallet.credentials.get(self.credential_id)
        return {"kind": "final", "label": credential.label, "data": dict(credential.data)}

    def opening(self) -> ProvisioningInfo:
        if self.rounds == 0:
            return ProvisioningInfo(ECHO_FORMAT, self._final())
        return ProvisioningInfo(ECHO_FORMAT, {"kind": "offer", "rounds": self.rounds})

    def on_message(self, info: ProvisioningInfo) -> EchoStep:
        content = info.content
        if content.get("kind") != "ping" or not isinstance(content.get("n"), int):
            raise EchoRefused("malformed", "the receiver sent something other than a ping")
        n = content["n"]
        if n < self.rounds:
            return EchoStep(reply=ProvisioningInfo(ECHO_FORMAT, {"kind": "pong", "n": n}))
        return EchoStep(reply=ProvisioningInfo(ECHO_FORMAT, self._final()))

    def to_dict(self) -> Mapping[str, Any]:
        return {"credential_id": self.credential_id, "rounds": self.rounds}


@dataclass(frozen=True)
class EchoStep:
    reply: ProvisioningInfo | None = None
    finished: bool = False
    credential_id: str | None = None


@dataclass
class EchoReceiverFlow:
    wallet: WalletView
    pings: int = 0
    refuse: bool = False

    def on_message(self, info: ProvisioningInfo) -> EchoStep:
        content = info.content
        if self.refuse:
            raise EchoRefused("declined", "This test receiver refuses every credential.")
        if content.get("kind") == "final":
            credential = Credential(
                id=f"c-echo-{len(self.wallet.credentials.list())}",
                vertical="echo",
                format=ECHO_FORMAT,
                label=str(content["label"]),
                origin=CredentialOrigin.RECEIVED,
                data=dict(content["data"]),
            )
            self.wallet.credentials.add(credential)
            return EchoStep(finished=True, credential_id=credential.id)
        if content.get("kind") in ("offer", "pong"):
            self.pings += 1
            return EchoStep(reply=ProvisioningInfo(ECHO_FORMAT, {"kind": "ping", "n": self.pings}))
        raise EchoRefused("malformed", "the sender sent an unknown echo message")

    def to_dict(self) -> Mapping[str, Any]:
        return {"pings": self.pings, "refuse": self.refuse}


@dataclass
class EchoSpec:
    name: str = "echo"
    hint: Vertical = Vertical.GENERAL
    refuse: bool = False

    def sender_flow(
        self, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> EchoSenderFlow:
        return EchoSenderFlow(wallet, credential_id, int(options.get("rounds", 0)))

    def restore_sender_flow(self, wallet: WalletView, state: Mapping[str, Any]) -> EchoSenderFlow:
        return EchoSenderFlow(wallet, state["credential_id"], state["rounds"])

    def receiver_flow(self, wallet: WalletView) -> EchoReceiverFlow:
        return EchoReceiverFlow(wallet, refuse=self.refuse)

    def restore_receiver_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> EchoReceiverFlow:
        return EchoReceiverFlow(wallet, state["pings"], state["refuse"])

    def accepts(self, info: ProvisioningInfo) -> bool:
        return info.format == ECHO_FORMAT


# --- a relay that misbehaves -------------------------------------------------------------------

Transform = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def frame_kind(message: Mapping[str, Any]) -> int | None:
    """The channel frame kind inside a relay message (1/3 sender, 2/4 receiver)."""
    payload = message.get("payload")
    if not isinstance(payload, dict) or payload.get("type") != "tigress-noise-v1":
        return None
    return base64.b64decode(payload["data"])[1]


def with_frame(message: Mapping[str, Any], frame: bytes) -> dict[str, Any]:
    return {
        "seq": message["seq"],
        "payload": {"type": "tigress-noise-v1", "data": base64.b64encode(frame).decode()},
    }


def frame_of(message: Mapping[str, Any]) -> bytes:
    return base64.b64decode(message["payload"]["data"])


@dataclass
class TamperingProxy:
    """An HTTP proxy in front of a real relay that can rewrite what reads return.

    ``transform`` sees the ``messages`` list of every cursor read and returns the list to hand
    to the device.  ``drop_responses`` makes the proxy forward that many writes (PUT/POST
    create, first tries only) to the relay and then answer 502 instead of the relay's answer,
    as a network failure after the server acted would.  ``request_ids`` records every write's
    request id.
    """

    target: str = ""
    transform: Transform | None = None
    drop_responses: int = 0
    request_ids: list[tuple[str, str]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {
            k.decode(): v.decode()
            for k, v in scope["headers"]
            if k.lower() not in (b"host", b"content-length", b"connection")
        }
        method = scope["method"]
        url = self.target + scope["path"]
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode()
        first_try = False
        if "mailbox-request-id" in headers:
            first_try = all(r != headers["mailbox-request-id"] for _, r in self.request_ids)
            self.request_ids.append((method, headers["mailbox-request-id"]))
        async with httpx2.AsyncClient(timeout=90) as client:
            reply = await client.request(method, url, content=body, headers=headers)
        content = reply.content
        status = reply.status_code
        if method in ("PUT", "POST") and first_try and self.drop_responses:
            self.drop_responses -= 1
            status, content = 502, b"upstream answer lost"
        elif (
            method == "POST"
            and scope["path"].startswith("/v1/m/")
            and status == 200
            and self.transform is not None
        ):
            document = json.loads(content)
            if "messages" in document:
                document["messages"] = self.transform(document["messages"])
                content = json.dumps(document).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", reply.headers.get("content-type", "text/plain").encode())
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def start(self) -> TamperingProxy:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("proxy did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
