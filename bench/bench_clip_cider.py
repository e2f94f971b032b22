"""Benchmark clip_cider: where a GRPO request's time goes per device, image decode + preprocess against
the naive pipeline, dedup and cache, and CIDEr-D against pycocoevalcap.

    .venv/bin/python bench/bench_clip_cider.py [--device cpu] [--tables stages,decode,dedup,cider]
    python bench/bench_clip_cider.py --device cpu,cuda --tables stages,decode   # a GPU host

`stages`: GRPO-shaped requests (16 new 640x480 JPEGs x 8 completions) served as the service
serves them, minus the socket: the JSON body parsed and validated, scored, the answer dumped. One
request in flight, then four (the service scores up to MAX_CONCURRENCY at once); devices alternate
in blocks within each round. New images/s, items/s, and the mean time per request in each stage
(clip_cider_stage_seconds; `wire` is the JSON in and out, `other` the rest).
`decode`: per image, the naive pipeline (PIL full decode + open_clip's preprocess, one at a time)
against the service's (DCT-scaled decode and crop resize on its thread pool, batched normalise, or
resize/normalise on the device), on the same images, alternating.
`dedup` and `cider` (need rich and pycocoevalcap): dedup + cache against one embedding per item;
CIDEr-D items/s against pycocoevalcap's `Cider`.

CLIP has random weights (no download): a forward pass costs the same as with the real ones.
Nothing here needs a network, FastAPI or uvicorn.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import statistics
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from proto.models import ItemDetail, ScoreRequest, ScoreResponse  # noqa: E402
from services.clip_cider.metrics import STAGES  # noqa: E402
from services.clip_cider.scorer import ClipCiderScorer  # noqa: E402
from services.clip_cider.settings import ClipCiderSettings  # noqa: E402
from services.common.images import decode_image  # noqa: E402
from services.common.scoring import Batch  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden" / "cider_corpus.jsonl"
ROWS = [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]


def jpeg(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A photo-like JPEG: smooth colour fields plus a little noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize(size, Image.BICUBIC), dtype=np.int16)
    pixels = np.clip(base + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class NewImages:
    """An endless supply of distinct JPEGs: a few real ones, each with a numbered comment segment.

    The comment changes the content hash (so the service's cache misses, as with a new image) and
    nothing the decoder does, so every image costs what a new photo of that size costs.
    """

    def __init__(self, distinct: int = 32) -> None:
        self.bases = [jpeg(1000 + i) for i in range(distinct)]
        self.count = 0

    def take(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            base, self.count = self.bases[self.count % len(self.bases)], self.count + 1
            comment = f"bench image {self.count}".encode()
            out.append(base[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + base[2:])
        return out


def request_body(raws: list[bytes], k: int) -> bytes:
    """A GRPO request as the trainer sends it: each image once, K distinct completions per image."""
    import base64

    images = {f"img{i}": {"b64": base64.b64encode(raw).decode()} for i, raw in enumerate(raws)}
    items = []
    for i in range(len(raws)):
        for j in range(k):
            row = ROWS[(i * k + j) % len(ROWS)]
            items.append({"completion": f"<answer>yes</answer><explain>{row['candidate']} {j}</explain>",
                          "reference": row["references"], "image_id": f"img{i}"})
    return json.dumps({"items": items, "images": images}).encode()


def serve(scorer: ClipCiderScorer, body: bytes) -> tuple[float, float]:
    """(wall seconds, JSON seconds) for one request, as the service's route handles it."""
    started = time.perf_counter()
    req = ScoreRequest.model_validate_json(body)
    params = scorer.params_model.model_validate(req.params)
    parsed = time.perf_counter()
    results = scorer.score(Batch(req.items, req.images, params))
    scored = time.perf_counter()
    ScoreResponse(rewards=[r.reward for r in results], service=scorer.name, version=scorer.version,
                  elapsed_ms=0.0, details=[ItemDetail(status=r.status, reason=r.reason, parts=r.parts)
                                           for r in results]).model_dump_json()
    done = time.perf_counter()
    return done - started, (parsed - started) + (done - scored)


def build(device: str, model: str) -> ClipCiderScorer:
    """The service as compose runs it on `device` (the GPU service's CLIP_CIDER_CLIP_BATCH_ROWS)."""
    settings = ClipCiderSettings(clip_model=model, clip_pretrained="", clip_device=device, corpus_path=GOLDEN,
                                 clip_batch_rows=64 if device == "cpu" else 256)
    scorer = ClipCiderScorer(settings)
    scorer.load()
    return scorer


def run_block(scorer: ClipCiderScorer, bodies: list[bytes], in_flight: int) -> dict[str, float]:
    """Serve `bodies` with `in_flight` at once; wall time, JSON time, and stage totals over them."""
    before = scorer.stages.snapshot()
    started = time.perf_counter()
    if in_flight == 1:
        timings = [serve(scorer, b) for b in bodies]
    else:
        with ThreadPoolExecutor(in_flight) as pool:
            timings = list(pool.map(lambda b: serve(scorer, b), bodies))
    wall = time.perf_counter() - started
    after = scorer.stages.snapshot()
    out = {s: after[s] - before[s] for s in STAGES}
    out.update(wall=wall, wire=sum(t[1] for t in timings), served=sum(t[0] for t in timings),
               median=statistics.median(t[0] for t in timings), requests=len(bodies))
    return out


def stages_table(args, scorers: dict[str, ClipCiderScorer], supply: NewImages,
                 goals: dict[str, float]) -> list[str]:
    counts = {d: (args.requests if d == "cpu" else args.requests * args.gpu_factor) for d in scorers}
    totals: dict[tuple[str, int], list[dict[str, float]]] = {}
    for scorer in scorers.values():  # warm every path on full-size requests, untimed
        run_block(scorer, [request_body(supply.take(args.images), args.k) for _ in range(2)], 2)
    for _ in range(args.rounds):
        for in_flight in (1, 4):
            for device, scorer in scorers.items():
                bodies = [request_body(supply.take(args.images), args.k) for _ in range(counts[device])]
                totals.setdefault((device, in_flight), []).append(run_block(scorer, bodies, in_flight))
    lines = [f"clip_cider stages: {args.model}, requests of {args.images} new 640x480 JPEGs x {args.k} "
             f"completions, {args.rounds} rounds (devices alternate), decode threads "
             + ", ".join(f"{d} {s.embedder.decode_threads}" for d, s in scorers.items()),
             f"{'device':<8}{'in flight':>10}{'new img/s':>11}{'items/s':>10}{'median ms':>11}"
             + "".join(f"{s + ' ms':>15}" for s in ("wire", *STAGES, "other"))]
    rates = {}
    for (device, in_flight), blocks in totals.items():
        n = sum(b["requests"] for b in blocks)
        wall = sum(b["wall"] for b in blocks)
        per = {s: 1000 * sum(b[s] for b in blocks) / n for s in ("wire", *STAGES, "served")}
        other = per["served"] - sum(per[s] for s in ("wire", *STAGES))
        rates[device, in_flight] = goals[f"{device} new images/s, {in_flight} in flight"] = args.images * n / wall
        lines.append(f"{device:<8}{in_flight:>10}{rates[device, in_flight]:>11.0f}"
                     f"{args.images * args.k * n / wall:>10.0f}"
                     f"{1000 * statistics.median(b['median'] for b in blocks):>11.1f}"
                     + "".join(f"{per[s]:>15.1f}" for s in ("wire", *STAGES)) + f"{other:>15.1f}")
    if "cpu" in scorers and len(scorers) > 1:
        for device in [d for d in scorers if d != "cpu"]:
            for in_flight in (1, 4):
                ratio = goals[f"{device} / cpu, {in_flight} in flight"] = (
                    rates[device, in_flight] / rates["cpu", in_flight])
                lines.append(f"{device} / cpu, {in_flight} in flight: {ratio:.1f}x new images/s")
    return lines


def decode_table(args, scorers: dict[str, ClipCiderScorer], supply: NewImages,
                 goals: dict[str, float]) -> list[str]:
    """Decode + preprocess per image: naive against the service's path, same images, alternating."""
    best: dict[str, float] = {}
    for _ in range(args.rounds * 3):
        raws = supply.take(args.images)
        for device, scorer in scorers.items():
            for name, fn in ((f"naive (PIL full decode + open_clip preprocess), {device}", naive),
                             (f"service path, {device}", fast)):
                started = time.perf_counter()
                fn(scorer.embedder, raws)
                best[name] = min(best.get(name, float("inf")), (time.perf_counter() - started) / len(raws))
    lines = [f"decode + preprocess of {args.images} new 640x480 JPEGs, ms per image, best of "
             f"{args.rounds * 3} alternating rounds",
             f"{'path':<64}{'ms/image':>10}{'x naive':>10}"]
    for name, t in best.items():
        naive_t = best[f"naive (PIL full decode + open_clip preprocess), {name.rsplit(', ', 1)[1]}"]
        lines.append(f"{name:<64}{1000 * t:>10.2f}{t / naive_t:>10.2f}")
        if name.startswith("service"):
            goals[f"decode + preprocess / naive, {name.rsplit(', ', 1)[1]}"] = t / naive_t
    return lines


GOALS = {  # issue 23: (key, at least / at most, bound)
    "decode + preprocess / naive, cpu": ("at most", 0.4),
    "cuda new images/s, 1 in flight": ("at least", 500),
    "cuda new images/s, 4 in flight": ("at least", 500),
    "cuda / cpu, 1 in flight": ("at least", 5),
    "cuda / cpu, 4 in flight": ("at least", 5),
}


def goal_lines(goals: dict[str, float]) -> list[str]:
    lines = ["goals (issue 23):"]
    for key, (how, bound) in GOALS.items():
        if key in goals:
            met = goals[key] <= bound if how == "at most" else goals[key] >= bound
            lines.append(f"  {'MET ' if met else 'MISS'} {key}: {goals[key]:.2f} ({how} {bound})")
    return lines


def naive(emb, raws: list[bytes]) -> torch.Tensor:
    pixels = torch.stack([emb.preprocess(Image.open(io.BytesIO(r)).convert("RGB")) for r in raws])
    return pixels.to(emb.device)


def fast(emb, raws: list[bytes]) -> torch.Tensor:
    side = emb.input_side
    decoded = emb.parallel(lambda r: decode_image(r, 10**8, min_side=2 * side, draft_side=side), raws)
    pixels = emb.pixel_batch(emb.parallel(emb.prepare, decoded))
    if pixels.is_cuda:
        torch.cuda.synchronize(pixels.device)
    return pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture (random weights)")
    parser.add_argument("--device", default="cpu", help="comma-separated: cpu, cuda, cpu,cuda")
    parser.add_argument("--tables", default="stages,decode,dedup,cider", help="which tables, comma-separated")
    parser.add_argument("--images", type=int, default=16, help="new images per request")
    parser.add_argument("--k", type=int, default=8, help="completions per image")
    parser.add_argument("--requests", type=int, default=4, help="requests per block on the CPU")
    parser.add_argument("--gpu-factor", type=int, default=8, help="requests per block off the CPU, x --requests")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--cider-items", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    tables = args.tables.split(",")
    started = time.perf_counter()
    scorers = {d: build(d, args.model) for d in args.device.split(",")}
    supply = NewImages()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    goals: dict[str, float] = {}
    if "stages" in tables:
        print("\n".join(stages_table(args, scorers, supply, goals)), "\n", flush=True)
    if "decode" in tables:
        print("\n".join(decode_table(args, scorers, supply, goals)), "\n", flush=True)
    print("\n".join(goal_lines(goals)), flush=True)
    if "dedup" in tables or "cider" in tables:
        from bench.support.clip_cider_tables import cider_table, dedup_table

        if "dedup" in tables:
            dedup_table(scorers[next(iter(scorers))], args, supply, ROWS)
        if "cider" in tables:
            cider_table(args.cider_items, max(args.rounds, 5), ROWS)
    for scorer in scorers.values():
        scorer.close()
    print(f"bench_clip_cider: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
