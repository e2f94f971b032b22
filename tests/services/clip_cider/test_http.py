"""clip_cider over real HTTP (uvicorn on 127.0.0.1) through RewardClient, and main.py through inproc://."""

import asyncio
import hashlib
import random
import sys

import httpx
import pytest
from PIL import Image

from proto.client import RewardRequestError
from proto.models import ImageData, ItemStatus
from services.clip_cider.scorer import ClipCiderScorer
from services.common.app import create_app
from tests.helpers import serve_app, with_client
from tests.services.clip_cider.support import GOLDEN, GOLDEN_PATH, TINY_NAME, b64, encode, image, settings_for


@pytest.fixture(scope="module")
def url(tiny_config, tmp_path_factory):
    root = tmp_path_factory.mktemp("http_images")
    (root / "cat.png").write_bytes(encode(image(7)))
    settings = settings_for(tiny_config, image_root=root, max_image_pixels=100_000)
    with serve_app(create_app(ClipCiderScorer(settings), settings)) as base:
        yield base


def run(url, coro_fn):
    return with_client(url, coro_fn, deadline_s=60)


def golden_items(rows):
    return [{"completion": f"<explain>{r['candidate']}</explain>", "reference": r["references"]}
            for r in rows]


def test_golden_in_one_request(url):
    resp = run(url, lambda c: c.score(golden_items(GOLDEN)))
    assert resp.service == "clip_cider"
    assert [d.parts["cider"] for d in resp.details] == pytest.approx([r["cider_d"] for r in GOLDEN], abs=1e-6)
    assert resp.rewards == pytest.approx([min(r["cider_d"], 10) / 10 for r in GOLDEN], abs=1e-9)


def test_golden_shuffled_into_concurrent_random_requests(url):
    rng = random.Random(3)
    order = list(range(len(GOLDEN)))
    rng.shuffle(order)
    chunks = []
    while order:
        take = rng.randint(1, 20)
        chunks.append(order[:take])
        order = order[take:]

    async def many(client):
        return await asyncio.gather(*(client.score(golden_items([GOLDEN[i] for i in ch])) for ch in chunks))

    for chunk, resp in zip(chunks, run(url, many), strict=True):
        got = [d.parts["cider"] for d in resp.details]
        assert got == pytest.approx([GOLDEN[i]["cider_d"] for i in chunk], abs=1e-6)


def test_request_corpus_over_the_whole_file(url):
    resp = run(url, lambda c: c.score(golden_items(GOLDEN), params={"corpus": "request"}))
    assert [d.parts["cider"] for d in resp.details] == pytest.approx([r["cider_d"] for r in GOLDEN], abs=1e-6)


def test_images_by_b64_and_path_with_a_bad_one_per_item(url):
    images = {
        "inline": ImageData(**b64(encode(image(7)))),
        "file": ImageData(path="cat.png"),
        "bomb": ImageData(**b64(encode(Image.new("RGB", (500, 500))))),
        "escape": ImageData(path="../secrets.png"),
    }
    items = [{"completion": "<explain>a cat</explain>", "reference": ["a cat"], "image_id": i}
             for i in images]
    resp = run(url, lambda c: c.score(items, images=images))
    inline, file, bomb, escape = resp.details
    assert inline.status == file.status == ItemStatus.ok
    assert inline.parts == file.parts and set(inline.parts) == {"clip", "cider"}
    assert resp.rewards[2] is None and bomb.status == ItemStatus.unscorable and "over the cap" in bomb.reason
    assert resp.rewards[3] is None and "'..'" in escape.reason


def test_params_errors_are_422(url):
    for params, needle in [({"w_clip": 0, "w_cider": 0}, "both 0"), ({"corpus": "batch"}, "corpus")]:
        with pytest.raises(RewardRequestError) as err:
            run(url, lambda c, p=params: c.score(golden_items(GOLDEN[:1]), params=p))
        assert err.value.status == 422 and needle in err.value.message


def test_info_probes_and_metrics(url):
    info = run(url, lambda c: c.info())
    assert info.config["cider"]["corpus"]["sha256"] == hashlib.sha256(GOLDEN_PATH.read_bytes()).hexdigest()
    assert info.config["clip"]["model"] == TINY_NAME and info.config["clip"]["random_init"] is True
    assert any("random-initialised CLIP" in w for w in info.warnings)
    params = {"explain_tag", "corpus", "w_clip", "w_cider", "cider_cap"}
    assert set(info.params_schema["properties"]) >= params
    assert httpx.get(f"{url}/readyz").status_code == 200
    assert "clip_cider_image_cache_hits_total" in httpx.get(f"{url}/metrics").text


def test_main_builds_the_app_from_the_environment(monkeypatch, tiny_config):
    monkeypatch.setenv("CLIP_CIDER_CLIP_MODEL", TINY_NAME)
    monkeypatch.setenv("CLIP_CIDER_CLIP_MODEL_CONFIG", str(tiny_config))
    monkeypatch.setenv("CLIP_CIDER_CLIP_PRETRAINED", "")
    monkeypatch.setenv("CLIP_CIDER_CLIP_DEVICE", "cpu")
    monkeypatch.setenv("CLIP_CIDER_CORPUS_PATH", str(GOLDEN_PATH))
    monkeypatch.delitem(sys.modules, "services.clip_cider.main", raising=False)
    resp = run("inproc://clip_cider", lambda c: c.score(golden_items(GOLDEN[:5])))
    expected = [r["cider_d"] for r in GOLDEN[:5]]
    assert [d.parts["cider"] for d in resp.details] == pytest.approx(expected, abs=1e-6)
