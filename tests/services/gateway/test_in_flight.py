"""The gateway sends a service no more batches at once than the service says it scores at once
(/v1/info limits.max_concurrency): one more would only wait in the service's queue, where the
samples arriving meanwhile can no longer join it."""

from __future__ import annotations

import asyncio

import httpx

from services.common.app import create_app
from services.regex_format.scorer import RegexFormatScorer
from services.regex_format.settings import RegexFormatSettings
from tests.helpers import serve_app
from tests.services.gateway import payloads as p
from tests.services.gateway.support import gateway


class Busy:
    """ASGI wrapper: each /v1/score takes 50 ms; counts the requests in flight, before the service's gate."""

    def __init__(self, app):
        self.app, self.now, self.most, self.requests = app, 0, 0, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/score":
            return await self.app(scope, receive, send)
        self.now += 1
        self.most, self.requests = max(self.most, self.now), self.requests + 1
        try:
            await asyncio.sleep(0.05)
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


def test_one_batch_at_a_time_to_a_service_that_scores_one_at_a_time():
    settings = RegexFormatSettings(max_concurrency=1)
    busy = Busy(create_app(RegexFormatScorer(settings), settings))
    with serve_app(busy) as url, gateway([{"name": "format", "url": url, "params": {"mode": "think_answer"}}],
                                         ) as (gw, _):
        async def waves():  # eight waves of eight samples, each after the gateway's window has closed
            async with httpx.AsyncClient(base_url=gw, timeout=30) as client:
                calls = []
                for _ in range(8):
                    calls += [asyncio.create_task(client.post("/slime/reward", json=p.slime_single()))
                              for _ in range(8)]
                    await asyncio.sleep(0.02)
                return await asyncio.gather(*calls)

        answers = asyncio.run(waves())
    assert all(a.json()["format"] == 1.0 for a in answers)
    assert busy.most == 1
