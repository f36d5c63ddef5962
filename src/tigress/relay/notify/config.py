"""Settings of push delivery: URL policy, timeouts, retries, queue, VAPID identity."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PushConfigError(ValueError):
    """A push setting is out of range or inconsistent."""


@dataclass(frozen=True)
class PushConfig:
    """How the relay delivers wake-ups.

    ``allow_insecure_loopback`` is for tests and local development only: it permits ``http://``
    URLs and loopback addresses (127.0.0.0/8, ::1), nothing else.  ``extra_allowed_networks`` lets
    an operator reach a specific private network (e.g. an internal push gateway) over https.
    """

    vapid_subject: str = "mailto:relay-operator@invalid"
    vapid_key_path: Path | None = None
    vapid_private_key_pem: bytes | None = field(default=None, repr=False)
    allow_insecure_loopback: bool = False
    extra_allowed_networks: tuple[IPNetwork, ...] = ()
    ca_file: Path | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    queue_size: int = 10_000
    concurrency: int = 4
    drain_timeout: float = 5.0
    webpush_ttl: int = 86_400
    webpush_urgency: str = "normal"
    gone_memory: int = 100_000
    token_data_max_bytes: int = 4096

    def __post_init__(self) -> None:
        if not (
            self.vapid_subject.startswith(("mailto:", "https://")) and len(self.vapid_subject) > 8
        ):
            raise PushConfigError("vapid_subject must be a mailto: or https:// contact (RFC 8292)")
        if self.vapid_key_path is None and self.vapid_private_key_pem is None:
            raise PushConfigError("give vapid_key_path (generated on first start) or the key PEM")
        positive = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "backoff_max": self.backoff_max,
            "drain_timeout": self.drain_timeout,
        }
        for name, value in positive.items():
            if not value > 0:
                raise PushConfigError(f"{name} must be positive")
        if self.backoff_base < 0 or self.backoff_base > self.backoff_max:
            raise PushConfigError("backoff_base must be between 0 and backoff_max")
        if not 1 <= self.max_attempts <= 20:
            raise PushConfigError("max_attempts must be between 1 and 20")
        if not 1 <= self.queue_size <= 10_000_000:
            raise PushConfigError("queue_size must be between 1 and 10,000,000")
        if not 1 <= self.concurrency <= 256:
            raise PushConfigError("concurrency must be between 1 and 256")
        if not 0 <= self.webpush_ttl <= 2_419_200:
            raise PushConfigError("webpush_ttl must be between 0 and 28 days")
        if self.webpush_urgency not in ("very-low", "low", "normal", "high"):
            raise PushConfigError("webpush_urgency must be very-low, low, normal or high")
        if not 256 <= self.token_data_max_bytes <= 65_536:
            raise PushConfigError("token_data_max_bytes must be between 256 and 65,536")
        if self.gone_memory < 0:
            raise PushConfigError("gone_memory must not be negative")
