"""Worker processes' metrics added together (tigress.relay.metrics_share)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tigress.relay.metrics import RelayMetrics
from tigress.relay.metrics_share import MetricsShare


def _worker(requests: int, *, created: int = 0, seconds: float = 0.002) -> RelayMetrics:
    metrics = RelayMetrics()
    for _ in range(requests):
        metrics.observe_request("/v1/m", "POST", 200, seconds)
    metrics.outcome("created", created)
    metrics.rate_limited = 1
    return metrics


def _value(text: str, prefix: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return line.rsplit(" ", 1)[1]


def test_snapshots_of_other_workers_add_up(tmp_path: Path) -> None:
    first, second = _worker(3, created=2), _worker(5, created=1, seconds=0.2)
    MetricsShare(tmp_path, pid=1).publish(first)
    MetricsShare(tmp_path, pid=2).publish(second)
    text = MetricsShare(tmp_path, pid=3).render(_worker(1))
    assert _value(text, 'tigress_relay_requests_total{route="/v1/m"') == "9"
    assert _value(text, 'tigress_relay_mailboxes_total{outcome="created"}') == "3"
    assert _value(text, "tigress_relay_rate_limited_total") == "3"
    assert _value(text, 'tigress_relay_request_duration_seconds_count{route="/v1/m"}') == "9"
    assert (
        _value(text, 'tigress_relay_request_duration_seconds_bucket{route="/v1/m",le="0.1"}') == "4"
    )
    # Worker 2 answering a scrape: its live counters stand for its own file.
    assert (
        _value(
            MetricsShare(tmp_path, pid=2).render(second),
            'tigress_relay_requests_total{route="/v1/m"',
        )
        == "8"
    )


def test_a_worker_never_counts_its_own_snapshot_twice(tmp_path: Path) -> None:
    own = _worker(4)
    share = MetricsShare(tmp_path, pid=7)
    share.publish(own)
    assert _value(share.render(own), 'tigress_relay_requests_total{route="/v1/m"') == "4"


def test_snapshot_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    MetricsShare(directory, pid=11).publish(_worker(1))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "11.json").stat().st_mode) == 0o600
    assert not list(directory.glob(".*.tmp"))  # written aside, then renamed into place


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        "{}",
        json.dumps(
            {
                "requests": [["/v1/m", "POST", 200, -5]],
                "latency": {},
                "outcomes": {},
                "rate_limited": 0,
            }
        ),
        json.dumps(
            {
                "requests": [],
                "latency": {"/v1/m": [[1, 2], 0.1, 3]},
                "outcomes": {},
                "rate_limited": 0,
            }
        ),
        json.dumps(
            {"requests": [], "latency": {}, "outcomes": {"created": True}, "rate_limited": 0}
        ),
        json.dumps(
            {
                "requests": [],
                "latency": {"/v1/m": [[0] * 12, float("nan"), 0]},
                "outcomes": {},
                "rate_limited": 0,
            }
        ),
    ],
)
def test_malformed_snapshots_are_skipped_whole(tmp_path: Path, content: str) -> None:
    (tmp_path / "66.json").write_text(content)
    MetricsShare(tmp_path, pid=5).publish(_worker(2))
    text = MetricsShare(tmp_path, pid=9).render(_worker(1))
    assert _value(text, 'tigress_relay_requests_total{route="/v1/m"') == "3"
    assert _value(text, 'tigress_relay_mailboxes_total{outcome="created"}') == "0"


def test_an_unwritable_directory_does_not_stop_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    share = MetricsShare(blocker / "metrics", pid=1)
    share._publish_logged(_worker(1))
    assert "could not share this worker's metrics" in caplog.text
    assert share.others() == []


def test_snapshot_round_trips_through_json() -> None:
    metrics = _worker(2, created=1)
    snapshot: dict[str, Any] = json.loads(json.dumps(metrics.snapshot()))
    assert RelayMetrics().combined([snapshot]).render() == metrics.render()
