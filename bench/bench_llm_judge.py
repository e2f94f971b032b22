"""Benchmark llm_judge: one batch through the service vs the notebook's loop of one judge call per item.

    .venv/bin/python bench/bench_llm_judge.py [--items 64] [--latency 0.2] [--rounds 3]

The judge is the tests' fake OpenAI-compatible server (tests/services/llm_judge/fake_openai.py),
answering every call after `--latency` seconds, as a hosted model would. The sequential loop sends
the same prompt the service sends, one item after another, with a synchronous httpx client. The
service runs as `uvicorn services.llm_judge.main:app` in its own process, once per concurrency
setting, and is called through RewardClient; each round uses fresh completions, so the cache only
helps where the batch itself repeats completions (the GRPO-shaped row: 8 prompts x 8 completions).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from proto.client import RewardClient  # noqa: E402
from proto.models import ScoreItem  # noqa: E402
from services.llm_judge.extract import extract_score, reply_rule  # noqa: E402
from services.llm_judge.rubrics import load_rubric  # noqa: E402
from tests.helpers import serve_app, service_process  # noqa: E402
from tests.services.llm_judge.fake_openai import FakeOpenAI, fair_judge  # noqa: E402

MODEL = "bench/judge"


def distinct_items(n: int, tag: str) -> list[ScoreItem]:
    answers = ("yes", "no")
    return [
        ScoreItem(completion=f"<think>round {tag}, look {i}</think><answer>{answers[i % 2]}</answer>",
                  reference="yes", prompt=f"Question {tag}-{i}: are there granulomas?")
        for i in range(n)
    ]


def grpo_items(n: int, tag: str, k: int = 8) -> list[ScoreItem]:
    """n // k prompts with k completions each; short answers repeat, as they do in GRPO groups."""
    shapes = ("yes", "yes", "no", "yes", "no", "yes", "maybe", "yes")
    return [
        ScoreItem(completion=f"<think>{tag}</think><answer>{shapes[j % len(shapes)]}</answer>",
                  reference="yes", prompt=f"Question {tag}-{p}")
        for p in range(n // k) for j in range(k)
    ]


def sequential(base_url: str, items: list[ScoreItem]) -> tuple[float, list[float | None]]:
    """The notebook's pattern: for each completion, one blocking call, then the next."""
    rubric = load_rubric("default")
    rewards: list[float | None] = []
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"authorization": "Bearer bench"}) as http:
        for it in items:
            body = {"model": MODEL, "temperature": 0.0, "max_tokens": 512,
                    "messages": rubric.messages(it.completion, it.reference, it.prompt,
                                                reply_rule(rubric.scale, False))}
            reply = http.post("/chat/completions", json=body, timeout=30).json()
            got = extract_score(reply["choices"][0]["message"]["content"], rubric.scale, False)
            rewards.append(got.normalised if got else None)
    return time.perf_counter() - started, rewards


def through_service(base_url: str, concurrency: int, batches: list[list[ScoreItem]]):
    env = {"LLM_JUDGE_BASE_URL": base_url, "LLM_JUDGE_API_KEY": "bench", "LLM_JUDGE_MODEL": MODEL,
           "LLM_JUDGE_MAX_UPSTREAM_CONCURRENCY": str(concurrency), "LLM_JUDGE_LOG_LEVEL": "WARNING"}

    async def run(url: str):
        times, rewards = [], []
        async with RewardClient(url, deadline_s=120) as client:
            await client.info()
            for batch in batches:
                started = time.perf_counter()
                resp = await client.score(batch)
                times.append(time.perf_counter() - started)
                rewards.append(resp.rewards)
        return times, rewards

    with service_process("services.llm_judge.main:app", env=env) as (url, _proc):
        return asyncio.run(run(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per judge call")
    parser.add_argument("--rounds", type=int, default=3, help="service batches per row (median)")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    console = Console(width=110)

    fake = FakeOpenAI(default=fair_judge, latency_s=args.latency)
    with serve_app(fake.app) as url:
        base = f"{url}/v1"
        seq_items = distinct_items(args.items, "seq")
        seq_s, seq_rewards = sequential(base, seq_items)
        seq_calls = fake.calls
        rows = [("sequential loop (notebook)", 1, seq_calls, seq_s, True)]
        for concurrency, shape in ((8, "distinct"), (32, "distinct"), (64, "distinct"),
                                   (32, "grpo")):
            make = distinct_items if shape == "distinct" else grpo_items
            batches = [make(args.items, f"{shape}{concurrency}r{r}") for r in range(args.rounds)]
            before = fake.calls
            times, rewards = through_service(base, concurrency, batches)
            same = all(r == _expected(b) for r, b in zip(rewards, batches, strict=True))
            calls = (fake.calls - before) / args.rounds
            rows.append((f"llm_judge service, {shape}", concurrency, calls,
                         statistics.median(times), same))
        assert seq_rewards == _expected(seq_items), "the loop and the rule disagree"

    table = Table(title=f"llm_judge: {args.items} items, judge latency {args.latency * 1000:.0f} ms")
    for col in ("path", "concurrency", "judge calls", "wall s", "items/s", "speed-up", "rewards ok"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, conc, calls, secs, same in rows:
        table.add_row(name, str(conc), f"{calls:g}", f"{secs:.3f}", f"{args.items / secs:.1f}",
                      f"{seq_s / secs:.1f}x", "yes" if same else "NO")
    console.print(table)


def _expected(items: list[ScoreItem]) -> list[float]:
    """What fair_judge gives: 1 for the reference answer, 0 otherwise."""
    return [1.0 if "<answer>yes</answer>" in it.completion else 0.0 for it in items]


if __name__ == "__main__":
    main()
