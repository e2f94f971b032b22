"""Prometheus view of the CLIP embedder's counters (cache traffic, rows embedded, forward passes)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.clip_cider.clip import ClipEmbedder


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
