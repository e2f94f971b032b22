"""Prometheus view of clip_cider: the embedder's counters, and where each request's time goes (stages)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from services.clip_cider.clip import ClipEmbedder

# decode: base64 or file, content hash, decompression; preprocess: resize, crop, normalise;
# forward: text tokenization and the CLIP passes (waiting for the device included); cider: CIDEr-D.
STAGES = ("decode", "preprocess", "forward", "cider")
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestStages:
    """Wall-clock seconds one request spends in each stage."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def time(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started


class StageClock:
    """Per-request stage times: `clip_cider_stage_seconds{stage}` once registered, and running totals.

    Every request observes every stage, zero included (all images cached: decode 0), so a stage's
    mean over requests is its share of a typical request. On CUDA the device runs asynchronously:
    work launched in `preprocess` finishes, and is counted, where its result is read (`forward`).
    """

    def __init__(self) -> None:
        self.histogram = Histogram("clip_cider_stage_seconds", "Seconds a score request spends per stage",
                                   ["stage"], buckets=_STAGE_BUCKETS, registry=None)
        self._lock = threading.Lock()
        self.requests = 0
        self.totals = dict.fromkeys(STAGES, 0.0)

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self.histogram)

    @contextlib.contextmanager
    def request(self) -> Iterator[RequestStages]:
        stages = RequestStages()
        try:
            yield stages
        finally:
            with self._lock:
                self.requests += 1
                for stage, seconds in stages.seconds.items():
                    self.totals[stage] += seconds
            for stage, seconds in stages.seconds.items():
                self.histogram.labels(stage).observe(seconds)

    def snapshot(self) -> dict[str, float]:
        """Totals so far, plus `requests`: subtract two snapshots to time a stretch of work."""
        with self._lock:
            return {**self.totals, "requests": float(self.requests)}


class ClipCiderCollector(Collector):
    """Reads the embedder's plain counters at scrape time, so there is one source of truth."""

    def __init__(self, embedder: ClipEmbedder) -> None:
        self.embedder = embedder

    def collect(self) -> Iterator[Metric]:
        s = self.embedder.stats()
        yield CounterMetricFamily("clip_cider_image_cache_hits", "Image embeddings served from the cache",
                                  value=s["image_cache_hits"])
        yield CounterMetricFamily("clip_cider_image_cache_misses", "Image embeddings not in the cache",
                                  value=s["image_cache_misses"])
        yield GaugeMetricFamily("clip_cider_image_cache_entries", "Image embeddings held in the cache",
                                value=s["image_cache_size"])
        rows = CounterMetricFamily("clip_cider_embedded", "Inputs run through CLIP, by kind",
                                   labels=["kind"])
        rows.add_metric(["image"], s["images_embedded"])
        rows.add_metric(["text"], s["texts_embedded"])
        yield rows
        yield CounterMetricFamily("clip_cider_forward_passes", "CLIP forward passes on the device",
                                  value=s["forward_passes"])
