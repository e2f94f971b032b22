"""A pool of killable worker processes that runs one task per worker under a hard time limit.

math-verify's own timeouts use SIGALRM, which only works on a process's main thread and cannot
stop C code, so the limit is enforced from outside: a task that overruns gets its worker killed
(SIGKILL) and a replacement started in the background. A request's deadline is enforced the same
way: a task still running when it passes is killed with its worker, and one still waiting for a
worker is never sent, so the next request finds every worker free. Callers block in `run`, one per worker at
a time (the scorer calls it from a thread pool the size of this pool); idle workers wait in a
thread-safe queue, so concurrent requests share workers correctly.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from services.math_equiv.worker import Reply, Task, serve

log = logging.getLogger(__name__)

TIMEOUT: Reply = ("timeout", "time limit exceeded")
CRASHED: Reply = ("error", "worker crashed")
NO_WORKER: Reply = ("error", "no worker available")
DEADLINE: Reply = ("deadline", "the request's deadline passed")


@dataclass(eq=False)
class _Worker:
    proc: BaseProcess
    conn: Connection


class WorkerPool:
    """`size` worker processes; `run(task)` returns the worker's reply, TIMEOUT or an error reply."""

    def __init__(self, size: int, time_limit_s: float, *, start_method: str = "forkserver",
                 startup_timeout_s: float = 60.0, memory_mb: int | None = None):
        self.size = size
        self.time_limit_s = time_limit_s
        self._startup_timeout_s = startup_timeout_s
        self._memory_mb = memory_mb
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            # Import and warm math-verify once in the fork server; forked workers then start in
            # milliseconds, which is what replacing a killed worker costs.
            self._ctx.set_forkserver_preload(["services.math_equiv.worker", "math_verify",
                                              "services.math_equiv.warm"])
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self._starting = 0
        self._closed = False
        # timeouts, deadline_kills, crashes, restarts, start_failures
        self.events: Counter[str] = Counter()

    def start(self) -> None:
        """Start every worker and wait until each has imported math-verify and warmed up."""
        with self._lock:
            self._starting += self.size
        threads = [threading.Thread(target=self._add_worker) for _ in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not self._live:
            raise RuntimeError(
                f"no math worker started within {self._startup_timeout_s}s; see the log above"
            )

    @property
    def alive(self) -> int:
        """Workers started and not known dead (busy or idle)."""
        with self._lock:
            return len(self._live)

    @property
    def idle(self) -> int:
        """Workers waiting for a task (alive minus busy)."""
        return self._idle.qsize()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._live if w.proc.pid is not None]

    def run(self, task: Task, deadline: float | None = None) -> Reply:
        """Run `task` on an idle worker within the time limit and before `deadline` (a
        `time.monotonic()` instant, or None); blocks the calling thread."""
        self._top_up()
        try:
            worker = self._idle.get(timeout=_until(self._startup_timeout_s, deadline))
        except queue.Empty:
            return DEADLINE if _passed(deadline) else NO_WORKER
        if _passed(deadline):
            self._idle.put(worker)
            return DEADLINE
        limit = _until(self.time_limit_s, deadline)
        try:
            worker.conn.send(task)
            if not worker.conn.poll(limit):
                cut_short = limit < self.time_limit_s  # the deadline, not the item's limit, ran out
                self._replace(worker, "deadline_kills" if cut_short else "timeouts")
                return DEADLINE if cut_short else TIMEOUT
            reply = worker.conn.recv()
        except (EOFError, OSError):
            self._replace(worker, "crashes")
            return CRASHED
        self._idle.put(worker)
        return reply

    def close(self) -> None:
        """Stop every worker; tasks in flight come back as crashes."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
        for w in workers:
            _kill(w)

    def _top_up(self) -> None:
        # A replacement that failed to start leaves a gap; each run gives it another try.
        with self._lock:
            missing = self.size - len(self._live) - self._starting
            if self._closed or missing <= 0:
                return
            self._starting += missing
        for _ in range(missing):
            threading.Thread(target=self._add_worker, daemon=True).start()

    def _replace(self, worker: _Worker, why: str) -> None:
        with self._lock:
            self._live.discard(worker)
            self.events[why] += 1
            if self._closed:
                return
            self._starting += 1
        _kill(worker)
        log.warning("math worker %s: %s; starting a replacement", worker.proc.pid, why)
        threading.Thread(target=self._add_worker, args=("restarts",), daemon=True).start()

    def _add_worker(self, event: str | None = None) -> None:
        worker = None
        try:
            worker = self._spawn()
        except Exception:
            log.exception("a math worker failed to start")
        with self._lock:
            self._starting -= 1
            if worker is None:
                self.events["start_failures"] += 1
                return
            if self._closed:
                _kill(worker)
                return
            self._live.add(worker)
            if event:
                self.events[event] += 1
        self._idle.put(worker)

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=serve, args=(child, self._memory_mb), name="math-equiv-worker", daemon=True
        )
        proc.start()
        child.close()
        worker = _Worker(proc, parent)
        started = time.monotonic()
        try:
            if not parent.poll(self._startup_timeout_s):
                raise TimeoutError(f"not ready after {self._startup_timeout_s}s")
            hello = parent.recv()
        except BaseException:
            _kill(worker)
            raise
        if hello[0] != "ready":
            _kill(worker)
            raise RuntimeError(f"unexpected first message from a math worker: {hello!r}")
        log.debug("math worker %s ready in %.2fs", proc.pid, time.monotonic() - started)
        return worker


def _until(limit_s: float, deadline: float | None) -> float:
    """`limit_s`, or less when `deadline` comes sooner."""
    return limit_s if deadline is None else max(0.0, min(limit_s, deadline - time.monotonic()))


def _passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _kill(worker: _Worker) -> None:
    if worker.proc.is_alive():
        worker.proc.kill()
    worker.proc.join(timeout=5)
    worker.conn.close()
