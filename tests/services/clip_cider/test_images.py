"""Images in clip_cider: per-request dedup, the cross-request cache, confinement to the root, bad images."""

import os
import threading
import time

import pytest
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest

from proto.models import ImageData, ItemStatus, ScoreItem
from services.clip_cider.scorer import ClipCiderParams
from services.common.scoring import Batch
from tests.services.clip_cider.support import b64, encode, image, loaded, settings_for

MAX_PIXELS = 200_000


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("images")
    (base / "root" / "sub").mkdir(parents=True)
    (base / "root" / "sub" / "ok.png").write_bytes(encode(image(100)))
    (base / "outside.png").write_bytes(encode(image(101)))
    os.symlink(base / "outside.png", base / "root" / "escape.png")
    os.symlink(base / "root" / "sub" / "ok.png", base / "root" / "alias.png")
    return base / "root"


@pytest.fixture(scope="module")
def scorer(tiny_config, root):
    with loaded(settings_for(tiny_config, image_root=root, max_image_pixels=MAX_PIXELS)) as s:
        yield s


def run(scorer, items, images):
    return scorer.score(Batch(items=items, images={k: ImageData(**v) for k, v in images.items()},
                              params=ClipCiderParams()))


def delta(scorer, fn):
    before = scorer.embedder.stats()
    out = fn()
    after = scorer.embedder.stats()
    return out, {k: after[k] - before[k] for k in before}


def grpo_items(image_ids, k):
    """K completions per image, the shape of a GRPO batch."""
    return [ScoreItem(completion=f"<answer>x</answer><explain>a photo of noise {j}</explain>", image_id=i)
            for i in image_ids for j in range(k)]


def test_one_embedding_per_distinct_image(scorer):
    raw = [encode(image(s)) for s in (10, 11)]
    # "c" carries the same bytes as "a": content, not id, decides what is embedded.
    images = {"a": b64(raw[0]), "b": b64(raw[1]), "c": b64(raw[0])}
    results, d = delta(scorer, lambda: run(scorer, grpo_items(["a", "b", "c"], 8), images))
    assert d["images_embedded"] == 2
    assert d["image_cache_misses"] == 2
    assert d["texts_embedded"] == 8  # eight distinct texts, shared by the three images
    assert all(r.status == ItemStatus.ok for r in results)
    assert [r.parts["clip"] for r in results[:8]] == [r.parts["clip"] for r in results[16:]]


def test_cache_hit_across_requests_is_counted(scorer):
    images = {"x": b64(encode(image(20))), "y": b64(encode(image(21)))}
    items = grpo_items(["x", "y"], 2)
    first, d1 = delta(scorer, lambda: run(scorer, items, images))
    second, d2 = delta(scorer, lambda: run(scorer, items, images))
    assert (d1["image_cache_misses"], d1["image_cache_hits"], d1["images_embedded"]) == (2, 0, 2)
    assert (d2["image_cache_misses"], d2["image_cache_hits"], d2["images_embedded"]) == (0, 2, 0)
    assert [r.parts["clip"] for r in first] == [r.parts["clip"] for r in second]


def test_cache_counters_reach_prometheus(scorer):
    registry = CollectorRegistry()
    scorer.register_metrics(registry)
    run(scorer, grpo_items(["p"], 1), {"p": b64(encode(image(30)))})
    run(scorer, grpo_items(["p"], 1), {"p": b64(encode(image(30)))})
    text = generate_latest(registry).decode()
    stats = scorer.embedder.stats()
    assert f"clip_cider_image_cache_hits_total {float(stats['image_cache_hits'])}" in text
    assert f"clip_cider_image_cache_misses_total {float(stats['image_cache_misses'])}" in text
    assert 'clip_cider_embedded_total{kind="image"}' in text


def test_paths_resolve_under_the_root_only(scorer, root):
    images = {
        "ok": {"path": "sub/ok.png"},
        "alias": {"path": "alias.png"},  # a link that stays inside the root is fine
        "dotdot": {"path": "../outside.png"},
        "absolute": {"path": str(root.parent / "outside.png")},
        "escape": {"path": "escape.png"},
        "missing": {"path": "nope.png"},
    }
    results = run(scorer, grpo_items(list(images), 1), images)
    by_id = dict(zip(images, results, strict=True))
    assert by_id["ok"].status == by_id["alias"].status == ItemStatus.ok
    assert by_id["ok"].parts == by_id["alias"].parts
    for bad, needle in [("dotdot", "'..'"), ("absolute", "relative"), ("escape", "leaves the image root"),
                        ("missing", "cannot be read")]:
        assert by_id[bad].reward is None, bad
        assert by_id[bad].status == ItemStatus.unscorable
        assert by_id[bad].reason.startswith("image rejected:") and needle in by_id[bad].reason, bad


def test_bad_images_cost_only_their_items(scorer):
    bomb = encode(Image.new("RGB", (1000, 1000), (0, 0, 0)))  # small file, 1e6 pixels > the cap
    gif = encode(Image.new("RGB", (8, 8)), fmt="GIF")
    images = {
        "good": b64(encode(image(40))),
        "corrupt": b64(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20),
        "bomb": b64(bomb),
        "gif": b64(gif),
        "notb64": {"b64": "***"},
    }
    results = run(scorer, grpo_items(list(images), 2), images)
    by_id = {i: results[2 * n : 2 * n + 2] for n, i in enumerate(images)}
    assert [r.status for r in by_id["good"]] == [ItemStatus.ok] * 2
    for bad, needle in [("corrupt", "cannot be decoded"), ("bomb", "over the cap"), ("gif", "format GIF"),
                        ("notb64", "not valid base64")]:
        for r in by_id[bad]:
            assert r.reward is None and r.status == ItemStatus.unscorable, bad
            assert needle in r.reason, (bad, r.reason)


