"""Batch latency of 64 normal vs 64 degenerate completions per service, and /healthz p99 meanwhile.

    .venv/bin/python bench/bench_degenerate.py [--rounds 20] [--services regex_format,vqa_accuracy]

Each service runs as its own uvicorn process (clip_cider with a tiny random CLIP, llm_judge
against the fake upstream of the tests with no added latency, so its text work is what shows).
Degenerate batches cycle through the corpus of tests/services/degenerate.py: repeated and
unclosed tags, nested tags, one-character floods, mixed scripts, 32 KB texts under the
completion cap and 64 KB ones over it. Every round sends texts not seen before (a round number
is prepended), so no cache can answer. Normal and degenerate batches take turns, every other
round in reverse order (A B B A), and "x normal" is the median of the rounds' own ratios
(bench/support/paired.py). A separate process polls /healthz every 20 ms throughout; each probe counts
for the kind of batch in flight when it started. Goal (issue 10): degenerate p50 at most 3x
normal, /healthz p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import io
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.support.paired import abba, pair_rounds  # noqa: E402
from proto.client import RewardClient  # noqa: E402
from tests.helpers import serve_app, service_process  # noqa: E402
from tests.services import degenerate as corpus  # noqa: E402
from tests.services.llm_judge.fake_openai import FakeOpenAI, chat  # noqa: E402

BATCH = 64
KINDS = ("normal", "degenerate")
SERVICES = ["regex_format", "vqa_accuracy", "clip_cider", "llm_judge", "math_equiv"]
REASONING = ("First I look at the picture: there are two red apples on the table and two more in "
             "the basket, so four apples in all. Checking again, the basket holds exactly two, "
             "and nothing is hidden behind the bowl. ")


def normal(i: int) -> str:
    """A real completion's shape: about a thousand characters of reasoning, then the tags."""
    return (f"<think>Step {i}. {REASONING * 4}</think>\n<answer>4</answer>\n"
            f"<explain>two apples on the table and two in a basket, sample {i}</explain>")


def degenerate(i: int) -> str:
    members = list(corpus.SMALL.values()) + list(corpus.LARGE.values())
    return members[i % len(members)]


def png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def request(service: str, kind: str, round_no: int) -> tuple[list[dict], dict, dict]:
    make = normal if kind == "normal" else degenerate
    reference = {"clip_cider": ["two apples on a table and two in a basket"]}.get(service, "4")
    items = [{"completion": f"{round_no} {make(i)}", "reference": reference,
              "prompt": "How many apples?"} for i in range(BATCH)]
    params: dict = {}
    images: dict = {}
    if service == "regex_format":  # the worst case: five tags in `mode: tags`
        params = {"mode": "tags", "tags": list(corpus.TAGS5), "partial": True}
    if service == "clip_cider":
        images = {"img": {"b64": png_b64()}}
        for it in items:
            it["image_id"] = "img"
    return items, params, images


def probe(url: str, polling, stop, out) -> None:
    """In its own process: GET /healthz every 20 ms until `stop`; send back (start, latency) pairs.

    time.monotonic is the system's CLOCK_MONOTONIC, so starts compare with the parent's batches.
    """
    probes = []
    with httpx.Client(timeout=30) as client:
        client.get(f"{url}/healthz").raise_for_status()  # connected before the clock starts
        polling.set()
        while not stop.is_set():
            started = time.monotonic()
            client.get(f"{url}/healthz").raise_for_status()
            probes.append((started, time.monotonic() - started))
            time.sleep(0.02)
    out.put(probes)


async def interleaved(url: str, service: str, rounds: int):
    """Normal and degenerate batches taking turns A B B A; per round {kind: (client s, server s)},
    and each batch's (kind, start, end) on the monotonic clock."""
    async with RewardClient(url, deadline_s=300) as client:
        for kind in KINDS:  # warm-up outside the clock
            items, params, images = request(service, kind, -1)
            await client.score(items, images=images, params=params)
        per_round, spans = [], []
        for r, order in enumerate(abba(KINDS, rounds)):
            measured = {}
            for kind in order:
                items, params, images = request(service, kind, r)
                started = time.monotonic()
                resp = await client.score(items, images=images, params=params)
                spans.append((kind, started, time.monotonic()))
                measured[kind] = (spans[-1][2] - started, resp.elapsed_ms / 1000)
                assert len(resp.rewards) == BATCH
            per_round.append(measured)
    return per_round, spans


