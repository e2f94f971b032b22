"""RewardClient against real services: chunking, retries, deadline, failover, inproc parity."""

import asyncio
import time

import pytest
from PIL import Image

import proto.client
from proto.client import RewardClient, RewardRequestError, RewardServiceError
from proto.images import collect_images
from proto.models import ScoreItem
from tests.helpers import free_port, serve_app
from tests.services.common.toy import make_app


class FlakyFront:
    """Answers the first `failures` score calls with `status` before letting requests through."""

    def __init__(self, app, failures: int, status: int = 503, retry_after: str | None = "0"):
        self.app, self.left, self.status, self.retry_after = app, failures, status, retry_after
        self.refused = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/v1/score" and self.left > 0:
            self.left -= 1
            self.refused += 1
            headers = [(b"content-type", b"application/json")]
            if self.retry_after is not None:
                headers.append((b"retry-after", self.retry_after.encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"error": {"type": "overloaded", "message": "busy"}}'})
            return
        await self.app(scope, receive, send)


def run(coro):
    return asyncio.run(coro)


class _RecordedPauses:
    """Stands in for proto.client's `asyncio`: each sleep the client asks for is recorded, not slept."""

    def __init__(self):
        self.delays: list[float] = []

    def __getattr__(self, name):
        return getattr(asyncio, name)

    async def sleep(self, delay):
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def pauses(monkeypatch):
    recorded = _RecordedPauses()
    monkeypatch.setattr(proto.client, "asyncio", recorded)
    return recorded.delays


async def score_with(url, items, **kw):
    async with RewardClient(url, **kw) as client:
        return await client.score(items)


def test_chunks_keep_order_and_each_chunk_respects_max_batch():
    app = make_app(max_batch=8)
    items = [ScoreItem(completion="len:" + "x" * i) for i in range(50)]
    with serve_app(app) as url:
        resp = run(score_with(url, items))
        metrics = __import__("httpx").get(f"{url}/metrics").text
    assert resp.rewards == [float(i) for i in range(50)]
    assert len(resp.details) == 50
    # 50 items at max_batch 8 are 7 requests, none over 8 items.
    assert 'rewardstack_requests_total{status="200"} 7.0' in metrics
    assert 'rewardstack_batch_size_bucket{le="8.0"} 7.0' in metrics


def test_retries_503_then_succeeds():
    front = FlakyFront(make_app(), failures=2)
    with serve_app(front) as url:
        resp = run(score_with(url, [{"completion": "len:abcd"}], backoff_s=0.01))
    assert resp.rewards == [4.0]
    assert front.refused == 2


def test_retry_after_is_honoured(pauses):
    front = FlakyFront(make_app(), failures=1, retry_after="7")
    with serve_app(front) as url:
        resp = run(score_with(url, [{"completion": "len:ab"}], backoff_s=0.01))
    assert resp.rewards == [2.0] and front.refused == 1
    assert pauses == [7.0]  # the service's Retry-After, not the 0.01 s backoff


def test_retry_after_is_capped(pauses):
    front = FlakyFront(make_app(), failures=1, retry_after="3600")
    with serve_app(front) as url:
        run(score_with(url, [{"completion": "len:ab"}], retry_after_cap_s=2.5))
    assert pauses == [2.5]


def test_client_error_is_not_retried():
    front = FlakyFront(make_app(), failures=1, status=422)
    with serve_app(front) as url, pytest.raises(RewardRequestError) as info:
        run(score_with(url, [{"completion": "ab"}]))
    assert info.value.status == 422
    assert front.refused == 1


def test_validation_error_from_service_is_typed():
    with serve_app(make_app()) as url, pytest.raises(RewardRequestError) as info:
        async def go():
            async with RewardClient(url) as client:
                await client.score([{"completion": "x"}], params={"nope": 1})
        run(go())
    assert info.value.error_type == "validation_error" and "params.nope" in info.value.message


def test_deadline_gives_typed_error_naming_service_url_and_cause():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    started = time.monotonic()
    with pytest.raises(RewardServiceError) as info:
        run(score_with(url, [{"completion": "x"}], deadline_s=1.0, backoff_s=0.05))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 10.0  # it waited for the deadline; the upper bound only guards a hang
    assert info.value.url == url
    assert "ConnectError" in info.value.cause
    assert url in str(info.value)


def test_persistent_503_ends_at_deadline_with_last_cause():
    front = FlakyFront(make_app(), failures=10_000)
    with serve_app(front) as url, pytest.raises(RewardServiceError) as info:
        run(score_with(url, [{"completion": "x"}], deadline_s=1.0, backoff_s=0.05))
    assert "HTTP 503" in info.value.cause and "busy" in info.value.cause


def test_failover_when_one_of_two_urls_is_down(pauses):
    dead = f"http://127.0.0.1:{free_port()}"
    with serve_app(make_app()) as live:
        async def go():
            async with RewardClient([dead, live], deadline_s=10) as client:
                return [await client.score([{"completion": "len:abc"}]) for _ in range(4)]
        results = run(go())
    assert all(r.rewards == [3.0] for r in results)
    assert pauses == []  # a dead URL costs a refused connect, then the next URL: no backoff


def test_inproc_and_http_give_identical_results():
    items = [
        {"completion": "<think>a</think><answer>b</answer>"},
        {"completion": "<answer>b</answer>"},
        {"completion": "<think>x</think> <answer>y</answer> trailing"},
    ]
    from services.regex_format.main import app
    with serve_app(app) as url:
        over_http = run(score_with(url, items))
    in_process = run(score_with("inproc://regex_format", items))
    assert over_http.rewards == in_process.rewards == [1.0, 0.0, 0.0]
    assert over_http.details == in_process.details


def test_inproc_rejects_unknown_service():
    with pytest.raises(ValueError, match=r"cannot import services\.nope\.main"):
        RewardClient("inproc://nope")


def test_images_are_deduplicated_by_identity_and_content():
    red = Image.new("RGB", (8, 8), "red")
    red_copy = Image.new("RGB", (8, 8), "red")
    blue = Image.new("RGB", (8, 8), "blue")
    ids, table = collect_images([red, red, red_copy, None, blue])
    assert ids[0] == ids[1] == ids[2] and ids[3] is None and ids[4] != ids[0]
    assert len(table) == 2


def test_chunks_carry_only_their_images():
    app = make_app(max_batch=2)
    imgs = [Image.new("RGB", (4, 4), c) for c in ("red", "green", "blue")]
    ids, table = collect_images(imgs)
    items = [{"completion": "len:a", "image_id": i} for i in ids]
    with serve_app(app) as url:
        async def go():
            async with RewardClient(url) as client:
                return await client.score(items, images=table)
        resp = run(go())
    assert resp.rewards == [1.0, 1.0, 1.0]
