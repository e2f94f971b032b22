"""bench_degenerate with the kinds interleaved: each /healthz probe counts for the batch it ran beside."""

from __future__ import annotations

from bench.bench_degenerate import during


def test_each_probe_counts_for_the_latest_batch_sent_before_it() -> None:
    spans = [("normal", 1.0, 1.1), ("degenerate", 1.2, 1.5), ("degenerate", 1.6, 1.9), ("normal", 2.0, 2.1)]
    probes = [(0.5, 0.001),   # before the first batch: dropped
              (1.05, 0.002),  # inside the first normal batch
              (1.15, 0.003),  # after it, before the next batch is sent: still the normal phase
              (1.3, 0.040), (1.7, 0.050),
              (2.05, 0.004),
              (2.5, 0.009)]   # after the last batch: dropped
    assert during(spans, probes) == {"normal": [0.002, 0.003, 0.004], "degenerate": [0.040, 0.050]}
