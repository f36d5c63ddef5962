"""Metrics shared by the worker processes of one relay.

uvicorn's workers share one listening socket, so a Prometheus scrape lands on whichever worker
accepts it; with per-process counters each scrape would see a different part of the traffic.
Each worker therefore writes a snapshot of its counters (:meth:`RelayMetrics.snapshot`: route
templates and counts, never an identifier) to ``<directory>/<pid>.json`` every second and when
it stops, and the worker answering ``/metrics`` adds the others' latest snapshots to its own
live counters.  A worker that died and was replaced leaves its last snapshot behind, so the sums
never go backwards (Prometheus counters must not).  ``tigress relay serve`` makes the directory
(private, removed on exit) whenever it runs more than one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from tigress.relay.metrics import RelayMetrics

_log = logging.getLogger("tigress.relay.metrics")
PUBLISH_INTERVAL_SECONDS = 1.0
# A snapshot is a few KB; anything much larger is not one of ours.
_MAX_SNAPSHOT_BYTES = 1 << 20


class MetricsShare:
    def __init__(self, directory: Path, *, pid: int | None = None) -> None:
        self.directory = directory
        self._pid = os.getpid() if pid is None else pid
        self._own = directory / f"{self._pid}.json"

    def publish(self, metrics: RelayMetrics) -> None:
        """Replace this worker's snapshot atomically (readers never see half a file)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.directory / f".{self._pid}.json.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(metrics.snapshot(), handle, separators=(",", ":"))
        os.replace(temporary, self._own)

    def others(self) -> list[dict[str, Any]]:
        """The other workers' latest snapshots; unreadable or malformed files are skipped."""
        snapshots: list[dict[str, Any]] = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return snapshots
        for path in paths:
            if path == self._own:
                continue
            try:
                if path.stat().st_size > _MAX_SNAPSHOT_BYTES:
                    continue
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(document, dict):
                snapshots.append(document)
        return snapshots

    def render(self, metrics: RelayMetrics) -> str:
        """The exposition text of every worker's counters together."""
        return metrics.combined(self.others()).render()

    async def run(self, metrics: RelayMetrics) -> None:
        """Publish every second until cancelled, then once more (the final counts)."""
        try:
            while True:
                self._publish_logged(metrics)
                await asyncio.sleep(PUBLISH_INTERVAL_SECONDS)
        finally:
            self._publish_logged(metrics)

    def _publish_logged(self, metrics: RelayMetrics) -> None:
        try:
            self.publish(metrics)
        except OSError as exc:
            _log.warning("could not share this worker's metrics: %s", exc.strerror or exc)


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a :meth:`MetricsShare.run` task and wait for its final publish."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
