"""Hostile image inputs: path strings that name no file under the root, and images far over the model's size."""

import base64
import io
import os

import httpx
import psutil
import pytest
from PIL import Image

from proto.models import ImageData, ItemStatus, ScoreItem, ScoreResponse
from services.clip_cider.scorer import ClipCiderParams, ClipCiderScorer
from services.common.app import create_app
from services.common.images import ImageRejected, PixelBudget, decode_image, release_memory
from services.common.scoring import Batch
from tests.helpers import PeakRss, serve_app
from tests.services.clip_cider.support import encode, image, loaded, settings_for

BAD_PATHS = {
    "nul": ("ok.png\x00.txt", "relative path"),
    "absolute": ("/etc/passwd", "relative path"),
    "dotdot": ("sub/../../outside.png", "'..'"),
    "escape": ("escape.png", "leaves the image root"),
    "loop": ("loop.png", "cannot be read"),
    "directory": ("sub", "directory"),
    "fifo": ("pipe.png", "not a regular file"),
    "control": ("a\nb\x7f.png", "cannot be read"),
    "empty": ("", "non-empty"),
}


@pytest.fixture(scope="module")
def url(tiny_config, tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "ok.png").write_bytes(encode(image(1)))
    (base / "outside.png").write_bytes(encode(image(2)))
    os.symlink(base / "outside.png", root / "escape.png")
    os.symlink(root / "loop.png", root / "loop.png")
    os.mkfifo(root / "pipe.png")
    settings = settings_for(tiny_config, image_root=root)
    with serve_app(create_app(ClipCiderScorer(settings), settings)) as served:
        yield served


def test_paths_that_name_no_file_under_the_root_are_unscorable_items_not_a_failed_batch(url):
    images = {"ok": {"path": "ok.png"}, **{k: {"path": p} for k, (p, _) in BAD_PATHS.items()}}
    items = [{"completion": "<explain>a photo</explain>", "image_id": k} for k in images]
    resp = httpx.post(f"{url}/v1/score", json={"items": items, "images": images}, timeout=30)
    assert resp.status_code == 200, resp.text
    body = ScoreResponse.model_validate_json(resp.content)
    by_id = dict(zip(images, body.details, strict=True))
    assert by_id["ok"].status == ItemStatus.ok
    for key, (_, needle) in BAD_PATHS.items():
        detail = by_id[key]
        assert detail.status == ItemStatus.unscorable, key
        assert needle in detail.reason, (key, detail.reason)
    assert body.rewards[1:] == [None] * len(BAD_PATHS)


@pytest.mark.parametrize("fmt,size", [("PNG", (1000, 700)), ("JPEG", (1000, 700)), ("PNG", (130, 2000))])
def test_large_images_are_reduced_while_decoding_but_never_below_the_floor(fmt, size):
    raw = encode(image(3, size), fmt=fmt)
    img = decode_image(raw, 10**8, min_side=64)
    assert img.mode == "RGB"
    assert 64 <= min(img.size) < 2 * 64 + 1
    # The aspect ratio survives the reduction (within one pixel of rounding).
    assert abs(img.size[0] / img.size[1] - size[0] / size[1]) < 0.05
    # Small images are untouched, so scores of ordinary images do not move.
    assert decode_image(encode(image(4, (100, 90)), fmt="PNG"), 10**8, min_side=64).size == (100, 90)


def test_the_request_pixel_budget_refuses_images_past_it():
    budget = PixelBudget(100 * 100 * 2)
    raw = encode(image(5, (100, 100)))
    decode_image(raw, 10**8, budget=budget)
    decode_image(raw, 10**8, budget=budget)
    with pytest.raises(ImageRejected, match="pixel budget"):
        decode_image(raw, 10**8, budget=budget)


def _distinct_pngs(n: int, side: int) -> list[bytes]:
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (i * 15, 255 - i * 15, 90)).save(buf, "PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


@pytest.mark.slow
def test_sixteen_large_pngs_peak_near_one_decode_and_rss_returns(tiny_config):
    side = 3000
    full_rgb = side * side * 3
    raws = _distinct_pngs(16, side)
    images = {str(i): ImageData(b64=base64.b64encode(r).decode()) for i, r in enumerate(raws)}
    items = [ScoreItem(completion="<explain>a photo</explain>", image_id=k) for k in images]
    # Eight decoding threads: large decodes still take turns.
    with loaded(settings_for(tiny_config, image_cache_size=0, clip_decode_threads=8)) as scorer:
        scorer.score(Batch(items[:1], {"0": images["0"]}, ClipCiderParams()))  # warm every code path
        release_memory()
        before = psutil.Process().memory_info().rss
        with PeakRss() as rss:
            results = scorer.score(Batch(items, images, ClipCiderParams()))
        after = psutil.Process().memory_info().rss
    assert [r.status for r in results] == [ItemStatus.ok] * 16
    # Decoding all sixteen (or eight) at full size at once would add 16 (8) x 27 MB; one at a time
    # stays near one.
    assert rss.peak - before < 4 * full_rgb, (before, rss.peak)
    assert after <= 1.2 * before, (before, after)
