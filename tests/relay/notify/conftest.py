from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from relay.notify.receiver import Receiver
from tigress.relay.notify import PushConfig


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., PushConfig]:
    """Loopback-permitting settings with short timeouts and backoff, overridable per test."""

    def build(**overrides: object) -> PushConfig:
        settings: dict[str, object] = {
            "vapid_subject": "mailto:ops@relay.test",
            "vapid_key_path": tmp_path / "vapid" / "key.pem",
            "allow_insecure_loopback": True,
            "connect_timeout": 2.0,
            "read_timeout": 2.0,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "max_attempts": 4,
            "drain_timeout": 2.0,
            "concurrency": 2,
        }
        settings.update(overrides)
        return PushConfig(**settings)  # type: ignore[arg-type]

    return build


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.close()
