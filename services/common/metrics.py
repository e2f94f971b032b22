"""Prometheus metrics of one service, on its own registry so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.scoring import Scored

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def reason_code(reason: str | None) -> str:
    """A bounded label from a free-text reason: its head up to the first colon."""
    if not reason:
        return "none"
    return reason.split(":", 1)[0].strip()[:40] or "none"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rewardstack_requests", "Score requests by HTTP status", ["status"], registry=r
        )
        self.items = Counter("rewardstack_items", "Items scored", registry=r)
        self.item_errors = Counter(
            "rewardstack_item_errors", "Items without a reward, by status and reason", ["status", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "rewardstack_request_seconds", "Time to answer a score request",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "rewardstack_batch_size", "Items per score request", buckets=_BATCH_BUCKETS, registry=r
        )
        self.in_flight = Gauge("rewardstack_in_flight", "Requests being scored", registry=r)
        self.queued = Gauge("rewardstack_queued", "Requests waiting for a scoring slot", registry=r)

    def observe_items(self, results: list[Scored]) -> None:
        self.items.inc(len(results))
        for res in results:
            if res.reward is None:
                self.item_errors.labels(res.status.value, reason_code(res.reason)).inc()
