"""Benchmark vqa_accuracy: items/s at batch 256 over HTTP, beside in-process and inproc:// for context.

    .venv/bin/python bench/bench_vqa_accuracy.py [--rounds 20] [--batch 256]

HTTP runs against `uvicorn services.vqa_accuracy.main:app` in its own process on 127.0.0.1, so the
server does not share the client's interpreter lock. All paths score the same golden-derived items,
side by side in one run; the table reports items/s and the ratio to the scorer called directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from proto.client import RewardClient  # noqa: E402
from proto.models import ScoreItem  # noqa: E402
from services.common.scoring import Batch  # noqa: E402
from services.vqa_accuracy.scorer import VqaAccuracyParams, VqaAccuracyScorer  # noqa: E402
from services.vqa_accuracy.settings import VqaAccuracySettings  # noqa: E402
from tests.helpers import service_process  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden" / "vqa_accuracy.jsonl"
MODES = ("vqa", "anls", "exact", "partial", "fuzzy")


def make_items(n: int) -> list[ScoreItem]:
    cases = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line]
    return [
        ScoreItem(completion=f"<think>...</think><answer>{c['prediction']}</answer>",
                  reference=c["answers"])
        for c in (cases[i % len(cases)] for i in range(n))
    ]


def direct_rate(items: list[ScoreItem], mode: str, rounds: int) -> float:
    scorer = VqaAccuracyScorer(VqaAccuracySettings())
    scorer.load()
    batch = Batch(items=items, images={}, params=VqaAccuracyParams(mode=mode))
    scorer.score(batch)
    started = time.perf_counter()
    for _ in range(rounds):
        scorer.score(batch)
    return rounds * len(items) / (time.perf_counter() - started)


async def client_rate(client: RewardClient, items: list[ScoreItem], mode: str, rounds: int) -> float:
    await client.score(items, params={"mode": mode})  # warm: info, connection
    started = time.perf_counter()
    for _ in range(rounds):
        await client.score(items, params={"mode": mode})
    return rounds * len(items) / (time.perf_counter() - started)


async def measure(url: str, items: list[ScoreItem], rounds: int) -> list[tuple[str, ...]]:
    rows = []
    # One client per transport for the whole run: the in-process app's lifespan runs once.
    async with RewardClient("inproc://vqa_accuracy", deadline_s=120) as inproc, \
            RewardClient(url, deadline_s=120) as http:
        for mode in MODES:
            direct = direct_rate(items, mode, rounds)
            via_asgi = await client_rate(inproc, items, mode, rounds)
            via_http = await client_rate(http, items, mode, rounds)
            rows.append((mode, f"{direct:,.0f}", f"{via_asgi:,.0f}", f"{via_http:,.0f}",
                         f"{via_http / direct:.2f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the table
    items = make_items(args.batch)

    table = Table(title=f"vqa_accuracy items/s, batch {args.batch}, {args.rounds} rounds")
    for col in ("mode", "in-process", "inproc://", "HTTP", "HTTP / in-process"):
        table.add_column(col, justify="right")
    with service_process("services.vqa_accuracy.main:app") as (url, _proc):
        for row in asyncio.run(measure(url, items, args.rounds)):
            table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
