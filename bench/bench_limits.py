"""Benchmark the limits before work: parsing a maximal accepted body, refusing a million items, and
clip_cider's memory on sixteen 6000x6000 PNGs.

    .venv/bin/python bench/bench_limits.py [--side 6000] [--images 16]

1. Parse: the largest body the default settings accept (16 MiB: 512 items of ~32 K characters)
   through the pre-scan and ScoreRequest, in this process: seconds, and peak RSS growth / body size.
2. Refusal: as many tiny items as fit the body limit (~930 K in 16 MiB) sent to a real regex_format
   process: seconds to its 413 (from the pre-scan), and the service's RSS growth.
3. Images: clip_cider (tiny random CLIP, CPU) scoring sixteen distinct large PNGs in one request:
   seconds, peak RSS growth, and RSS after / before.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

from proto.models import ImageData, ScoreItem, ScoreRequest  # noqa: E402
from services.common.images import release_memory  # noqa: E402
from services.common.limits import check_json_size  # noqa: E402
from services.common.settings import ServiceSettings  # noqa: E402
from tests.helpers import PeakRss  # noqa: E402


def maximal_body() -> bytes:
    s = ServiceSettings()
    per_item = (s.max_body_bytes - 1024) // s.max_batch - len('{"completion":""},')
    text = ("The answer is 42, since {x} + [y] = 42. " * (per_item // 40 + 1))[:per_item]
    return json.dumps({"items": [{"completion": text}] * s.max_batch}, separators=(",", ":")).encode()


def bench_parse() -> dict:
    s = ServiceSettings()
    raw = maximal_body()
    assert len(raw) <= s.max_body_bytes
    proc = psutil.Process()
    release_memory()
    before = proc.memory_info().rss
    with PeakRss(proc, interval_s=0.002) as peak:
        started = time.perf_counter()
        check_json_size(raw, s)
        req = ScoreRequest.model_validate_json(raw)
        elapsed = time.perf_counter() - started
    assert len(req.items) == s.max_batch
    return {"body_mb": len(raw) / 2**20, "seconds": elapsed, "rss_growth_x_body": (peak.peak - before) / len(raw)}


def bench_refusal() -> dict:
    from tests.helpers import service_process

    # As many tiny items as the body limit lets through, so the pre-scan (not the size limit) refuses.
    n = (ServiceSettings().max_body_bytes - 16) // len(b'{"completion":""},')
    body = b'{"items":[' + b",".join([b'{"completion":""}'] * n) + b"]}"
    with service_process("services.regex_format.main:app") as (url, proc):
        service = psutil.Process(proc.pid)
        before = service.memory_info().rss
        with PeakRss(service, interval_s=0.002) as peak:
            started = time.perf_counter()
            resp = httpx.post(f"{url}/v1/score", content=body, timeout=120,
                              headers={"content-type": "application/json"})
            elapsed = time.perf_counter() - started
    return {"items": n, "body_mb": len(body) / 2**20, "status": resp.status_code, "seconds": elapsed,
            "service_rss_growth_mb": (peak.peak - before) / 2**20}


def bench_images(side: int, n: int) -> dict:
    from services.clip_cider.scorer import ClipCiderParams
    from services.common.scoring import Batch
    from tests.services.clip_cider.support import loaded, settings_for, write_tiny_config

    raws = []
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (side, side), (i * 15 % 256, 200, 40)).save(buf, "PNG", compress_level=1)
        raws.append(buf.getvalue())
    images = {str(i): ImageData(b64=base64.b64encode(r).decode()) for i, r in enumerate(raws)}
    items = [ScoreItem(completion="<explain>a photo</explain>", image_id=k) for k in images]
    proc = psutil.Process()
    with loaded(settings_for(write_tiny_config(Path(tempfile.mkdtemp())), image_cache_size=0)) as scorer:
        small = io.BytesIO()
        Image.new("RGB", (64, 64)).save(small, "PNG")
        scorer.score(Batch(items[:1], {"0": ImageData(b64=base64.b64encode(small.getvalue()).decode())},
                           ClipCiderParams()))
        release_memory()
        before = proc.memory_info().rss
        with PeakRss(proc, interval_s=0.002) as peak:
            started = time.perf_counter()
            results = scorer.score(Batch(items, images, ClipCiderParams()))
            elapsed = time.perf_counter() - started
        after = proc.memory_info().rss
    return {"images": f"{n} x {side}x{side} PNG", "body_mb": sum(map(len, raws)) * 4 / 3 / 2**20,
            "ok": sum(r.status.value == "ok" for r in results), "seconds": elapsed,
            "peak_growth_mb": (peak.peak - before) / 2**20, "rss_after_over_before": after / before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    for name, result in [("parse maximal body", bench_parse()), ("tiny-items body", bench_refusal()),
                         ("large PNGs", bench_images(args.side, args.images))]:
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
        print(f"{name:20s} {shown}")


if __name__ == "__main__":
    main()
