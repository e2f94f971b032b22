"""Other trainers' wire formats: OpenRLHF's `/get_reward` and slime's remote reward, on the gateway.

OpenRLHF (openrlhf/utils/agent.py, `_fetch_rewards_via_http`) posts `{"query", "prompts", "labels"}`,
one list entry per sample (one sample per request since v0.10; a shard that gets no samples is
sent empty lists), and reads `rewards`, `scores` and `extra_logs`, each a per-item list that may
not hold null. slime (slime/rollout/rm_hub/__init__.py, `remote_rm`) posts `{"prompt", "response",
"label"}` per sample and uses the JSON answer as the reward (a key of it with `--reward-key`).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from proto.labels import BadSample, item_from
from proto.models import ErrorType, ImageData, ScoreItem
from proto.sample_rewards import fallback_answer
from services.common.errors import ServiceError, error_payload, validation_message
from services.common.limits import check_json_size
from services.gateway.combine import Combined, Gateway
from services.gateway.settings import GatewaySettings

NOT_LOCATED = "response not found in query: it does not start with the prompt and no response marker matched"


class OpenRLHFRequest(BaseModel):
    # Extra keys are ignored: a newer OpenRLHF adding a field must not break training.
    model_config = ConfigDict(extra="ignore")

    query: list[str]
    prompts: list[Any] | None = None
    labels: list[Any] | None = None

    @model_validator(mode="after")
    def _aligned(self) -> OpenRLHFRequest:
        for name in ("prompts", "labels"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.query):
                raise ValueError(f"{name} has {len(values)} entries for {len(self.query)} queries")
        return self


class SlimeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: Any = None
    response: str
    label: Any = None


def install_routes(app: FastAPI, gateway: Gateway, settings: GatewaySettings) -> None:
    # Plain Starlette routes: these answer one request per sample, and FastAPI's dependency
    # resolution per request is a visible share of that cost; the bodies are validated here.
    async def openrlhf(request: Request) -> Response:
        return await _answer(app, gateway, settings, "openrlhf", request, _openrlhf)

    async def slime(request: Request) -> Response:
        return await _answer(app, gateway, settings, "slime", request, _slime)

    app.add_route("/openrlhf/get_reward", openrlhf, methods=["POST"])
    app.add_route("/slime/reward", slime, methods=["POST"])
    # Starlette tries routes in order: these two, hit once per sample, go before the docs routes.
    hot = app.router.routes[-2:]
    del app.router.routes[-2:]
    app.router.routes[:0] = hot


async def _answer(app: FastAPI, gateway: Gateway, settings: GatewaySettings, route: str,
                  request: Request, handler) -> Response:
    """The same admission and limits as /v1/score: not ready or draining and a full queue are 503
    with Retry-After, a body with far more JSON values than max_batch samples need is 413."""
    started = time.perf_counter()
    try:
        async with app.state.admitted():
            raw = await request.body()
            check_json_size(raw, settings)
            response: Response = JSONResponse(await handler(gateway, raw, settings.max_batch))
    except (ValidationError, BadSample) as exc:
        message = validation_message(exc.errors()) if isinstance(exc, ValidationError) else str(exc)
        response = _error(ErrorType.validation, message)
    except ServiceError as exc:
        response = _error(exc.type, exc.message, exc.retry_after)
    if gateway.metrics is not None:
        m = gateway.metrics
        m.child(m.requests, route, str(response.status_code)).inc()
        m.child(m.latency, route).observe(time.perf_counter() - started)
    return response


def _error(type_: ErrorType, message: str, retry_after: int | None = None) -> Response:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return Response(error_payload(type_, message), status_code=type_.status_code,
                    media_type="application/json", headers=headers)


async def _openrlhf(gateway: Gateway, raw: bytes, max_batch: int) -> dict[str, Any]:
    req = OpenRLHFRequest.model_validate_json(raw)
    if len(req.query) > max_batch:
        raise ServiceError(ErrorType.too_large, f"{len(req.query)} samples is over the gateway's "
                           f"max_batch of {max_batch} (GATEWAY_MAX_BATCH); send fewer per request")
    extractor = gateway.extractor
    items: list[ScoreItem | None] = []
    images: dict[str, ImageData] = {}
    for i, query in enumerate(req.query):
        prompt = req.prompts[i] if req.prompts is not None else None
        label = req.labels[i] if req.labels is not None else None
        completion = extractor.completion(query, prompt if isinstance(prompt, str) else None)
        item, table = item_from(completion or "", prompt, label)
        items.append(item if completion is not None else None)
        images.update(table)
    combined = await _combine_located(gateway, items, images)
    gateway.count_fallbacks("openrlhf", combined)
    fallback = gateway.setup.fallback
    rewards = [gateway.total(c, fallback) for c in combined]
    return {
        "rewards": rewards,
        "scores": [min(1.0, max(0.0, r)) for r in rewards],
        "extra_logs": _extra_logs(gateway, combined, fallback),
    }


async def _combine_located(gateway: Gateway, items: list[ScoreItem | None], images) -> list[Combined]:
    """Scores for the items whose response was found; the others are unscored without a call."""
    located = [it for it in items if it is not None]
    used = {it.image_id for it in located if it.image_id}
    scored = iter(await gateway.combine(located, {k: v for k, v in images.items() if k in used}))
    names = [e.name for e in gateway.entries]
    return [next(scored) if it is not None
            else Combined(dict.fromkeys(names), {n: {} for n in names}, dict.fromkeys(names, NOT_LOCATED))
            for it in items]


def _extra_logs(gateway: Gateway, combined: list[Combined], fallback: float) -> dict[str, list[float]]:
    """The same keys on every answer: one per reward, one per configured part, and `unscored`."""
    logs: dict[str, list[float]] = {}
    for e in gateway.entries:
        logs[e.name] = [fallback if c.rewards[e.name] is None else c.rewards[e.name] for c in combined]
        for part in gateway.setup.log_parts.get(e.name, []):
            logs[f"{e.name}/{part}"] = [c.parts[e.name].get(part, fallback) for c in combined]
    logs["unscored"] = [float(c.unscored) for c in combined]
    return logs


async def _slime(gateway: Gateway, raw: bytes, _max_batch: int) -> dict[str, Any]:
    req = SlimeRequest.model_validate_json(raw)
    item, images = item_from(gateway.extractor.strip_end(req.response), req.prompt, req.label)
    (combined,) = await gateway.combine([item], images)
    gateway.count_fallbacks("slime", [combined])
    weights = {e.name: e.weight for e in gateway.entries}
    answer: dict[str, Any] = fallback_answer(combined.rewards, weights, gateway.setup.fallback)
    answer["unscored"] = int(answer["unscored"])  # slime's reward dict has always carried an int here
    return answer
