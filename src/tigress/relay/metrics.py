"""Prometheus metrics in the text exposition format: counts and latencies by route *template*
and mailbox outcomes — never an identifier.  Each worker process keeps its own counters; with
several workers they share snapshots (:mod:`tigress.relay.metrics_share`) and whichever worker
answers a scrape reports the sum."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
OUTCOMES: Final = ("created", "completed", "cancelled", "expired", "rejected")


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


class RelayMetrics:
    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.rate_limited = 0

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = _Histogram()
        histogram.observe(seconds)

    def outcome(self, name: str, count: int = 1) -> None:
        self.outcomes[name] += count

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain JSON values (what another worker adds to its own)."""
        return {
            "requests": [[r, m, s, v] for (r, m, s), v in self._requests.items()],
            "latency": {k: [h.counts, h.total, h.count] for k, h in self._latency.items()},
            "outcomes": dict(self.outcomes),
            "rate_limited": self.rate_limited,
        }

    def _add(self, snapshot: Mapping[str, Any]) -> None:
        """Add another worker's snapshot; a malformed one raises ValueError, having changed
        nothing (every part is checked before any is added)."""
        try:
            requests = [(str(r), str(m), int(s), _count(v)) for r, m, s, v in snapshot["requests"]]
            latency = {
                str(route): ([_count(c) for c in counts], _seconds(total), _count(count))
                for route, (counts, total, count) in snapshot["latency"].items()
            }
            outcomes = {name: _count(snapshot["outcomes"].get(name, 0)) for name in OUTCOMES}
            rate_limited = _count(snapshot["rate_limited"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed metrics snapshot: {exc!r}") from None
        if any(len(counts) != len(LATENCY_BUCKETS) + 1 for counts, _, _ in latency.values()):
            raise ValueError("malformed metrics snapshot: wrong number of latency buckets")
        for route, method, status, value in requests:
            key = (route, method, status)
            self._requests[key] = self._requests.get(key, 0) + value
        for route, (counts, total, count) in latency.items():
            histogram = self._latency.get(route)
            if histogram is None:
                histogram = self._latency[route] = _Histogram()
            histogram.counts = [a + b for a, b in zip(histogram.counts, counts, strict=True)]
            histogram.total += total
            histogram.count += count
        for name, value in outcomes.items():
            self.outcomes[name] += value
        self.rate_limited += rate_limited

    def combined(self, others: Iterable[Mapping[str, Any]]) -> RelayMetrics:
        """These counters plus other workers' snapshots (malformed ones are skipped)."""
        total = RelayMetrics()
        total._add(self.snapshot())
        for snapshot in others:
            try:
                total._add(snapshot)
            except ValueError:
                continue
        return total

    def render(self) -> str:
        lines = [
            "# HELP tigress_relay_requests_total HTTP requests by route template and status.",
            "# TYPE tigress_relay_requests_total counter",
        ]
        for (route, method, status), value in sorted(self._requests.items()):
            lines.append(
                f'tigress_relay_requests_total{{route="{route}",method="{method}",'
                f'status="{status}"}} {value}'
            )
        lines += [
            "# HELP tigress_relay_request_duration_seconds Request latency by route template.",
            "# TYPE tigress_relay_request_duration_seconds histogram",
        ]
        for route, histogram in sorted(self._latency.items()):
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, histogram.counts, strict=False):
                cumulative += count
                lines.append(
                    f'tigress_relay_request_duration_seconds_bucket{{route="{route}",'
                    f'le="{bound}"}} {cumulative}'
                )
            lines.append(
                f'tigress_relay_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} '
                f"{histogram.count}"
            )
            lines.append(
                f'tigress_relay_request_duration_seconds_sum{{route="{route}"}} {histogram.total}'
            )
            lines.append(
                f'tigress_relay_request_duration_seconds_count{{route="{route}"}} {histogram.count}'
            )
        lines += [
            "# HELP tigress_relay_mailboxes_total Mailbox outcomes: created; completed (deleted"
            " after a recipient bound); cancelled (deleted before); expired; rejected (create"
            " refused).",
            "# TYPE tigress_relay_mailboxes_total counter",
        ]
        for name in OUTCOMES:
            lines.append(f'tigress_relay_mailboxes_total{{outcome="{name}"}} {self.outcomes[name]}')
        lines += [
            "# HELP tigress_relay_rate_limited_total Requests refused by the per-address limit.",
            "# TYPE tigress_relay_rate_limited_total counter",
            f"tigress_relay_rate_limited_total {self.rate_limited}",
        ]
        return "\n".join(lines) + "\n"


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"not a count: {value!r}")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a duration: {value!r}")
    if not math.isfinite(value) or value < 0:
        raise TypeError(f"not a duration: {value!r}")
    return float(value)
