"""create_app: wire a scorer into the HTTP contract (score, info, probes, metrics) with limits and auth."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import time
import uuid
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from proto.models import (
    ErrorType,
    ItemDetail,
    ItemStatus,
    ScoreRequest,
    ScoreResponse,
    ServiceInfo,
    ServiceLimits,
)
from services.common.auth import BearerAuthMiddleware
from services.common.errors import ServiceError, error_payload, validation_message
from services.common.lifecycle import ServiceState, install_drain_on_sigterm
from services.common.limits import BodyLimitMiddleware, Gate, check_json_size
from services.common.metrics import ServiceMetrics
from services.common.openapi import ROUTE_DOCS, install_openapi
from services.common.scoring import (
    DEADLINE_GRACE_S,
    Batch,
    NotReadyError,
    ParamsError,
    Scored,
    Scorer,
    UpstreamError,
    score_capped,
    score_until,
)
from services.common.settings import ServiceSettings

log = logging.getLogger("rewardstack.service")


def create_app(scorer: Scorer, settings: ServiceSettings) -> FastAPI:
    """Build the FastAPI app serving `scorer` under `settings`' limits."""
    _configure_logging(settings.log_level)
    state = ServiceState()
    metrics = ServiceMetrics()
    if hasattr(scorer, "register_metrics"):
        scorer.register_metrics(metrics.registry)
    gate = Gate(settings.max_concurrency, settings.max_queue, settings.retry_after_s)
    # Read at scrape time: a value set when a request got its slot was stale while others waited.
    metrics.queued.set_function(lambda: gate.waiting)
    thread_limiter = anyio.CapacityLimiter(settings.max_concurrency)
    env_prefix = settings.model_config.get("env_prefix", "")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        install_drain_on_sigterm(state, grace_s=settings.drain_grace_s,
                                 timeout_s=settings.drain_timeout_s, close_queue=gate.close)
        log.info("%s %s: loading", scorer.name, scorer.version)
        await anyio.to_thread.run_sync(scorer.load)
        for warning in _warnings(scorer):
            log.warning("%s: %s", scorer.name, warning)
        state.loaded, state.draining = True, False
        log.info("%s ready (max_batch=%d)", scorer.name, settings.max_batch)
        try:
            yield
        finally:
            state.draining = True
            await anyio.to_thread.run_sync(scorer.close)

    app = FastAPI(title=f"rewardstack {scorer.name}", version=scorer.version, lifespan=lifespan)

    @asynccontextmanager
    async def admitted():
        """/v1/score's admission for a service's other scoring routes (the gateway's per-sample
        ones): loaded and not draining, then a place in the same gate, or a typed 503. The scorer's
        own readiness is the route's to weigh: the gateway answers with fallbacks for a dead service."""
        if reason := state.not_ready_reason():
            raise ServiceError(ErrorType.not_ready, reason, retry_after=5)
        async with gate.slot():
            yield

    app.state.admitted = admitted
    app.state.service = state
    app.state.metrics = metrics
    app.state.scorer = scorer

    @app.post("/v1/score", **ROUTE_DOCS["score"])
    async def score(request: Request) -> Response:
        started = time.perf_counter()
        arrived = time.monotonic()  # deadline_ms counts from here, queueing included
        request_id = uuid.uuid4().hex
        try:
            _check_ready(state, scorer)
            async with gate.slot():
                with metrics.in_flight.track_inprogress():
                    response = await _score(request, arrived, scorer, settings, thread_limiter,
                                            metrics)
            status = 200
            body = response.model_dump_json().encode()
            headers = {"x-request-id": request_id}
        except ServiceError as exc:
            status, body = exc.type.status_code, error_payload(exc.type, exc.message, request_id)
            headers = {"x-request-id": request_id}
            if exc.retry_after is not None:
                headers["retry-after"] = str(exc.retry_after)
        except Exception:
            log.exception("unexpected error scoring request %s", request_id)
            status = 500
            body = error_payload(
                ErrorType.internal, f"internal error; quote request id {request_id} when reporting it",
                request_id,
            )
            headers = {"x-request-id": request_id}
        metrics.requests.labels(str(status)).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    @app.get("/v1/info", **ROUTE_DOCS["info"])
    async def info() -> ServiceInfo:
        return _service_info(scorer, settings)

    @app.get("/healthz", **ROUTE_DOCS["healthz"])
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", **ROUTE_DOCS["readyz"])
    async def readyz() -> Response:
        reason = _not_ready_reason(state, scorer)
        if reason:
            return Response(error_payload(ErrorType.not_ready, reason), status_code=503,
                            media_type="application/json")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", **ROUTE_DOCS["metrics"])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _install_error_handlers(app)
    install_openapi(app, scorer.params_model, auth=settings.auth_token is not None)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.auth_token is not None:
        app.add_middleware(
            BearerAuthMiddleware, token=settings.auth_token.get_secret_value(),
            env_name=f"{env_prefix}AUTH_TOKEN",
        )
    return app


