"""After a refused key the judge re-probes its upstream with bounded back-off and becomes ready by itself."""

import asyncio

import httpx

from services.llm_judge import reprobe
from services.llm_judge.reprobe import KeyProber
from tests.helpers import wait_until
from tests.services.llm_judge.fake_openai import chat, http_error
from tests.services.llm_judge.support import GOOD
from tests.services.llm_judge.test_service import judge_service

ITEMS = [{"completion": GOOD, "reference": "yes", "prompt": "Are there granulomas?"}]


def _wait_ready(url: str) -> httpx.Response:
    wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, "/readyz turns 200")
    return httpx.get(f"{url}/readyz")


def test_401_then_the_key_works_again_makes_the_service_ready_by_itself(fake):
    # The scored call and every probe are refused until the key works again (below), so what
    # /readyz says meanwhile does not depend on how fast the probes come.
    fake.script(http_error(401, "No auth credentials found"))
    fake.default = http_error(401)
    with judge_service(fake, reprobe_min_s=0.05, reprobe_max_s=0.2) as url:
        refused = httpx.post(f"{url}/v1/score", json={"items": ITEMS})
        wait_until(lambda: fake.calls >= 3, "two re-probes refused")
        meanwhile = httpx.get(f"{url}/readyz")
        fake.default = chat("1")
        ready = _wait_ready(url)
        after = httpx.post(f"{url}/v1/score", json={"items": ITEMS})
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "not_ready"
    assert meanwhile.status_code == 503
    why = meanwhile.json()["error"]["message"]
    assert "LLM_JUDGE_API_KEY" in why and "re-probe" in why
    assert ready.status_code == 200
    assert after.status_code == 200 and after.json()["rewards"] == [1.0]
    probes = [seen.body for seen in fake.requests[1:-1]]
    assert all(p["max_tokens"] == 1 for p in probes), "a probe must cost one output token at most"


def test_a_key_still_refused_keeps_the_service_not_ready(fake):
    fake.default = http_error(403, "key revoked")
    with judge_service(fake, reprobe_min_s=0.05, reprobe_max_s=0.1) as url:
        httpx.post(f"{url}/v1/score", json={"items": ITEMS})
        wait_until(lambda: fake.calls >= 4, "the upstream re-probed")
        ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 503 and "re-probed" in ready.json()["error"]["message"]


def test_backoff_doubles_up_to_its_cap_and_stops_once_accepted(monkeypatch):
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay):
        waits.append(delay)
        await real_sleep(0)

    answers = iter([(False, "HTTP 401")] * 5 + [(True, "HTTP 200")])

    async def probe():
        return next(answers)

    async def go():
        monkeypatch.setattr(reprobe.asyncio, "sleep", fake_sleep)
        prober = KeyProber(probe, min_s=1.0, max_s=8.0)
        prober.refuse("refused")
        assert "refused" in prober.not_ready_reason()
        await prober._task
        return prober

    prober = asyncio.run(go())
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert prober.refused is None and prober.not_ready_reason() is None and prober.attempts == 6
