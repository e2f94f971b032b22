"""A dead reward service behind the gateway: every route keeps answering, each in its own way.

/readyz names the service; /v1/score answers null with the reason (what the verl adapter reads
through the gateway), not 503 for every item; the per-sample routes answer the fallback, flagged.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers import free_port
from tests.services.gateway import payloads as p
from tests.services.gateway.support import gateway, rewards, services

HANG_GUARD_S = 30  # far beyond unreachable_s: only a stall reaches it


@pytest.fixture(scope="module")
def gw():
    dead = f"http://127.0.0.1:{free_port()}"
    with services() as svc, gateway(rewards(svc, answer={"url": dead, "unreachable_s": 0.3}),
                                    fallback=-1.0) as (url, _):
        yield url


def test_v1_score_answers_null_with_the_reason_while_readyz_names_the_service(gw):
    ready = httpx.get(gw + "/readyz", timeout=30)
    out = httpx.post(gw + "/v1/score", json={"items": [{"completion": p.RESPONSE, "reference": "2"}]},
                     timeout=30)
    assert ready.status_code == 503 and "answer" in ready.json()["error"]["message"]
    assert out.status_code == 200
    body = out.json()
    assert body["rewards"] == [None]
    assert body["details"][0]["status"] == "unscorable"
    assert "answer: service unavailable" in body["details"][0]["reason"]
    assert body["details"][0]["parts"]["format"] == 1.0


def test_sixteen_concurrent_samples_all_get_the_fallback(gw):
    async def burst():
        async with httpx.AsyncClient(base_url=gw, timeout=HANG_GUARD_S) as client:
            calls = [client.post("/openrlhf/get_reward", json=p.openrlhf_single()) for _ in range(16)]
            return await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD_S)

    answers = [r.json() for r in asyncio.run(burst())]
    assert all(a["rewards"] == [0.5 - 1.0] and a["extra_logs"]["unscored"] == [1.0] for a in answers)
