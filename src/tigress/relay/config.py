"""Relay settings: defaults, a TOML file, ``TIGRESS_RELAY_*`` environment variables, CLI flags.

Later sources win: defaults < TOML < environment < command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

ENV_PREFIX = "TIGRESS_RELAY_"
#: The CLI passes its resolved settings to uvicorn worker processes through this variable.
CONFIG_JSON_ENV = "TIGRESS_RELAY_CONFIG_JSON"


class ConfigError(ValueError):
    """A setting is unknown or has an invalid value."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    host: str = "127.0.0.1"
    port: int = 8443
    #: ``sqlite:///absolute/path.db``, ``sqlite:relative/path.db`` or ``postgresql://...``;
    #: empty means an SQLite file in the user's data directory.
    store: str = ""
    durability: str = "normal"
    #: Base of ``urlLink``: ``{public_url}/v1/m/{id}``; empty means ``http://{host}:{port}``.
    public_url: str = ""
    workers: int = 1
    #: File holding the relay's 32-byte secret for keyed hashes; empty means next to the SQLite
    #: database, or in the user's data directory.  Relays sharing a PostgreSQL database must share
    #: the secret.
    secret_file: str = ""
    payload_max_bytes: int = 64 * 1024
    body_headroom_bytes: int = 16 * 1024
    title_max: int = 128
    description_max: int = 512
    image_url_max: int = 2048
    token_data_max: int = 4096
    attestation_max: int = 8192
    expiration_min_seconds: int = 60
    expiration_max_seconds: int = 48 * 3600
    expiration_default_seconds: int = 48 * 3600
    messages_per_mailbox: int = 64
    long_poll_max_seconds: int = 60
    sse_heartbeat_seconds: float = 15.0
    #: Per client address, in memory only; 0 disables rate limiting.
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 400
    sweep_interval_seconds: float = 30.0
    # A sweep batch runs on the event loop between requests: 100 mailboxes take ~6 ms, so a
    # mass expiry adds at most that to a request (500 took ~30 ms; same sweep rate).
    sweep_batch: int = 100
    preview_image_width: int = 1200
    preview_image_height: int = 630
    #: Deliver ``webhook`` and ``webpush`` notification tokens (tigress.relay.notify).
    push: bool = True
    #: RFC 8292 contact of the operator, sent to push services.
    vapid_subject: str = "mailto:relay-operator@invalid"
    #: The VAPID signing key (PEM, made on first start); empty means next to the secret file.
    vapid_key_file: str = ""
    #: Tests and local development only: allow http:// and loopback webhook/push URLs.
    push_allow_insecure_loopback: bool = False
    access_log: bool = False
    log_level: str = "info"
    #: Where the worker processes of one relay share their metrics (``tigress relay serve`` sets
    #: a private one when it runs several workers); empty: each process reports its own.
    metrics_dir: str = ""

    @property
    def body_max_bytes(self) -> int:
        return self.payload_max_bytes + self.body_headroom_bytes

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    def validate(self) -> RelayConfig:
        if self.durability not in ("normal", "full"):
            raise ConfigError("durability must be 'normal' or 'full'")
        if not 1 <= self.port <= 65535:
            raise ConfigError("port must be between 1 and 65535")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if not 0 < self.expiration_min_seconds <= self.expiration_max_seconds:
            raise ConfigError("need 0 < expiration_min_seconds <= expiration_max_seconds")
        if not (
            self.expiration_min_seconds
            <= self.expiration_default_seconds
            <= self.expiration_max_seconds
        ):
            raise ConfigError("expiration_default_seconds must lie between the min and the max")
        if self.payload_max_bytes < 1 or self.messages_per_mailbox < 1:
            raise ConfigError("payload_max_bytes and messages_per_mailbox must be positive")
        if not 0 <= self.long_poll_max_seconds <= 3600:
            raise ConfigError("long_poll_max_seconds must be between 0 and 3600")
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise ConfigError("public_url must start with https:// or http://")
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(RelayConfig)}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    bad = ConfigError(f"setting {name}: invalid {kind} value {value!r}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise bad
        return lowered in ("1", "true", "yes", "on")
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise bad
        try:
            return int(value) if kind == "int" else float(value)
        except (TypeError, ValueError):
            raise bad from None
    if not isinstance(value, str):
        raise bad
    return value


def build_config(
    *,
    toml_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RelayConfig:
    """Merge the sources; unknown keys are errors (a typo must not silently fall back)."""
    values: dict[str, Any] = {}
    if toml_path is not None:
        with toml_path.open("rb") as handle:
            document = tomllib.load(handle)
        table = document.get("relay", document)
        if not isinstance(table, dict):
            raise ConfigError("[relay] in the TOML file must be a table")
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r} in {toml_path}")
            values[name] = _coerce(name, value)
    env = os.environ if environ is None else environ
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key != CONFIG_JSON_ENV:
            name = key[len(ENV_PREFIX) :].lower()
            if name not in _FIELDS:
                raise ConfigError(f"unknown setting in environment variable {key}")
            values[name] = _coerce(name, value)
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, value)
    return RelayConfig(**values).validate()


def config_from_json(text: str) -> RelayConfig:
    data = json.loads(text)
    return RelayConfig(**{k: _coerce(k, v) for k, v in data.items()}).validate()


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tigress", appauthor=False)) / "relay"
