"""Benchmark vqa_accuracy: items/s at batch 256 over HTTP, beside in-process and inproc:// for context.

    .venv/bin/python bench/bench_vqa_accuracy.py [--rounds 20] [--batch 256]

HTTP runs against `uvicorn services.vqa_accuracy.main:app` in its own process on 127.0.0.1, so the
server does not share the client's interpreter lock. All paths score the same golden-derived items,
side by side in one run, the paths taking turns batch by batch (direct, inproc, http, then the
reverse); the table reports each path's median items/s and the ratio to the scorer called
directly, as the median of the per-round ratios (bench/support/paired.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.support.paired import abba, pair_rounds  # noqa: E402
from proto.client import RewardClient  # noqa: E402
from proto.models import ScoreItem  # noqa: E402
from services.common.scoring import Batch  # noqa: E402
from services.vqa_accuracy.scorer import VqaAccuracyParams, VqaAccuracyScorer  # noqa: E402
from services.vqa_accuracy.settings import VqaAccuracySettings  # noqa: E402
from tests.helpers import service_process  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden" / "vqa_accuracy.jsonl"
MODES = ("vqa", "anls", "exact", "partial", "fuzzy")
PATHS = ("direct", "inproc", "http")


def make_items(n: int) -> list[ScoreItem]:
    cases = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line]
    return [
        ScoreItem(completion=f"<think>...</think><answer>{c['prediction']}</answer>",
                  reference=c["answers"])
        for c in (cases[i % len(cases)] for i in range(n))
    ]


def _direct(items: list[ScoreItem], mode: str):
    scorer = VqaAccuracyScorer(VqaAccuracySettings())
    scorer.load()
    batch = Batch(items=items, images={}, params=VqaAccuracyParams(mode=mode))
    scorer.score(batch)  # warm-up outside the clock

    async def score() -> None:
        scorer.score(batch)

    return score


async def measure(url: str, items: list[ScoreItem], rounds: int) -> list[tuple[str, ...]]:
    """Per mode, `rounds` rounds in which each path scores the batch once, in A B C / C B A order."""
    rows = []
    # One client per transport for the whole run: the in-process app's lifespan runs once.
    async with RewardClient("inproc://vqa_accuracy", deadline_s=120) as inproc, \
            RewardClient(url, deadline_s=120) as http:
        for mode in MODES:
            paths = {"direct": _direct(items, mode),
                     "inproc": lambda c=inproc, m=mode: c.score(items, params={"mode": m}),
                     "http": lambda c=http, m=mode: c.score(items, params={"mode": m})}
            await paths["inproc"]()  # warm: info, connection
            await paths["http"]()
            times = []
            for order in abba(PATHS, rounds):
                measured = {}
                for path in order:
                    started = time.perf_counter()
                    await paths[path]()
                    measured[path] = time.perf_counter() - started
                times.append(measured)
            rate = {p: len(items) / statistics.median(r[p] for r in times) for p in PATHS}
            # items/s ratio HTTP / in-process = in-process time / HTTP time, per round
            pair = pair_rounds(("http", "direct"), times)
            low, high = pair.ratio_iqr
            rows.append((mode, *(f"{rate[p]:,.0f}" for p in PATHS),
                         f"{pair.ratio:.2f} (IQR {low:.2f} .. {high:.2f})"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the table
    items = make_items(args.batch)

    table = Table(title=f"vqa_accuracy items/s, batch {args.batch}, {args.rounds} rounds")
    for col in ("mode", "in-process", "inproc://", "HTTP", "HTTP / in-process items/s, paired"):
        table.add_column(col, justify="right")
    with service_process("services.vqa_accuracy.main:app") as (url, _proc):
        for row in asyncio.run(measure(url, items, args.rounds)):
            table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
