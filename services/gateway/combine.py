"""The gateway's core: score items with every configured service (coalesced) and combine the rewards.

It reaches the services by URL through `proto.client` only. It also fills the Scorer protocol, so
`services.common.create_app` serves it as /v1/score with the usual limits, probes and metrics;
/readyz follows the services' own /readyz, read in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, ValidationError

from proto.client import RewardRequestError, RewardServiceError
from proto.coalesce import Coalescer
from proto.gateway_config import GatewayConfig, GatewayConfigError, load_config
from proto.models import ErrorType, ImageData, ItemStatus, ScoreItem
from proto.rewards import RewardEntry
from services.common.errors import ServiceError
from services.common.scoring import Batch, Scored
from services.gateway.extract import Extractor

log = logging.getLogger("rewardstack.gateway")
VERSION = "0.1.0"


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Combined:
    """One item across every service: each reward (None: not scored), its parts, and why not."""

    rewards: dict[str, float | None]
    parts: dict[str, dict[str, float]]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def unscored(self) -> bool:
        return any(r is None for r in self.rewards.values())


async def _settled(future: asyncio.Future):
    """The future's result, or the exception it failed with (as gather's return_exceptions)."""
    try:
        return await future
    except Exception as exc:  # each service's failure is sorted out by _outcome
        return exc


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter("rewardstack_gateway_requests", "Gateway requests by route and status",
                                ["route", "status"], registry=registry)
        self.latency = Histogram("rewardstack_gateway_request_seconds", "Gateway request latency by route",
                                 ["route"], registry=registry)
        self.calls = Counter("rewardstack_gateway_service_calls",
                             "Calls into each service's coalescer by outcome", ["service", "outcome"],
                             registry=registry)
        self.call_latency = Histogram("rewardstack_gateway_service_seconds", "Batched call latency",
                                      ["service"], registry=registry)
        self.batch = Histogram("rewardstack_gateway_batch_items", "Items per coalesced call to a service",
                               ["service"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
                               registry=registry)
        self.fallbacks = Counter("rewardstack_gateway_fallbacks",
                                 "Items answered with the fallback value, by route and service",
                                 ["route", "service"], registry=registry)
        self._children: dict[tuple, Any] = {}

    def child(self, metric, *labels: str):
        """`metric.labels(*labels)`, looked up once: prometheus_client's lookup runs per call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


class _Service:
    def __init__(self, entry: RewardEntry, config: GatewayConfig, metrics: GatewayMetrics | None):
        self.entry = entry
        self.client = entry.client()
        self.coalescer = Coalescer(self.client, entry.params, window_s=config.coalesce_ms / 1000,
                                   max_batch=config.max_batch, on_batch=self._observe)
        self.metrics = metrics
        self.not_ready: str | None = "not checked yet"
        self.fitted = False  # coalescer fitted to the service's /v1/info limits

    def _observe(self, n: int) -> None:
        if self.metrics is not None:
            self.metrics.child(self.metrics.batch, self.entry.name).observe(n)


