"""regex_format items/s over HTTP (uvicorn in its own process) vs inproc://, side by side.

    python bench/bench_regex_format.py [--rounds 30]

The issue's target: at batch 256, HTTP takes at most 2x the in-process time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proto.client import RewardClient
from tests.helpers import service_process

SAMPLES = [
    "<think>12 * 4 = 48</think><answer>48</answer>",
    "  <think>the cells are round</think>\n<answer>benign</answer>",
    "<answer>3</answer><think>counted</think>",
    "The answer is 7.",
    "<think>a<think>b</think></think><answer>c</answer>",
]


def items(n: int) -> list[dict]:
    # Distinct texts, so nothing downstream can cache its way to a number.
    return [{"completion": SAMPLES[i % len(SAMPLES)].replace("</think>", f" {i}</think>", 1)}
            for i in range(n)]


async def rate(url: str, batch: int, rounds: int) -> float:
    payload = items(batch)
    async with RewardClient(url) as client:
        await client.score(payload)  # connection, info and warm-up outside the clock
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await client.score(payload)
            times.append(time.perf_counter() - started)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with service_process("services.regex_format.main:app") as (url, _proc):
        rows = []
        for batch in (1, 64, 256):
            http = asyncio.run(rate(url, batch, args.rounds))
            inproc = asyncio.run(rate("inproc://regex_format", batch, args.rounds))
            rows.append((batch, http, inproc, inproc / http))
    print(f"{'batch':>6} {'HTTP items/s':>14} {'inproc items/s':>15} {'HTTP time / inproc time':>24}")
    for batch, http, inproc, ratio in rows:
        print(f"{batch:>6} {http:>14,.0f} {inproc:>15,.0f} {ratio:>24.2f}")


if __name__ == "__main__":
    main()
