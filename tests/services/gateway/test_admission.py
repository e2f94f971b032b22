"""The per-sample routes (OpenRLHF, slime) obey /v1/score's admission: draining, a full queue and
oversized bodies are typed refusals, not work the gateway takes on."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from tests.helpers import await_until, serve_app
from tests.services.gateway import payloads as p
from tests.services.gateway.support import rewards, services

ROUTES = [("/openrlhf/get_reward", p.openrlhf_single), ("/slime/reward", p.slime_single)]


@pytest.fixture(scope="module")
def svc():
    with services() as s:
        yield s


@contextlib.contextmanager
def gateway_app(entries, settings: dict, **config):
    from proto.gateway_config import GatewayConfig
    from services.gateway.app import create_gateway_app
    from services.gateway.settings import GatewaySettings

    app = create_gateway_app(GatewayConfig(rewards=entries, **config), GatewaySettings(**settings))
    with serve_app(app) as url:
        yield url, app


@pytest.mark.parametrize(("path", "body"), ROUTES)
def test_a_draining_gateway_refuses_new_samples_with_retry_after(svc, path, body):
    with gateway_app(rewards(svc), {}) as (url, app):
        assert httpx.post(url + path, json=body(), timeout=30).status_code == 200
        app.state.service.draining = True
        resp = httpx.post(url + path, json=body(), timeout=30)
    assert resp.status_code == 503 and resp.headers["retry-after"]
    assert resp.json()["error"]["type"] == "not_ready"


def test_samples_past_the_queue_are_told_to_come_back(svc):
    # One place, no queue, and a long coalescing window that keeps the first sample in its place.
    with gateway_app(rewards(svc), {"max_concurrency": 1, "max_queue": 0}, coalesce_ms=1000) as (url, app):
        coalescers = [s.coalescer for s in app.state.gateway._services.values()]

        async def first_is_held():
            return any(c._pending for c in coalescers)

        async def both():
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                first = asyncio.create_task(client.post("/slime/reward", json=p.slime_single()))
                await await_until(first_is_held, "the first sample waits in a coalescing window")
                second = await client.post("/openrlhf/get_reward", json=p.openrlhf_single())
                return await first, second

        first, second = asyncio.run(both())
    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["retry-after"]
    assert second.json()["error"]["type"] == "overloaded"


def test_more_samples_than_max_batch_in_one_openrlhf_call_is_a_413(svc):
    one = p.openrlhf_single()
    body = {key: value * 3 for key, value in one.items()}
    with gateway_app(rewards(svc), {"max_batch": 2}) as (url, _):
        resp = httpx.post(url + "/openrlhf/get_reward", json=body, timeout=30)
        ok = httpx.post(url + "/openrlhf/get_reward", json=one, timeout=30)
    assert resp.status_code == 413 and "GATEWAY_MAX_BATCH" in resp.json()["error"]["message"]
    assert ok.status_code == 200


def test_a_body_of_many_tiny_values_is_refused_before_parsing(svc):
    flood = {"query": [p.openrlhf_single()["query"][0]], "prompts": [[0] * 200_000], "labels": ["2"]}
    with gateway_app(rewards(svc), {"max_batch": 4}) as (url, _):
        resp = httpx.post(url + "/openrlhf/get_reward", json=flood, timeout=30)
    assert resp.status_code == 413 and "JSON values" in resp.json()["error"]["message"]