class Gateway:
    """Scorer-shaped combiner of several reward services."""

    name = "gateway"
    version = VERSION
    params_model = NoParams
    # /v1/score answers null (with the reason) for a service that is down, as the per-sample
    # routes answer the fallback, rather than 503 for every item while /readyz names the service.
    scores_when_degraded = True

    def __init__(self, config: GatewayConfig | None = None, config_path: Path | None = None):
        self.setup = config  # the GatewayConfig; `config()` is the Scorer protocol's method
        self.config_path = config_path
        self.entries: list[RewardEntry] = []
        self.score_range = (0.0, 0.0)
        self.extractor: Extractor | None = None
        self.metrics: GatewayMetrics | None = None
        self._services: dict[str, _Service] = {}
        self._poller: asyncio.Task | None = None

    def register_metrics(self, registry: CollectorRegistry) -> None:
        self.metrics = GatewayMetrics(registry)

    def load(self) -> None:
        """Read the config (from GATEWAY_CONFIG unless given); clients start on the serving loop."""
        if self.setup is None:
            if self.config_path is None:
                raise GatewayConfigError("GATEWAY_CONFIG is not set: point it at a rewards YAML")
            self.setup = load_config(self.config_path)
        self.entries = self.setup.rewards
        self.score_range = (sum(min(0.0, e.weight) for e in self.entries),
                            sum(max(0.0, e.weight) for e in self.entries))
        self.extractor = Extractor(self.setup.extract)

    def close(self) -> None:
        """Clients close on the serving loop (`stop`)."""

    def config(self) -> dict[str, Any]:
        if self.setup is None:
            return {}
        return {"rewards": [{"name": e.name, "urls": e.endpoints, "weight": e.weight, "params": e.params}
                            for e in self.entries],
                "fallback": self.setup.fallback, "coalesce_ms": self.setup.coalesce_ms}

    async def start(self) -> None:
        self._services = {e.name: _Service(e, self.setup, self.metrics) for e in self.entries}
        await self._poll_once()
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        for svc in self._services.values():
            await svc.client.aclose()

    def not_ready_reason(self) -> str | None:
        if not self._services:
            return "starting: clients not open yet"
        waiting = [f"{n} ({s.not_ready})" for n, s in self._services.items() if s.not_ready]
        return f"reward services not ready: {', '.join(waiting)}" if waiting else None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.setup.ready_poll_s)
            await self._poll_once()

    async def _poll_once(self) -> None:
        async def one(svc: _Service) -> None:
            svc.not_ready = await svc.client.ready()
            if svc.not_ready is None and not svc.fitted:
                try:  # the service's concurrency caps the coalescer's batches in flight
                    svc.coalescer.adopt((await svc.client.info()).limits)
                    svc.fitted = True
                except (RewardServiceError, RewardRequestError, ValidationError) as exc:
                    log.warning("reward %r: /v1/info unreadable, its limits not known yet: %s",
                                svc.entry.name, exc)

        await asyncio.gather(*(one(s) for s in self._services.values()))

    async def combine(self, items: list[ScoreItem], images: dict[str, ImageData]) -> list[Combined]:
        """Every item scored by every service (each call coalesced with other requests')."""
        if not items:
            return []
        started = time.perf_counter()
        services = list(self._services.values())
        # Futures awaited in turn, not a task (or a gather) per service: this runs once per
        # OpenRLHF/slime sample, and every service's batch is already queued before the first await.
        futures = [s.coalescer.submit(items, images) for s in services]
        outcomes = [await _settled(f) for f in futures]
        out = [Combined({}, {}) for _ in items]
        for svc, outcome in zip(services, outcomes, strict=True):
            name = svc.entry.name
            rewards, details, why = self._outcome(svc, outcome, len(items), started)
            for i, combined in enumerate(out):
                combined.rewards[name] = rewards[i]
                combined.parts[name] = details[i].parts if details else {}
                if rewards[i] is None:
                    combined.reasons[name] = why or (details[i].reason or details[i].status.value)
        return out

    def _outcome(self, svc: _Service, outcome, n: int, started: float):
        """(rewards, details, why not) of one service's answer, or the fallback/error for its failure."""
        name = svc.entry.name
        if not isinstance(outcome, BaseException):
            self._count(name, "ok", started)
            return *outcome, None
        if isinstance(outcome, RewardRequestError):
            self._count(name, "refused", started)
            status = ErrorType.validation if outcome.status in (413, 422) else ErrorType.upstream
            raise ServiceError(status, f"reward service {name!r} refused the gateway's request "
                                       f"({outcome.status} {outcome.error_type}): "
                                       f"{outcome.message}") from None
        if isinstance(outcome, (RewardServiceError, ValidationError, OSError)):
            self._count(name, "unavailable", started)
            if svc.entry.on_error == "abort":
                raise ServiceError(ErrorType.upstream,
                                   f"reward {name!r} (on_error: abort): {outcome}") from None
            log.warning("reward %r unavailable; %d items get the fallback: %s", name, n, outcome)
            return [None] * n, None, f"service unavailable: {outcome}"
        raise outcome

    def _count(self, name: str, outcome: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.child(self.metrics.calls, name, outcome).inc()
            self.metrics.child(self.metrics.call_latency, name).observe(time.perf_counter() - started)

    def total(self, combined: Combined, fallback: float | None) -> float | None:
        """The weighted sum; a missing reward counts as `fallback`, or makes the total None."""
        total = 0.0
        for e in self.entries:
            r = combined.rewards[e.name]
            if r is None:
                if fallback is None:
                    return None
                r = fallback
            total += e.weight * r
        return total

    def count_fallbacks(self, route: str, combined: list[Combined]) -> None:
        if self.metrics is None:
            return
        for c in combined:
            for name, r in c.rewards.items():
                if r is None:
                    self.metrics.child(self.metrics.fallbacks, route, name).inc()

    async def score(self, batch: Batch) -> list[Scored]:
        """/v1/score: the combined reward, or null naming the services that could not score."""
        combined = await self.combine(list(batch.items), dict(batch.images))
        out = []
        for c in combined:
            parts = {n: r for n, r in c.rewards.items() if r is not None}
            parts.update({f"{n}/{k}": v for n, p in c.parts.items() for k, v in p.items()})
            total = self.total(c, None)
            if total is None:
                reason = "; ".join(f"{n}: {why}" for n, why in c.reasons.items())
                out.append(Scored(None, ItemStatus.unscorable, f"not scored by {reason}", parts))
            else:
                out.append(Scored(total, ItemStatus.ok, None, parts))
        return out
