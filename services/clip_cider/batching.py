"""Micro-batching: inputs of concurrent requests share forward passes on one device thread."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)

Forward = Callable[[str, torch.Tensor], torch.Tensor]


@dataclass
class _Job:
    kind: str
    inputs: torch.Tensor
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """One thread owns the device; callers hand it tensors and block on the result.

    The thread takes the first waiting job, then everything else already queued (and what arrives
    within `wait_s`), concatenates jobs of the same kind, and runs `forward(kind, rows)` in chunks
    of at most `max_rows`. Requests scored concurrently in the framework's worker threads thus
    share forward passes instead of queueing for the device one by one.

    Args:
        forward: maps (kind, stacked inputs) to one output row per input row.
        max_rows: most rows in one forward pass (bounds device memory).
        wait_s: how long to hold a batch open for late joiners; 0 takes only what is queued.
    """

    def __init__(self, forward: Forward, max_rows: int, wait_s: float = 0.0) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self._forward, self.max_rows, self.wait_s = forward, max_rows, wait_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.forward_passes = 0
        self.rows = Counter[str]()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clip-microbatch", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, kind: str, inputs: torch.Tensor) -> torch.Tensor:
        """Run `inputs` through the device thread; blocks until its rows come back."""
        if not self.running:
            raise RuntimeError("the micro-batcher is not running; call start() (the scorer's load())")
        job = _Job(kind, inputs)
        self._queue.put(job)
        return job.future.result()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            for kind in dict.fromkeys(j.kind for j in jobs):
                self._run_kind([j for j in jobs if j.kind == kind])
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, rows = [first], len(first.inputs)
        deadline = time.monotonic() + self.wait_s
        while rows < self.max_rows:
            try:
                job = self._queue.get(timeout=max(deadline - time.monotonic(), 0)) \
                    if self.wait_s > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            rows += len(job.inputs)
        return jobs, False

    def _run_kind(self, jobs: list[_Job]) -> None:
        try:
            stacked = torch.cat([j.inputs for j in jobs])
            outs = []
            for start in range(0, len(stacked), self.max_rows):
                outs.append(self._forward(jobs[0].kind, stacked[start : start + self.max_rows]))
                self.forward_passes += 1
            out = torch.cat(outs)
            self.rows[jobs[0].kind] += len(stacked)
        except Exception as exc:  # a failed pass fails its callers, never the device thread
            log.exception("forward pass over %d %s job(s) failed", len(jobs), jobs[0].kind)
            for j in jobs:
                j.future.set_exception(exc)
            return
        offset = 0
        for j in jobs:
            j.future.set_result(out[offset : offset + len(j.inputs)])
            offset += len(j.inputs)
