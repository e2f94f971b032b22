"""math_equiv over real HTTP (uvicorn on 127.0.0.1) through RewardClient, and through inproc://."""

import asyncio

import httpx
import pytest

from proto.client import RewardRequestError
from proto.models import ItemStatus
from services.common.app import create_app
from services.math_equiv.scorer import MathEquivScorer
from services.math_equiv.settings import MathEquivSettings
from tests.helpers import await_until, serve_app, wait_until, with_client

LIMIT_S = 2.0


@pytest.fixture(scope="module")
def served():
    settings = MathEquivSettings(workers=2, time_limit_s=LIMIT_S, max_batch=100)
    scorer = MathEquivScorer(settings)
    with serve_app(create_app(scorer, settings)) as base:
        yield base, scorer


@pytest.fixture(scope="module")
def url(served):
    return served[0]


def run(url, coro_fn):
    return with_client(url, coro_fn, deadline_s=60)


def case(i: int) -> tuple[dict, float | None]:
    """One item of eight kinds, and the reward it must get."""
    kind = i % 8
    if kind == 0:
        return {"completion": f"<answer>\\frac{{{2 * i}}}{{2}}</answer>", "reference": str(i)}, 1.0
    if kind == 1:
        return {"completion": f"<answer>{i + 1}</answer>", "reference": str(i)}, 0.0
    if kind == 2:
        return {"completion": f"so it is $\\boxed{{{i}}}$", "reference": str(i)}, 1.0
    if kind == 3:
        return {"completion": f"it is {i}", "reference": str(i)}, 0.0
    if kind == 4:
        mc = {"choices": [str(i), str(i + 1), str(i + 2)], "meta": {"question_type": "multi_choice"}}
        return {"completion": "<answer>(B)</answer>", "reference": str(i + 1), **mc}, 1.0
    if kind == 5:
        meta = {"answer_type": "float", "precision": 1.0}
        return {"completion": f"<answer>{i}.04</answer>", "reference": f"{i}.0", "meta": meta}, 1.0
    if kind == 6:
        return {"completion": f"<answer>{i}</answer>", "reference": "\\frac{"}, None
    return {"completion": f"<answer>{i * 1000:,}</answer>", "reference": str(i * 1000)}, 1.0


def test_batch_of_256_in_order(url):
    items, expected = zip(*(case(i) for i in range(256)), strict=True)
    resp = run(url, lambda c: c.score(list(items)))  # 3 chunks of max_batch 100
    assert resp.service == "math_equiv"
    assert resp.rewards == list(expected)
    statuses = [d.status for d in resp.details]
    assert statuses == [ItemStatus.unscorable if e is None else ItemStatus.ok for e in expected]


def test_timeout_over_http_leaves_other_requests_answered(served):
    url, scorer = served
    wait_until(lambda: scorer.pool.alive == scorer.pool.size == scorer.pool.idle, "both workers idle")

    async def scenario(client):
        hanging = asyncio.create_task(client.score([
            {"completion": "<answer>9^{9^{9^{9}}}</answer>", "reference": "1"},
        ]))
        await await_until(lambda: scorer.pool.idle == 1, "the hanging item holds one worker")
        quick = await client.score([{"completion": "<answer>\\sqrt{16}</answer>", "reference": "4"}])
        return quick, hanging.done(), await hanging

    quick, hanging_done, hung = run(url, scenario)
    assert quick.rewards == [1.0]
    assert not hanging_done  # answered on the free worker while the other one hung
    assert hung.rewards == [None]
    assert hung.details[0].status == ItemStatus.timeout


def test_answer_tag_param_and_unknown_param(url):
    item = {"completion": "<SOLUTION>0.5</SOLUTION>", "reference": "\\frac{1}{2}"}
    resp = run(url, lambda c: c.score([item], params={"answer_tag": "SOLUTION"}))
    assert resp.rewards == [1.0]
    with pytest.raises(RewardRequestError) as err:
        run(url, lambda c: c.score([item], params={"tag": "SOLUTION"}))
    assert err.value.status == 422
    assert "tag" in err.value.message


def test_info_and_metrics(url):
    info = httpx.get(f"{url}/v1/info").json()
    assert info["name"] == "math_equiv"
    assert info["config"]["math_verify_version"] == "0.9.0"
    assert (info["config"]["time_limit_s"], info["config"]["workers"]) == (LIMIT_S, 2)
    assert "answer_tag" in info["params_schema"]["properties"]
    metrics = httpx.get(f"{url}/metrics").text
    assert "math_equiv_workers_alive 2.0" in metrics
    assert 'math_equiv_worker_events_total{event="timeouts"}' in metrics
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_inproc_serves_main_app(monkeypatch):
    monkeypatch.setenv("MATH_EQUIV_WORKERS", "1")
    items = [{"completion": "<answer>\\dfrac{3}{4}</answer>", "reference": "0.75"},
             {"completion": "<answer>1</answer>", "reference": "2"}]
    resp = run("inproc://math_equiv", lambda c: c.score(items))
    assert resp.rewards == [1.0, 0.0]
