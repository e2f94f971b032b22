"""Benchmark llm_judge: one batch through the service vs the notebook's loop of one judge call per item.

    .venv/bin/python bench/bench_llm_judge.py [--scenario all|throughput|heavy-tail] [--items 64]
        [--latency 0.2] [--rounds 3] [--tail-rounds 20] [--deadline-ms 3000] [--hedge-after-ms 1500]

The judge is the tests' fake OpenAI-compatible server (tests/services/llm_judge/fake_openai.py).
The sequential loop is the notebook's (seed 000): it sends the same prompt the service sends, one
item after another, with a synchronous httpx client. The service runs as `uvicorn
services.llm_judge.main:app` in its own process and is called through RewardClient; each batch
uses fresh completions, so the cache only helps where the batch itself repeats completions.

throughput: every call answers after `--latency` seconds; service batches at several
concurrencies (and the GRPO-shaped row: 8 prompts x 8 completions) against the loop.

heavy-tail: each call's latency is drawn on its own, as a hosted model's is: 96 % log-normal
(median 0.7 s, sigma 0.4) clipped to 0.3-2 s, 4 % uniform in 10-30 s. Two service processes run
side by side, one plain and one hedging after `--hedge-after-ms`; each round sends a batch with
`deadline_ms` to both (alternating which goes first), and every fourth round also one without a
deadline. Reported per mode: batch wall p50/p99, the share of items lost to the deadline (null,
status timeout), upstream calls and cost per batch (every call sent is billed, a cancelled hedge
loser too). `--time-scale` shrinks every latency, the deadline and the hedge delay alike, for a
quick look; the goals are stated at 1.0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from proto.client import RewardClient  # noqa: E402
from proto.deadline import MARGIN_S  # noqa: E402
from proto.models import ScoreItem  # noqa: E402
from services.llm_judge.extract import extract_score, reply_rule  # noqa: E402
from services.llm_judge.rubrics import load_rubric  # noqa: E402
from tests.helpers import serve_app, service_process  # noqa: E402
from tests.services.llm_judge.fake_openai import FakeOpenAI, fair_judge  # noqa: E402

MODEL = "bench/judge"
PRICE = 0.0001  # USD the fake bills per call (fair_judge's usage.cost)


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
            reply = http.post("/chat/completions", json=body, timeout=120).json()
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
    parser.add_argument("--scenario", choices=("all", "throughput", "heavy-tail"), default="all")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per judge call")
    parser.add_argument("--rounds", type=int, default=3, help="service batches per row (median)")
    parser.add_argument("--tail-rounds", type=int, default=20, help="heavy-tail: rounds with a deadline")
    parser.add_argument("--deadline-ms", type=int, default=3000, help="heavy-tail: deadline_ms sent")
    parser.add_argument("--hedge-after-ms", type=float, default=1500, help="heavy-tail: hedge delay")
    parser.add_argument("--time-scale", type=float, default=1.0, help="heavy-tail: scale all times")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    console = Console(width=130)
    if args.scenario in ("all", "throughput"):
        throughput(args, console)
    if args.scenario in ("all", "heavy-tail"):
        heavy_tail(args, console)


def throughput(args, console: Console) -> None:
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


# -- heavy tail ------------------------------------------------------------------------------------

def tail_latency(rng: random.Random, scale: float) -> float:
    """One call's latency: 96 % log-normal around 0.7 s within 0.3-2 s, 4 % in 10-30 s."""
    if rng.random() < 0.04:
        return rng.uniform(10.0, 30.0) * scale
    return min(2.0, max(0.3, rng.lognormvariate(math.log(0.7), 0.4))) * scale


@dataclass
class Mode:
    name: str
    walls: list[float] = field(default_factory=list)
    items: int = 0
    lost: int = 0
    calls: int = 0
    wrong: int = 0


def heavy_tail(args, console: Console) -> None:
    rng, scale = random.Random(args.seed), args.time_scale
    fake = FakeOpenAI(default=lambda body: replace(fair_judge(body), delay_s=tail_latency(rng, scale)))
    deadline_s, hedge_ms = args.deadline_ms / 1000 * scale, args.hedge_after_ms * scale
    with serve_app(fake.app) as url:
        base = f"{url}/v1"
        loop = Mode("loop (notebook)")
        items = distinct_items(args.items, "tail-seq")
        secs, rewards = sequential(base, items)
        _record(loop, secs, rewards, items, fake.calls)
        env = {"LLM_JUDGE_BASE_URL": base, "LLM_JUDGE_API_KEY": "bench", "LLM_JUDGE_MODEL": MODEL,
               "LLM_JUDGE_LOG_LEVEL": "WARNING", "LLM_JUDGE_MAX_UPSTREAM_CONCURRENCY": "64",
               "LLM_JUDGE_REQUESTS_PER_MINUTE": "0"}  # the fake has no rate limit to respect
        with service_process("services.llm_judge.main:app", env=env) as (plain, _), \
                service_process("services.llm_judge.main:app",
                                env={**env, "LLM_JUDGE_HEDGE_AFTER_MS": f"{hedge_ms:g}"}) as (hedged, _):
            modes = asyncio.run(_tail_rounds(args, fake, plain, hedged, deadline_s))
            # Late calls still sleep in the fake: their end, as the services stop, is expected.
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    _tail_table(console, args, [loop, *modes], deadline_s)


