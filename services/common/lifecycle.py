"""Readiness state, and draining on SIGTERM that load balancers can see before the listener closes.

On SIGTERM: /readyz turns 503 and new score requests get 503 + Retry-After at once, while the
listener stays open for `drain_grace_s` so Kubernetes endpoints and compose health checks have
time to notice and stop routing. Then uvicorn's own graceful shutdown runs (stop accepting, finish
the requests in flight, run the lifespan shutdown). Requests still queued `drain_timeout_s` after
the signal are answered 503 + Retry-After, so the whole shutdown is bounded by about
max(drain_grace_s, drain_timeout_s) plus one request's scoring time, which each service bounds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("rewardstack.service")


@dataclass
class ServiceState:
    loaded: bool = False
    draining: bool = False

    def not_ready_reason(self) -> str | None:
        if self.draining:
            return "draining: the service is shutting down; send requests to another replica"
        if not self.loaded:
            return "loading: weights or workers are not ready yet"
        return None


def install_drain_on_sigterm(
    state: ServiceState, *, grace_s: float, timeout_s: float, close_queue: Callable[[], None],
) -> None:
    """Replace uvicorn's SIGTERM handler by one that drains first, then chains to it.

    uvicorn installs its handler before the lifespan starts, so this runs after it and keeps its
    behaviour, only delayed by `grace_s`. A second SIGTERM skips the grace.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def _chain(signum: int) -> None:
        if callable(previous):
            previous(signum, None)

    def _start_drain() -> None:
        loop.call_later(grace_s, _chain, signal.SIGTERM)
        loop.call_later(timeout_s, close_queue)

    def _drain(signum, frame):
        if state.draining:
            log.info("second SIGTERM: shutting down now")
            _chain(signum)
            return
        state.draining = True
        log.info("SIGTERM: draining, /readyz now 503; listener open %.1f s more, queue cut at %.1f s",
                 grace_s, timeout_s)
        # A signal handler may interrupt the loop anywhere: hand the timers to it thread-safely.
        loop.call_soon_threadsafe(_start_drain)

    signal.signal(signal.SIGTERM, _drain)
