"""Benchmark deadline_ms on every service: a request with a slow item, under load, answers by its
deadline, and the request after it is not slowed.

    .venv/bin/python bench/bench_deadline.py [--services all] [--rounds 3] [--deadline-ms 1000]

Each service runs as its own uvicorn process, one after the other, while two background clients
keep sending it ordinary batches (the load). A round sends three ordinary batches (latency
"before"), then the slow request with `deadline_ms`, then three ordinary batches ("after"; the
first of them right after the slow answer). The slow request per service:

    math_equiv    8 ordinary items + one sympy-heavy answer, (10^{10})!, under a 5 s time limit
    llm_judge     31 ordinary items + one whose upstream call takes 30 s (the fake OpenAI server)
    clip_cider    12 items, each with its own 6000x6000 PNG to decode (random ViT-B-32 on the CPU)
    vqa_accuracy  120 items in anls mode with 30,000-character answers and references
    regex_format  400 items with 30,000-character completions

For the two cheap services no single item is slow; their deadline is half the time the same
request takes without one (measured first), at least 50 ms. Reported: the slow request's answer
time past its deadline (goal: at most 200 ms), its items (scored / timeout), and the ordinary
latency before and after it (goal: after / before near 1, i.e. its workers were free again).
The slow request is also timed once without a deadline, under the same load, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.helpers import serve_app, service_process  # noqa: E402
from tests.services.llm_judge.fake_openai import FakeOpenAI, chat, graded  # noqa: E402

LONG = 30_000


@dataclass
class Case:
    app: str
    env: dict[str, str]
    ordinary: Callable[[int], dict]  # round/sequence number -> request body
    slow: Callable[[int], dict]
    fixed_deadline: bool  # False: half the slow request's own time, for the cheap services


def math_case(_tmp: Path) -> Case:
    def ordinary(n):
        return {"items": [{"completion": f"<answer>\\frac{{{2 * (n + i)}}}{{2}}</answer>",
                           "reference": str(n + i)} for i in range(16)]}

    def slow(n):
        body = ordinary(n)
        body["items"] = [*body["items"][:8], {"completion": "<answer>(10^{10})!</answer>", "reference": "1"}]
        return body

    return Case("services.math_equiv.main:app", {"MATH_EQUIV_WORKERS": "2"}, ordinary, slow, True)


def judge_case(_tmp: Path, upstream: str) -> Case:
    def items(n, count, slow_at=None):
        return [{"completion": f"<answer>yes</answer> {'SLOW' if i == slow_at else ''} {n}.{i}",
                 "reference": "yes", "prompt": "Is it?"} for i in range(count)]

    env = {"LLM_JUDGE_BASE_URL": upstream, "LLM_JUDGE_API_KEY": "bench", "LLM_JUDGE_REQUESTS_PER_MINUTE": "0"}
    return Case("services.llm_judge.main:app", env, lambda n: {"items": items(n, 32)},
                lambda n: {"items": items(n, 32, slow_at=31)}, True)


def clip_case(tmp: Path) -> Case:
    side, big = 6000, 12
    for i in range(big):
        ramp = np.linspace(0, 255, side, dtype=np.float32)
        pixels = np.stack([np.add.outer(ramp, ramp * (i + 1)) % 256] * 3, axis=-1).astype(np.uint8)
        Image.fromarray(pixels).save(tmp / f"big{i}.png")
    small = io.BytesIO()
    Image.fromarray(np.full((480, 640, 3), 90, np.uint8)).save(small, format="JPEG")
    b64 = base64.b64encode(small.getvalue()).decode()

    def item(n, i, image_id):
        return {"completion": f"<explain>a photo of a thing, take {n}.{i}</explain>",
                "reference": ["a photo of a thing"], "image_id": image_id}

    env = {"CLIP_CIDER_CLIP_MODEL": "ViT-B-32", "CLIP_CIDER_CLIP_PRETRAINED": "",
           "CLIP_CIDER_CLIP_DEVICE": "cpu", "CLIP_CIDER_IMAGE_ROOT": str(tmp),
           "CLIP_CIDER_IMAGE_CACHE_SIZE": "0"}  # every slow request decodes its images again
    return Case(
        "services.clip_cider.main:app", env,
        lambda n: {"items": [item(n, i, "img") for i in range(16)], "images": {"img": {"b64": b64}},
                   "params": {"corpus": "request"}},
        lambda n: {"items": [item(n, i, f"big{i}") for i in range(big)],
                   "images": {f"big{i}": {"path": f"big{i}.png"} for i in range(big)},
                   "params": {"corpus": "request"}},
        True,
    )


def vqa_case(_tmp: Path) -> Case:
    answers = ["two dogs", "2", "two", "2 dogs"] * 3

    def ordinary(n):
        return {"items": [{"completion": f"<answer>{n % 3} dogs</answer>", "reference": answers}] * 64,
                "params": {"mode": "vqa"}}

    def slow(n):
        text = ("word " * (LONG // 5))[:LONG]
        return {"items": [{"completion": f"<answer>{text}{n}</answer>", "reference": [text[::-1]]}] * 120,
                "params": {"mode": "anls", "answer_tag": "answer"}}

    return Case("services.vqa_accuracy.main:app", {}, ordinary, slow, False)


def regex_case(_tmp: Path) -> Case:
    def ordinary(n):
        return {"items": [{"completion": f"<think>step {n}.{i}</think><answer>{i}</answer>"} for i in range(64)]}

    def slow(n):
        think = ("<think>" + "x" * LONG + "</think>") + f"<answer>{n}</answer>"
        return {"items": [{"completion": think}] * 400}

    return Case("services.regex_format.main:app", {}, ordinary, slow, False)


async def post(http: httpx.AsyncClient, url: str, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    resp = await http.post(f"{url}/v1/score", json=body)
    resp.raise_for_status()
    return time.perf_counter() - started, resp.json()


async def measure(url: str, case: Case, rounds: int, deadline_ms: int) -> dict:
    seq = iter(range(10**9))
    async with httpx.AsyncClient(timeout=300) as http:
        await post(http, url, case.ordinary(next(seq)))  # warm: connections, caches, workers
        alone, _ = await post(http, url, case.slow(next(seq)))  # the slow request, no deadline
        if not case.fixed_deadline:
            deadline_ms = max(50, int(alone * 1000 / 2))
        stop = asyncio.Event()

        async def load():
            while not stop.is_set():
                await post(http, url, case.ordinary(next(seq)))

        loaders = [asyncio.create_task(load()) for _ in range(2)]
        before, first_after, after, over, scored, timeouts = [], [], [], [], 0, 0
        for _ in range(rounds):
            before += [(await post(http, url, case.ordinary(next(seq))))[0] for _ in range(3)]
            wall, body = await post(http, url, {**case.slow(next(seq)), "deadline_ms": deadline_ms})
            over.append(wall * 1000 - deadline_ms)
            statuses = [d["status"] for d in body["details"]]
            scored, timeouts = scored + statuses.count("ok"), timeouts + statuses.count("timeout")
            got = [(await post(http, url, case.ordinary(next(seq))))[0] for _ in range(3)]
            first_after.append(got[0])
            after += got
        stop.set()
        await asyncio.gather(*loaders)
    return {"deadline_ms": deadline_ms, "alone": alone, "over": over, "scored": scored, "timeouts": timeouts,
            "before": statistics.median(before), "first_after": statistics.median(first_after),
            "after": statistics.median(after)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="math_equiv,llm_judge,clip_cider,vqa_accuracy,regex_format")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deadline-ms", type=int, default=1000, help="for the services with a slow item")
    args = parser.parse_args()
    fake = FakeOpenAI(default=lambda body: chat("1", delay_s=30.0 if "SLOW" in graded(body)[0] else 0.05))
    rows = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        upstream = stack.enter_context(serve_app(fake.app)) + "/v1"
        makers = {"math_equiv": math_case, "llm_judge": lambda t: judge_case(t, upstream),
                  "clip_cider": clip_case, "vqa_accuracy": vqa_case, "regex_format": regex_case}
        for name in args.services.split(","):
            case = makers[name](tmp)
            env = {**case.env, f"{name.upper()}_LOG_LEVEL": "WARNING"}
            with service_process(case.app, env=env, ready_timeout_s=300) as (url, _proc):
                rows.append((name, asyncio.run(measure(url, case, args.rounds, args.deadline_ms))))
                # The judge's slow calls still sleep in the fake: their end, as it stops, is expected.
                logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    _print(rows, args.rounds)


def _print(rows, rounds: int) -> None:
    table = Table(title=f"deadline_ms under load (2 background clients), {rounds} slow requests per service")
    for col in ("service", "without deadline s", "deadline ms", "past deadline ms: p50", "max",
                "items scored / timeout",
                "ordinary ms: before", "first after", "after", "after / before"):
        table.add_column(col, justify="left" if col == "service" else "right")
    for name, m in rows:
        table.add_row(name, f"{m['alone']:.2f}", str(m["deadline_ms"]), f"{statistics.median(m['over']):.0f}",
                      f"{max(m['over']):.0f}", f"{m['scored']} / {m['timeouts']}",
                      f"{m['before'] * 1000:.0f}", f"{m['first_after'] * 1000:.0f}",
                      f"{m['after'] * 1000:.0f}", f"{m['after'] / m['before']:.2f}")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
