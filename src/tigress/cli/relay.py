"""``tigress relay ...``: run the relay server."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from tigress.relay.config import CONFIG_JSON_ENV, ConfigError, RelayConfig, build_config


@click.group("relay")
def relay() -> None:
    """Run the Tigress relay (mailbox server)."""


@relay.command("serve")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port (default 8443).")
@click.option(
    "--store",
    default=None,
    help="sqlite:///path/relay.db or postgresql://... (default: SQLite in the user data dir).",
)
@click.option("--durability", type=click.Choice(["normal", "full"]), default=None)
@click.option("--public-url", default=None, help="Base URL of share links (urlLink).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML settings file (keys as in docs/relay-api.md).",
)
def serve(
    *,
    host: str | None,
    port: int | None,
    store: str | None,
    durability: str | None,
    public_url: str | None,
    workers: int | None,
    config_path: Path | None,
) -> None:
    """Serve the relay API.  TLS belongs to the front proxy."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from tigress.relay.app import default_store_url  # noqa: PLC0415
    from tigress.relay.logs import configure_logging  # noqa: PLC0415

    try:
        config = build_config(
            toml_path=config_path,
            overrides={
                "host": host,
                "port": port,
                "store": store,
                "durability": durability,
                "public_url": public_url,
                "workers": workers,
            },
        )
    except (ConfigError, OSError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if not config.store:
        config = dataclasses.replace(config, store=default_store_url())
    configure_logging(config.log_level)
    from tigress.relay.server import RelayHttpProtocol  # noqa: PLC0415

    with _shared_metrics(config) as config:
        # Every worker process rebuilds exactly these settings.
        os.environ[CONFIG_JSON_ENV] = config.to_json()
        uvicorn.run(
            "tigress.relay.app:app_from_environment",
            http=RelayHttpProtocol,
            factory=True,
            host=config.host,
            port=config.port,
            workers=config.workers,
            access_log=False,
            log_config=None,
            lifespan="on",
            proxy_headers=True,
            server_header=False,
            timeout_graceful_shutdown=5,
        )


@contextlib.contextmanager
def _shared_metrics(config: RelayConfig) -> Iterator[RelayConfig]:
    """With several workers and no ``metrics_dir`` of the operator's, a private directory for
    the workers' metric snapshots (tigress.relay.metrics_share), removed when the relay stops."""
    if config.workers < 2 or config.metrics_dir:
        yield config
        return
    with tempfile.TemporaryDirectory(prefix="tigress-relay-metrics-") as directory:
        yield dataclasses.replace(config, metrics_dir=directory)
