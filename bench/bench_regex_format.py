"""regex_format items/s over HTTP (uvicorn in its own process) vs inproc://, side by side.

    python bench/bench_regex_format.py [--rounds 30]

The issue's target: at batch 256, HTTP takes at most 2x the in-process time. Both clients stay
open for the whole run and take turns call by call (A B B A); the ratio is the median of the
per-pair ratios (bench/support/paired.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support.paired import abba, pair_rounds
from proto.client import RewardClient
from tests.helpers import service_process

MODES = ("inproc", "http")

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


async def paired_times(url: str, batch: int, rounds: int):
    """Each round scores the batch once over HTTP and once in-process, A B B A; the pairs' times."""
    payload = items(batch)
    async with RewardClient(url) as http, RewardClient("inproc://regex_format") as inproc:
        clients = {"inproc": inproc, "http": http}
        for client in clients.values():
            await client.score(payload)  # connection, info and warm-up outside the clock
        times = []
        for order in abba(MODES, rounds):
            measured = {}
            for mode in order:
                started = time.perf_counter()
                await clients[mode].score(payload)
                measured[mode] = time.perf_counter() - started
            times.append(measured)
    return pair_rounds(MODES, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="pairs per batch size")
    args = parser.parse_args()
    with service_process("services.regex_format.main:app") as (url, _proc):
        rows = [(batch, asyncio.run(paired_times(url, batch, args.rounds))) for batch in (1, 64, 256)]
    print(f"{args.rounds} rounds per batch size, HTTP and in-process taking turns A B B A")
    print(f"{'batch':>6} {'HTTP items/s':>14} {'inproc items/s':>15} {'HTTP time / inproc time, from the pairs':>40}")
    for batch, pair in rows:
        http, inproc = batch / statistics.median(pair.other), batch / statistics.median(pair.base)
        low, high = pair.ratio_iqr
        print(f"{batch:>6} {http:>14,.0f} {inproc:>15,.0f} {pair.ratio:>22.2f} (IQR {low:.2f} .. {high:.2f})")


if __name__ == "__main__":
    main()