def during(spans, probes) -> dict[str, list[float]]:
    """/healthz latencies by the kind of the latest batch sent when each probe started (as when a
    phase ran one kind only: the client's time between batches counts for the batch before it);
    probes before the first batch or after the last one are dropped."""
    starts = [begin for _, begin, _ in spans]
    out: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for started, latency in probes:
        i = bisect.bisect_right(starts, started) - 1
        if i >= 0 and started <= spans[-1][2]:
            out[spans[i][0]].append(latency)
    return out


def measured(url: str, service: str, rounds: int):
    ctx = mp.get_context("spawn")
    polling, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    prober = ctx.Process(target=probe, args=(url, polling, stop, out))
    prober.start()
    if not polling.wait(60):
        raise RuntimeError("the /healthz prober did not start")
    try:
        per_round, spans = asyncio.run(interleaved(url, service, rounds))
    finally:
        stop.set()
    probes = out.get(timeout=60)
    prober.join(timeout=30)
    return per_round, during(spans, probes)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def env_for(service: str, tmp: Path, fake_url: str) -> dict[str, str]:
    if service == "clip_cider":
        from tests.services.clip_cider.support import GOLDEN_PATH, TINY_NAME, write_tiny_config

        return {"CLIP_CIDER_CLIP_MODEL": TINY_NAME, "CLIP_CIDER_CLIP_PRETRAINED": "",
                "CLIP_CIDER_CLIP_MODEL_CONFIG": str(write_tiny_config(tmp)),
                "CLIP_CIDER_CLIP_DEVICE": "cpu", "CLIP_CIDER_CORPUS_PATH": str(GOLDEN_PATH)}
    if service == "llm_judge":
        return {"LLM_JUDGE_BASE_URL": fake_url, "LLM_JUDGE_API_KEY": "bench",
                "LLM_JUDGE_MODEL": "fake/judge", "LLM_JUDGE_MAX_UPSTREAM_CONCURRENCY": "16",
                # The default 600 calls a minute would throttle the bench itself after ten rounds.
                "LLM_JUDGE_REQUESTS_PER_MINUTE": "0"}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--services", default=",".join(SERVICES))
    args = parser.parse_args()
    fake = FakeOpenAI(default=chat("0.7"))
    results = []
    with serve_app(fake.app) as fake_url, tempfile.TemporaryDirectory() as tmp:
        for service in args.services.split(","):
            env = env_for(service, Path(tmp), f"{fake_url}/v1")
            with service_process(f"services.{service}.main:app", env=env, ready_timeout_s=180) as (url, _):
                results.append((service, *measured(url, service, args.rounds)))
    report(results, args.rounds)


def report(results, rounds: int) -> None:
    print(f"{rounds} rounds per service, normal and degenerate batches taking turns A B B A; "
          "x normal = median of the rounds' own ratios")
    print(f"{'service':<13} {'batch':<10} {'KB':>5} {'p50 ms':>8} {'p99 ms':>8} {'x normal':>9} "
          f"{'server p50':>11} {'x normal':>9} {'/healthz p50':>13} {'p99 ms':>7} {'probes':>7}")
    for service, per_round, health in results:
        for kind in KINDS:
            times = [r[kind][0] for r in per_round]
            server = [r[kind][1] for r in per_round]
            client_x = pair_rounds(KINDS, [{k: r[k][0] for k in KINDS} for r in per_round]).ratio
            server_x = pair_rounds(KINDS, [{k: r[k][1] for k in KINDS} for r in per_round]).ratio
            if kind == "normal":
                client_x = server_x = 1.0
            kb = sum(len(it["completion"]) for it in request(service, kind, 0)[0]) / 1000
            probes = health[kind] or [float("nan")]
            print(f"{service:<13} {kind:<10} {kb:>5.0f} {statistics.median(times) * 1000:>8.1f} "
                  f"{pct(times, 0.99):>8.1f} {client_x:>9.2f} {statistics.median(server) * 1000:>11.1f} "
                  f"{server_x:>9.2f} {pct(probes, 0.5):>13.1f} {pct(probes, 0.99):>7.1f} {len(health[kind]):>7}")


if __name__ == "__main__":
    main()