async def _score(request, arrived, scorer, settings, limiter, metrics) -> ScoreResponse:
    started = time.perf_counter()
    raw = await request.body()
    check_json_size(raw, settings)
    try:
        req = ScoreRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise ServiceError(ErrorType.validation, validation_message(exc.errors())) from None
    n = len(req.items)
    if n > settings.max_batch:
        raise ServiceError(
            ErrorType.too_large,
            f"{n} items is over this service's max_batch of {settings.max_batch}; split the request "
            "(RewardClient does this by itself)",
        )
    try:
        params = scorer.params_model.model_validate(req.params)
    except ValidationError as exc:
        raise ServiceError(ErrorType.validation, "params." + validation_message(exc.errors())) from None
    metrics.batch_size.observe(n)
    cap_name = settings.model_config.get("env_prefix", "") + "MAX_COMPLETION_CHARS"
    deadline = None if req.deadline_ms is None else arrived + req.deadline_ms / 1000
    results = await score_until(deadline, n, lambda: score_capped(
        Batch(req.items, req.images, params, deadline), settings.max_completion_chars, cap_name,
        lambda batch: _run_scorer(scorer, batch, limiter),
    ))
    if len(results) != n:
        raise RuntimeError(f"{scorer.name} returned {len(results)} results for {n} items")
    results = [_finite(r) for r in results]
    metrics.observe_items(results)
    return ScoreResponse(
        rewards=[r.reward for r in results],
        details=[ItemDetail(status=r.status, reason=r.reason, parts=r.parts) for r in results],
        service=scorer.name,
        version=scorer.version,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )


async def _run_scorer(scorer: Scorer, batch: Batch, limiter) -> list[Scored]:
    try:
        if inspect.iscoroutinefunction(scorer.score):
            return await scorer.score(batch)
        # Scoring is CPU-bound: a worker thread keeps the loop free for probes and admission.
        # Past a deadline the answer leaves without the thread, which stops at its next
        # checkpoint (services.common.scoring).
        return await anyio.to_thread.run_sync(scorer.score, batch, limiter=limiter)
    except ParamsError as exc:
        raise ServiceError(ErrorType.validation, f"params: {exc}") from None
    except UpstreamError as exc:
        raise ServiceError(ErrorType.upstream, str(exc)) from None
    except NotReadyError as exc:
        raise ServiceError(ErrorType.not_ready, str(exc), retry_after=5) from None


def _finite(result: Scored) -> Scored:
    """The contract's last line: a reward is a finite number, or null with a status saying why."""
    parts = {k: v for k, v in result.parts.items() if math.isfinite(v)}
    if result.reward is not None and not math.isfinite(result.reward):
        return Scored.error(f"non_finite: the reward computed to {result.reward}; check the weights",
                            **parts)
    if result.reward is None and result.status == ItemStatus.ok:
        return Scored.error("internal error: no reward but status ok", **parts)
    if len(parts) != len(result.parts):
        return Scored(result.reward, result.status, result.reason, parts)
    return result


def _check_ready(state: ServiceState, scorer: Scorer) -> None:
    # A scorer that answers null for what it cannot reach (the gateway, for a reward service that
    # is down) keeps scoring while its /readyz says why it is not ready: only loading and draining
    # refuse its requests.
    degraded_ok = getattr(scorer, "scores_when_degraded", False)
    reason = state.not_ready_reason() if degraded_ok else _not_ready_reason(state, scorer)
    if reason:
        raise ServiceError(ErrorType.not_ready, reason, retry_after=5)


def _not_ready_reason(state: ServiceState, scorer: Scorer) -> str | None:
    """Why the service cannot score now (loading, draining, or the scorer's own say), or None."""
    if reason := state.not_ready_reason():
        return reason
    return scorer.not_ready_reason() if hasattr(scorer, "not_ready_reason") else None


def _warnings(scorer: Scorer) -> list[str]:
    return list(scorer.warnings()) if hasattr(scorer, "warnings") else []


def _service_info(scorer: Scorer, settings: ServiceSettings) -> ServiceInfo:
    config = scorer.config()
    blob = json.dumps([scorer.name, scorer.version, config], sort_keys=True, default=str)
    return ServiceInfo(
        name=scorer.name,
        version=scorer.version,
        score_range=scorer.score_range,
        params_schema=scorer.params_model.model_json_schema(),
        limits=ServiceLimits(
            max_batch=settings.max_batch,
            max_body_bytes=settings.max_body_bytes,
            max_concurrency=settings.max_concurrency,
            max_queue=settings.max_queue,
            max_completion_chars=settings.max_completion_chars,
            deadline_grace_ms=DEADLINE_GRACE_S * 1000,
        ),
        config=json.loads(json.dumps(config, default=str)),
        fingerprint=hashlib.sha256(blob.encode()).hexdigest()[:16],
        warnings=_warnings(scorer),
    )


def _install_error_handlers(app: FastAPI) -> None:
    def typed(type_: ErrorType, message: str) -> Response:
        return Response(error_payload(type_, message), status_code=type_.status_code,
                        media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def _validation(_req, exc: RequestValidationError):
        return typed(ErrorType.validation, validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return typed(ErrorType.not_found, "no such route; see GET /v1/info and POST /v1/score")
        if exc.status_code == 405:
            resp = typed(ErrorType.method_not_allowed, f"method not allowed on this route: {exc.detail}")
            resp.headers.update(exc.headers or {})
            return resp
        return typed(ErrorType.internal, str(exc.detail))


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("rewardstack").setLevel(level.upper())
    # httpx logs every request at INFO: noise in a service, and in a trainer using inproc://.
    logging.getLogger("httpx").setLevel(logging.WARNING)