async def _tail_rounds(args, fake, plain: str, hedged: str, deadline_s: float) -> list[Mode]:
    # RewardClient keeps back a margin for the way back (proto.deadline): this budget makes it
    # send exactly deadline_s (3.5 s sends 3000 ms).
    budget = deadline_s + MARGIN_S if deadline_s >= 3 * MARGIN_S else deadline_s * 4 / 3
    with_deadline = {u: RewardClient(u, deadline_s=budget) for u in (plain, hedged)}
    without = {u: RewardClient(u, deadline_s=600) for u in (plain, hedged)}
    hedge = f" + hedge {args.hedge_after_ms:g} ms"
    modes = {(plain, True): Mode(f"deadline {args.deadline_ms} ms"),
             (hedged, True): Mode(f"deadline {args.deadline_ms} ms{hedge}"),
             (plain, False): Mode("no deadline"), (hedged, False): Mode(f"no deadline{hedge}")}
    for client in (*with_deadline.values(), *without.values()):
        await client.info()
    for r in range(args.tail_rounds):
        order = (plain, hedged) if r % 2 == 0 else (hedged, plain)
        runs = [(u, True) for u in order] + ([(u, False) for u in order] if r % 4 == 0 else [])
        for url, deadline in runs:
            client = (with_deadline if deadline else without)[url]
            items = distinct_items(args.items, f"tail{r}{url[-5:]}{deadline}")
            before, started = fake.calls, time.perf_counter()
            resp = await client.score(items)
            _record(modes[url, deadline], time.perf_counter() - started, resp.rewards, items,
                     fake.calls - before)
    for client in (*with_deadline.values(), *without.values()):
        await client.aclose()
    return list(modes.values())


def _record(mode: Mode, secs: float, rewards: list, items: list[ScoreItem], calls: int) -> None:
    mode.walls.append(secs)
    mode.items += len(items)
    mode.lost += sum(r is None for r in rewards)
    mode.calls += calls
    mode.wrong += sum(r is not None and r != e for r, e in zip(rewards, _expected(items), strict=True))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = math.floor(at)
    return ordered[low] + (ordered[min(low + 1, len(ordered) - 1)] - ordered[low]) * (at - low)


def _tail_table(console: Console, args, modes: list[Mode], deadline_s: float) -> None:
    table = Table(title=f"llm_judge heavy tail: {args.items} items, 4 % of calls 10-30 s, "
                        f"time scale {args.time_scale:g}")
    for col in ("path", "batches", "wall p50 s", "wall p99 s", "lost to deadline", "calls/batch",
                "extra calls", "cost $/batch", "wrong"):
        table.add_column(col, justify="left" if col == "path" else "right")
    base_calls = {True: modes[1].calls / modes[1].items, False: modes[3].calls / max(modes[3].items, 1)}
    for i, m in enumerate(modes):
        per_item = m.calls / m.items
        extra = "" if i == 0 else f"{per_item / base_calls[i in (1, 2)] - 1:+.1%}"
        table.add_row(m.name, str(len(m.walls)), f"{statistics.median(m.walls):.2f}",
                      f"{_percentile(m.walls, 0.99):.2f}", f"{m.lost / m.items:.2%}",
                      f"{m.calls / len(m.walls):.1f}", extra,
                      f"{m.calls / len(m.walls) * PRICE:.4f}", str(m.wrong))
    console.print(table)
    plain, hedged = modes[1], modes[2]
    console.print(
        f"deadline {deadline_s:.2f} s: wall p99 {_percentile(plain.walls, 0.99):.2f} s plain, "
        f"{_percentile(hedged.walls, 0.99):.2f} s hedged (goal <= {deadline_s + 0.5:.2f}); lost "
        f"{plain.lost / plain.items:.2%} -> {hedged.lost / hedged.items:.2%} with hedging (goal: at "
        f"least halved) at {hedged.calls / hedged.items / (plain.calls / plain.items) - 1:+.1%} "
        "upstream calls (goal <= +15 %)")


def _expected(items: list[ScoreItem]) -> list[float]:
    """What fair_judge gives: 1 for the reference answer, 0 otherwise."""
    return [1.0 if "<answer>yes</answer>" in it.completion else 0.0 for it in items]


if __name__ == "__main__":
    main()
