"""Readiness state, and draining on SIGTERM: /readyz turns 503 while requests in flight finish."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass

log = logging.getLogger("rewardstack.service")


@dataclass
class ServiceState:
    loaded: bool = False
    draining: bool = False

    def not_ready_reason(self) -> str | None:
        if self.draining:
            return "draining: the service is shutting down"
        if not self.loaded:
            return "loading: weights or workers are not ready yet"
        return None


def install_drain_on_sigterm(state: ServiceState) -> None:
    """Mark the service as draining, then let uvicorn's own handler shut down gracefully.

    uvicorn installs its handler before the lifespan starts; chaining to it keeps its behaviour
    (stop accepting, wait for requests in flight, run shutdown) and only adds the readiness flip.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def _drain(signum, frame):
        state.draining = True
        log.info("SIGTERM: draining, /readyz now 503; finishing requests in flight")
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, _drain)
