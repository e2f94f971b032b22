"""Prometheus view of the math worker pool: workers alive; timeouts, deadline kills, crashes, restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from services.math_equiv.pool import WorkerPool

EVENTS = ("timeouts", "deadline_kills", "crashes", "restarts", "start_failures")


class PoolCollector:
    """Reads the pool's counters at scrape time, so the pool itself stays free of prometheus."""

    def __init__(self, get_pool: Callable[[], WorkerPool | None]):
        self._get_pool = get_pool

    def collect(self) -> Iterator[Metric]:
        pool = self._get_pool()
        yield GaugeMetricFamily(
            "math_equiv_workers_alive", "Math worker processes alive (busy or idle).",
            value=pool.alive if pool else 0,
        )
        events = CounterMetricFamily(
            "math_equiv_worker_events",
            "Workers killed at the time limit or at a request's deadline, crashes, restarts, "
            "failed starts.",
            labels=["event"],
        )
        for name in EVENTS:
            events.add_metric([name], pool.events[name] if pool else 0)
        yield events