def test_paths_refused_without_a_root(tiny_config):
    with loaded(settings_for(tiny_config)) as s:
        [r] = run(s, grpo_items(["a"], 1), {"a": {"path": "sub/ok.png"}})
    assert r.reward is None and "no image root" in r.reason


def test_stage_seconds_reach_prometheus_once_per_request(scorer):
    registry = CollectorRegistry()
    scorer.register_metrics(registry)

    def sample(kind, stage):
        return registry.get_sample_value(f"clip_cider_stage_seconds_{kind}", {"stage": stage}) or 0.0

    stages = ("decode", "preprocess", "forward", "cider")
    images = {"n": b64(encode(image(31))), "m": b64(encode(image(32)))}
    items = [it.model_copy(update={"reference": "a photo of noise"}) for it in grpo_items(["n", "m"], 4)]
    before = {s: (sample("count", s), sample("sum", s)) for s in stages}
    run(scorer, items, images)
    first = {s: (sample("count", s), sample("sum", s)) for s in stages}
    run(scorer, items, images)  # the same images again: cache hits, nothing to preprocess
    second = {s: (sample("count", s), sample("sum", s)) for s in stages}
    for s in stages:
        assert first[s][0] == before[s][0] + 1 and second[s][0] == first[s][0] + 1, s
        assert first[s][1] > before[s][1], s
    assert second["preprocess"][1] == first["preprocess"][1]
    assert second["forward"][1] > first["forward"][1]  # the texts still go through CLIP
    assert scorer.stages.snapshot()["requests"] >= 2


def test_a_requests_images_decode_concurrently(tiny_config, monkeypatch):
    import services.clip_cider.images as images_module

    # Each decode waits for another one to be in flight: one at a time, the barrier breaks.
    barrier = threading.Barrier(2, timeout=10)
    real = images_module.decode_image

    def decode_in_company(raw, *args, **kwargs):
        barrier.wait()
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(images_module, "decode_image", decode_in_company)
    with loaded(settings_for(tiny_config, clip_decode_threads=2)) as s:
        results = run(s, grpo_items(["a", "b"], 1), {"a": b64(encode(image(50))), "b": b64(encode(image(51)))})
    assert [r.status for r in results] == [ItemStatus.ok] * 2


def test_a_trl_request_with_a_shared_root_scores_as_one_with_bytes(tiny_config, tmp_path):
    from integrations.trl_items import build_items

    files = []
    for i in range(3):
        files.append(tmp_path / "data" / f"{i}.jpg")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_bytes(encode(image(60 + i, (120, 90)), fmt="JPEG"))
    columns = {"image": [Image.open(f) for f in files for _ in range(2)]}
    completions = [f"<explain>a photo {j}</explain>" for j in range(6)]
    by_path = build_items(["p"] * 6, completions, columns, image_root=tmp_path / "data")
    by_bytes = build_items(["p"] * 6, completions, columns)
    assert {d.path for d in by_path[1].values()} == {"0.jpg", "1.jpg", "2.jpg"}
    with loaded(settings_for(tiny_config, image_root=tmp_path / "data")) as s:
        paths, d = delta(s, lambda: [r.parts["clip"] for r in s.score(Batch(*by_path, ClipCiderParams()))])
        raw, again = delta(s, lambda: [r.parts["clip"] for r in s.score(Batch(*by_bytes, ClipCiderParams()))])
    # The same files: the bytes sent the second time hit the cache the paths filled.
    assert (d["images_embedded"], again["images_embedded"], again["image_cache_hits"]) == (3, 0, 3)
    assert paths == raw


def test_a_spent_pixel_budget_refuses_the_later_images_whatever_decodes_first(tiny_config, monkeypatch):
    import services.clip_cider.images as images_module

    real = images_module.decode_image
    order = [f"i{k}" for k in range(4)]
    raw = {i: encode(image(70 + k, (100, 100))) for k, i in enumerate(order)}
    by_raw = {r: k for k, r in enumerate(raw.values())}

    def late_first(data, *args, **kwargs):
        time.sleep(0.05 * (3 - by_raw[data]))  # the last image reaches the budget first
        return real(data, *args, **kwargs)

    monkeypatch.setattr(images_module, "decode_image", late_first)
    with loaded(settings_for(tiny_config, clip_decode_threads=4, max_request_pixels=2 * 100 * 100,
                             image_cache_size=0)) as s:
        results = run(s, grpo_items(order, 1), {i: b64(r) for i, r in raw.items()})
    assert [r.status for r in results] == [ItemStatus.ok] * 2 + [ItemStatus.unscorable] * 2
    assert all("pixel budget" in r.reason for r in results[2:])


def test_the_decode_threads_see_the_request_deadline():
    # The pool's threads run each job in the caller's context: a request past its deadline decodes
    # nothing there either, instead of finishing work nobody waits for.
    from concurrent.futures import ThreadPoolExecutor

    from services.clip_cider.clip import ClipEmbedder, ClipSpec
    from services.common.scoring import DeadlinePassed, check_deadline, deadline_scope

    emb = ClipEmbedder(ClipSpec(model="ViT-B-32", device="cpu"))
    emb._pool = ThreadPoolExecutor(2)
    try:
        assert emb.parallel(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]
        with deadline_scope(time.monotonic() - 1), pytest.raises(DeadlinePassed):
            emb.parallel(lambda _: check_deadline(), [1, 2, 3])
    finally:
        emb._pool.shutdown()
